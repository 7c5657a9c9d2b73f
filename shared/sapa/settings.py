"""Settings: one pydantic model read from the environment. No secret has a default.

The environment is read here (`_from_environment`) rather than by pydantic-settings: that
library costs a function instance ~55 ms of its cold start (imports + building its sources on
the first request) for what is, for our flat model, one dictionary comprehension."""

from __future__ import annotations

import json
import os
import secrets
import string
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Secrets that the embedded default generates once and keeps under the data directory.
_LOCAL_SECRETS = (
    "wa_token",
    "wa_app_secret",
    "wa_verify_token",
    "link_secret",
    "session_secret",
    "task_token",
    "esign_callback_secret",
)


class Settings(BaseModel):
    """Every knob SAPA has. Environment variable = field name in upper case (any case is read);
    lists and objects are given as JSON. Keyword arguments win over the environment."""

    # hide_input_in_errors: a validation error must never print a setting's value (a
    # misconfigured start once logged the tail of SESSION_SECRET)
    model_config = ConfigDict(extra="ignore", validate_default=True, hide_input_in_errors=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**_from_environment(), **values})

    sapa_env: Literal["local", "cloud"] = "local"
    sapa_data_dir: Path = Path("var")
    public_base_url: str = "http://127.0.0.1:8080"
    # Where the embedded task worker delivers tasks; defaults to public_base_url.
    task_target_base: str | None = None

    store: Literal["sqlite", "firestore"] = "sqlite"
    blobs: Literal["fs", "gcs", "s3"] = "fs"
    queue: Literal["sqlite", "cloudtasks"] = "sqlite"
    gcp_project: str | None = None
    # QUEUE=cloudtasks: one Cloud Tasks queue per task kind (shared/sapa/data/queues.json), id
    # "<TASKS_QUEUE_PREFIX><kind with - for _>". TASK_URL_TEMPLATE is each kind's HTTP target
    # ("{name}" = the kind with - for _, "{kind}" = the kind itself), e.g.
    # "https://asia-southeast2-PROJECT.cloudfunctions.net/sapa-{name}"; it is also the audience
    # of the OIDC token that Cloud Tasks and Cloud Scheduler send as TASK_SERVICE_ACCOUNT.
    tasks_location: str = "asia-southeast2"
    tasks_queue_prefix: str = "sapa-"
    task_url_template: str | None = None
    # When set, task and job endpoints accept only a Google-signed OIDC token of this service
    # account (TASK_TOKEN is the local mechanism and is then not needed).
    task_service_account: str | None = None
    task_oidc_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    # "127.0.0.1:PORT" of a Cloud Tasks emulator (tests, `make run`): TASK_URL_TEMPLATE may then
    # be left out (tasks go to this server's /tasks/<kind>), and the queue sends TASK_TOKEN.
    tasks_emulator_host: str | None = None
    gcs_bucket: str | None = None  # BLOBS=gcs
    s3_bucket: str | None = None  # BLOBS=s3
    s3_endpoint_url: str | None = None  # S3-compatible services (MinIO, ...); default: AWS
    s3_region: str | None = None
    signer: Literal["local", "bsre"] = "local"

    wa_api_base: str | None = None  # default: the local simulator
    wa_token: str | None = Field(default=None, repr=False)
    wa_app_secret: str | None = Field(default=None, repr=False)
    wa_verify_token: str | None = Field(default=None, repr=False)
    # Hosts WhatsApp media may be downloaded from (a leading "." = any subdomain). Default: the
    # API's own host, plus Meta's media CDN when WA_API_BASE points at Meta.
    wa_media_hosts: list[str] | None = None
    # JSON object {phone_number_id: kecamatan code}; default: "demo-<code>" for every kecamatan.
    wa_phone_numbers: dict[str, str] | None = None

    link_secret: str | None = Field(default=None, repr=False)
    session_secret: str | None = Field(default=None, repr=False)
    task_token: str | None = Field(default=None, repr=False)
    esign_callback_secret: str | None = Field(default=None, repr=False)

    # BSrE Esign Client Service (SIGNER=bsre), inside the agency's network.
    bsre_base_url: str | None = None
    bsre_username: str | None = Field(default=None, repr=False)
    bsre_password: str | None = Field(default=None, repr=False)
    bsre_nik: str | None = Field(default=None, repr=False)  # the head of office's NIK
    bsre_api: Literal["v1", "v2"] = "v1"
    bsre_timeout_seconds: float = Field(default=60.0, gt=0)  # each read
    bsre_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    # v1 only: how the service reads width/height, as the box's size or its upper-right corner
    # (BSrE's guide says both; settle it with one test signature, see README)
    bsre_v1_box: Literal["size", "corners"] = "size"
    bsre_v1_response: Literal["BASE64", "BYTE"] = "BASE64"  # v1's jenis_response
    bsre_ca_bundle: str | None = None  # the internal CA of the service's TLS certificate

    # Rate limits per minute (fixed windows counted in the CaseStore, shared by every instance)
    verify_rate_per_minute: int = Field(default=30, ge=1)  # verification page, per client
    guestbook_rate_per_minute: int = Field(default=120, ge=1)  # guest book, per client
    wa_sender_rate_per_minute: int = Field(default=10, ge=1)  # replies per WhatsApp sender
    # Proxies that append to X-Forwarded-For and are trusted: 1 = the platform's front end
    # only; 2 = Google's HTTPS load balancer in front of it (infra/). The client is the entry
    # this many places from the end (sapa.ratelimit.client_address).
    trusted_proxy_hops: int = Field(default=1, ge=1, le=5)

    guestbook_link_days: int = 7
    # The satisfaction survey (services.survey): invite residents once their signed document
    # reached them, with a link valid this many days
    survey_invite: bool = True
    survey_link_days: int = Field(default=14, ge=1)
    max_upload_mb: int = 10
    dev_login: bool = True
    # Identity-Aware Proxy in front of the staff functions: the backend's audience
    # ("/projects/NUMBER/global/backendServices/ID" or "/projects/NUMBER/apps/PROJECT").
    # When set, staff identity comes only from IAP's signed header.
    iap_audience: str | None = None
    iap_certs_url: str = "https://www.gstatic.com/iap/verify/public_key"
    task_max_attempts: int = 8
    task_min_backoff_seconds: float = 1.0
    task_max_backoff_seconds: float = 300.0
    task_workers: int = 4

    sop_file: Path | None = None
    region_file: Path | None = None
    services_file: Path | None = None
    staff_file: Path | None = None
    templates_file: Path | None = None
    desa_file: Path | None = None
    retention_file: Path | None = None
    sla_file: Path | None = None

    @model_validator(mode="after")
    def _cloud_is_strict(self) -> Settings:
        if self.sapa_env == "cloud":
            if self.dev_login:
                raise ValueError("DEV_LOGIN cannot be enabled when SAPA_ENV=cloud")
            if not self.iap_audience:
                raise ValueError("IAP_AUDIENCE must be set when SAPA_ENV=cloud")
            # Cloud Tasks' OIDC token replaces the task token (QUEUE=cloudtasks demands the
            # service account below, with a message that says so).
            oidc = bool(self.task_service_account) or self.queue == "cloudtasks"
            needed = [s for s in _LOCAL_SECRETS if not (oidc and s == "task_token")]
            missing = [s.upper() for s in needed if not getattr(self, s)]
            if missing:
                raise ValueError(f"missing secrets in cloud settings: {', '.join(missing)}")
        return self

    @model_validator(mode="after")
    def _cloud_tasks_is_configured(self) -> Settings:
        if self.task_url_template is not None:
            _check_url_template(self.task_url_template)
        if self.task_service_account and not self.task_url_template:
            raise ValueError(
                "TASK_SERVICE_ACCOUNT needs TASK_URL_TEMPLATE (each function's URL is the"
                " audience of the OIDC tokens it accepts)"
            )
        if self.sapa_env == "cloud" and self.tasks_emulator_host:
            raise ValueError("TASKS_EMULATOR_HOST cannot be set when SAPA_ENV=cloud")
        if self.queue == "cloudtasks":
            names = ["gcp_project"]
            if not self.tasks_emulator_host:
                # the emulator sends no OIDC token, and its tasks go to this server by default
                names += ["task_url_template", "task_service_account"]
            missing = [n.upper() for n in names if not getattr(self, n)]
            if missing:
                raise ValueError(
                    f"QUEUE=cloudtasks needs {', '.join(missing)} (Cloud Tasks calls each"
                    " function at TASK_URL_TEMPLATE with an OIDC token of TASK_SERVICE_ACCOUNT)"
                )
        return self

    @model_validator(mode="after")
    def _bsre_is_configured(self) -> Settings:
        if self.signer == "bsre":
            names = ("bsre_base_url", "bsre_username", "bsre_password", "bsre_nik")
            missing = [n.upper() for n in names if not getattr(self, n)]
            if missing:
                raise ValueError(f"SIGNER=bsre needs {', '.join(missing)}")
        return self

    @property
    def wa_base(self) -> str:
        return self.wa_api_base or f"{self.public_base_url.rstrip('/')}/sim/graph/v21.0"

    @property
    def guestbook_base(self) -> str:
        return f"{self.public_base_url.rstrip('/')}/guestbook"

    @property
    def verify_base(self) -> str:
        return f"{self.public_base_url.rstrip('/')}/verify"

    @property
    def task_base(self) -> str:
        return (self.task_target_base or self.public_base_url).rstrip("/")

    def task_url(self, kind: str) -> str:
        """The URL Cloud Tasks (or Cloud Scheduler) calls for a task kind or scheduled job: the
        function's URL, and so the audience of the OIDC token it carries. Against the Cloud
        Tasks emulator without TASK_URL_TEMPLATE: this server's task endpoint (`task_base`),
        where the embedded worker would deliver it."""
        if self.task_url_template is None and self.tasks_emulator_host:
            return f"{self.task_base}/tasks/{kind}"
        template = self.secret("task_url_template")
        return template.format(name=kind.replace("_", "-"), kind=kind)

    def secret(self, name: str) -> str:
        value = getattr(self, name)
        if not value:
            raise RuntimeError(f"setting {name.upper()} is not set")
        return str(value)


def _is_json_field(annotation: Any) -> bool:
    """list[...] / dict[...] (optionally `| None`): given as JSON in the environment."""
    kinds = (
        [annotation, *get_args(annotation)] if get_origin(annotation) is not None else [annotation]
    )
    return any(get_origin(k) in (list, dict) for k in kinds)


def _from_environment() -> dict[str, Any]:
    fields = Settings.model_fields
    values: dict[str, Any] = {}
    for key, raw in os.environ.items():
        name = key.lower()
        field = fields.get(name)
        if field is None:
            continue
        if _is_json_field(field.annotation):
            try:
                values[name] = json.loads(raw)
            except json.JSONDecodeError:
                raise ValueError(f"{key} must be JSON ({field.annotation})") from None
        else:
            values[name] = raw
    return values


def _check_url_template(template: str) -> None:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError:
        fields = {"?"}
    if not fields or not fields <= {"name", "kind"}:
        raise ValueError(
            "TASK_URL_TEMPLATE must name the function with {name} (or {kind}) and nothing else,"
            " e.g. https://asia-southeast2-PROJECT.cloudfunctions.net/sapa-{name}"
        )


def _local_secrets(data_dir: Path) -> dict[str, str]:
    """Generate the embedded default's secrets once; a restart must keep them (links, sessions)."""
    path = data_dir / "secrets.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    known: dict[str, str] = {}
    if path.exists():
        known = json.loads(path.read_text("utf-8"))
    changed = False
    for name in _LOCAL_SECRETS:
        if not known.get(name):
            known[name] = secrets.token_urlsafe(32)
            changed = True
    if changed:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(known, fh)
        os.replace(tmp, path)
    return known


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and `overrides`); locally, fill unset secrets from disk."""
    settings = Settings(**overrides)
    if settings.sapa_env == "local":
        stored = _local_secrets(settings.sapa_data_dir)
        fill = {n: stored[n] for n in _LOCAL_SECRETS if not getattr(settings, n)}
        if fill:
            settings = settings.model_copy(update=fill)
    return settings
