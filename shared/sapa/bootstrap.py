"""The one place that picks adapters from settings. Everything is built lazily, on first use."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from sapa.settings import Settings, load_settings

# How long a function instance over Firestore serves the officers it read before asking the
# store whether they changed: a change made on the admin pages reaches every instance within it.
STAFF_CACHE_SECONDS = 30.0

if TYPE_CHECKING:
    from sapa.domain.agenda import Agenda
    from sapa.domain.reference import Catalogue, Desa, Region, WaTemplate
    from sapa.domain.rollup import RollupTracker
    from sapa.domain.sla import SlaClocks, SlaPolicy
    from sapa.domain.sop import Sop
    from sapa.ports import (
        BlobStore,
        CaseStore,
        Clock,
        Signer,
        StaffDirectory,
        StaffMember,
        TaskQueue,
        WhatsApp,
    )


class Container:
    """Adapters and reference data for one process. Attributes are built on first access so a
    function only imports and connects what it uses (cold starts)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def sop(self) -> Sop:
        from sapa.domain.sop import load_sop

        return load_sop(self.settings.sop_file)

    @cached_property
    def region(self) -> Region:
        from sapa.domain.reference import load_region

        return load_region(self.settings.region_file)

    @cached_property
    def catalogue(self) -> Catalogue:
        from sapa.domain.reference import load_catalogue

        return load_catalogue(self.settings.services_file)

    @cached_property
    def desa(self) -> dict[str, tuple[Desa, ...]]:
        from sapa.domain.reference import load_desa

        return load_desa(self.settings.desa_file)

    @cached_property
    def templates(self) -> dict[str, WaTemplate]:
        from sapa.domain.reference import load_templates

        return load_templates(self.settings.templates_file)

    @property
    def sla(self) -> SlaPolicy:
        """The office's SLA policy: clocks, escalation, resident waits, the STATUS estimate
        (sla.toml, parsed once per file: `sapa.domain.sla.load_sla_policy`)."""
        from sapa.domain.sla import load_sla_policy

        return load_sla_policy(str(self.settings.sla_file) if self.settings.sla_file else None)

    @property
    def sla_clocks(self) -> SlaClocks:
        """Working hours, holidays and each step's clock (`sla.clocks`)."""
        return self.sla.clocks

    @cached_property
    def phone_numbers(self) -> dict[str, str]:
        """phone_number_id → kecamatan code."""
        if self.settings.wa_phone_numbers:
            return dict(self.settings.wa_phone_numbers)
        return {f"demo-{k.code}": k.code for k in self.region.kecamatan}

    @cached_property
    def clock(self) -> Clock:
        from sapa.adapters.clock import SystemClock

        return SystemClock()

    def rollup_tracker(self) -> RollupTracker:
        """What the store counts each case's rollups with: the SOP, the SLA clocks and the
        office's time zone, read when the store writes (the SLA file may change in a test)."""
        from sapa.domain.rollup import RollupTracker

        return RollupTracker(self.sop, self.sla_clocks, self.region.timezone)

    def agenda(self) -> Agenda:
        """What the store computes each case's due times with (`sapa.domain.agenda`): the
        SOP, the SLA settings and the retention schedule, read when the store writes."""
        from sapa.domain.agenda import Agenda, load_schedule

        file = self.settings.retention_file
        schedule = load_schedule(str(file) if file else None)
        return Agenda(self.sop, self.sla_clocks, self.sla.sweep, schedule)

    @cached_property
    def store(self) -> CaseStore:
        if self.settings.store == "sqlite":
            from sapa.adapters.embedded.sqlite_store import SqliteCaseStore

            return SqliteCaseStore(
                self.settings.sapa_data_dir / "sapa.db",
                tracker=self.rollup_tracker,
                agenda=self.agenda,
            )
        if self.settings.store == "firestore":
            from sapa.adapters.cloud.firestore_store import FirestoreCaseStore

            return FirestoreCaseStore(
                self.settings.secret("gcp_project"),
                tracker=self.rollup_tracker,
                agenda=self.agenda,
            )
        raise NotImplementedError(f"STORE={self.settings.store} is not available yet")

    @cached_property
    def blobs(self) -> BlobStore:
        if self.settings.blobs == "fs":
            from sapa.adapters.embedded.fs_blobs import FsBlobStore

            return FsBlobStore(self.settings.sapa_data_dir / "blobs")
        if self.settings.blobs == "gcs":
            from sapa.adapters.cloud.gcs_blobs import GcsBlobStore

            return GcsBlobStore(
                self.settings.secret("gcs_bucket"), project=self.settings.gcp_project
            )
        if self.settings.blobs == "s3":
            from sapa.adapters.cloud.s3_blobs import S3BlobStore

            return S3BlobStore(
                self.settings.secret("s3_bucket"),
                endpoint_url=self.settings.s3_endpoint_url,
                region=self.settings.s3_region,
            )
        raise NotImplementedError(f"BLOBS={self.settings.blobs} is not available yet")

    @cached_property
    def queue(self) -> TaskQueue:
        if self.settings.queue == "sqlite":
            from sapa.adapters.embedded.sqlite_queue import SqliteTaskQueue

            return SqliteTaskQueue(
                self.settings.sapa_data_dir / "tasks.db",
                max_attempts=self.settings.task_max_attempts,
                min_backoff=self.settings.task_min_backoff_seconds,
                max_backoff=self.settings.task_max_backoff_seconds,
            )
        if self.settings.queue == "cloudtasks":
            from sapa.adapters.cloud.cloud_tasks import CloudTasksQueue

            s = self.settings
            return CloudTasksQueue(
                project=s.secret("gcp_project"),
                location=s.tasks_location,
                prefix=s.tasks_queue_prefix,
                url_for=s.task_url,
                service_account=s.task_service_account,
                # only against the emulator (settings demand the service account otherwise)
                bearer_token=None if s.task_service_account else s.secret("task_token"),
                emulator_host=s.tasks_emulator_host,
            )
        raise NotImplementedError(f"QUEUE={self.settings.queue} is not available yet")

    @cached_property
    def whatsapp(self) -> WhatsApp:
        from sapa.adapters.graph_whatsapp import GraphWhatsApp

        hosts = self.settings.wa_media_hosts
        if hosts is None and self.settings.wa_api_base:
            hosts = [".fbsbx.com", ".facebook.com", ".whatsapp.net"]  # Meta's media CDN
        return GraphWhatsApp(
            self.settings.wa_base,
            self.settings.secret("wa_token"),
            media_hosts=tuple(hosts) if hosts else None,
        )

    @cached_property
    def signer(self) -> Signer:
        if self.settings.signer == "local":
            from sapa.adapters.embedded.local_signer import LocalPadesSigner

            return LocalPadesSigner(
                self.settings.sapa_data_dir / "signer",
                office=self.region.office,
                clock=self.clock,
                timezone=self.region.timezone,
            )
        from sapa.adapters.bsre_signer import BsreSigner

        s = self.settings
        return BsreSigner(
            s.secret("bsre_base_url"),
            s.secret("bsre_username"),
            s.secret("bsre_password"),
            s.secret("bsre_nik"),
            api=s.bsre_api,
            timeout=s.bsre_timeout_seconds,
            connect_timeout=s.bsre_connect_timeout_seconds,
            v1_box=s.bsre_v1_box,
            v1_response=s.bsre_v1_response,
            clock=self.clock,
            verify_tls=s.bsre_ca_bundle or True,
        )

    @cached_property
    def staff(self) -> StaffDirectory:
        """The officers kept in the store (changed on the admin pages). The staff file seeds an
        empty store: STAFF_FILE, or locally the development staff; in the cloud without
        STAFF_FILE (the functions that only read officers) nothing is seeded."""
        from sapa.adapters.staff_store import StoreStaffDirectory

        s = self.settings

        def staff_file() -> list[StaffMember]:
            from sapa.adapters.embedded.staff_file import FileStaffDirectory

            return FileStaffDirectory(s.staff_file).all()

        seed = staff_file if s.staff_file is not None or s.sapa_env != "cloud" else None
        return StoreStaffDirectory(
            self.store,
            now=lambda: self.clock.now(),
            seed=seed,
            # SQLite is a local read: always current. Over Firestore each instance keeps the
            # officers for this long before it looks again (README: staff).
            ttl_seconds=0.0 if s.store == "sqlite" else STAFF_CACHE_SECONDS,
        )


_lock = threading.Lock()
_container: Container | None = None


def container() -> Container:
    """The process's container, built from the environment on first call (not at import)."""
    global _container
    with _lock:
        if _container is None:
            _container = Container(load_settings())
        return _container


def install(c: Container | None) -> None:
    """Use `c` as the process's container (tests, the local server); None resets."""
    global _container
    with _lock:
        _container = c
