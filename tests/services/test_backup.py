"""`sapa backup` / `sapa restore`: a consistent snapshot taken while SAPA writes, and a restore
that checks everything before it puts anything in place."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from pathlib import Path

import pytest

from sapa import cli
from sapa.adapters.clock import FixedClock
from sapa.adapters.embedded.backup import MANIFEST, backup, restore
from sapa.bootstrap import Container
from sapa.domain.errors import PermanentError
from tests.conftest import make_container
from tests.fakes import FakeWhatsApp
from tests.services.conftest import Runner, greet
from tests.services.test_pipeline import to_approved


def _state(c: Container) -> dict[str, object]:
    """Everything a restore must bring back: cases whole, their events, messages and blobs."""
    cases = c.store.list_cases(limit=10_000)
    out: dict[str, object] = {}
    for case in cases:
        blobs = [d.key for d in case.documents] + [
            d.key for d in (case.draft, case.signed, case.handoff) if d is not None
        ]
        out[case.id] = {
            "doc": case.model_dump(mode="json"),
            "events": [e.model_dump(mode="json") for e in c.store.events(case.id)],
            "messages": [m.to_json() for m in c.store.messages(case.id)],
            "blobs": {k: c.blobs.get(k) for k in blobs},
        }
    return out


def test_round_trip_brings_back_every_case_event_message_and_blob(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock, tmp_path: Path
) -> None:
    # GIVEN an approved case with documents, a draft and a hand-off zip, and a greeted one
    to_approved(container, runner, wa, clock)
    greet(container, wa_id="6281234500001", wamid="wamid.B1")
    before = _state(container)
    assert len(before) == 2
    data_dir = container.settings.sapa_data_dir

    # WHEN it is backed up and restored into a new data directory
    archive = tmp_path / "backups" / "sapa.tar.gz"
    made = backup(data_dir, archive)
    assert "sapa.db" in made.databases and made.files > 3
    assert archive.stat().st_mode & 0o777 == 0o600  # every NIK and the secrets: owner only
    target = tmp_path / "restored"
    restored = restore(archive, target)

    # THEN the restored directory serves the same data, byte for byte
    assert restored.files == made.files
    again = make_container(target)
    assert _state(again) == before
    # and the secrets came along (guest-book links and sessions stay valid after a restore)
    assert json.loads((target / "secrets.json").read_text()) == json.loads(
        (data_dir / "secrets.json").read_text()
    )


def test_backup_while_writing_is_a_consistent_snapshot(
    container: Container, tmp_path: Path
) -> None:
    # GIVEN a writer opening cases as fast as it can while the backup runs
    stop = threading.Event()
    opened: list[str] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            opened.append(greet(container, wa_id=f"62812340{n:05d}", wamid=f"wamid.W{n}"))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(opened) < 5:
            threading.Event().wait(0.01)
        archive = tmp_path / "live.tar.gz"
        backup(container.settings.sapa_data_dir, archive)
    finally:
        stop.set()
        thread.join()

    # THEN the snapshot is a valid database holding a prefix of what was written, each case
    # whole with its events (no torn write)
    restored = make_container(restore(archive, tmp_path / "r").data_dir)
    cases = restored.store.list_cases(limit=100_000)
    assert 5 <= len(cases) <= len(opened)
    assert {c.id for c in cases} <= set(opened)
    for case in cases:
        assert restored.store.events(case.id), case.id


def test_restore_refuses_a_directory_with_data_unless_forced_and_keeps_the_old_one(
    container: Container, tmp_path: Path
) -> None:
    greet(container)
    archive = tmp_path / "a.tar.gz"
    backup(container.settings.sapa_data_dir, archive)
    target = tmp_path / "busy"
    target.mkdir()
    (target / "sapa.db").write_bytes(b"something precious")

    with pytest.raises(PermanentError, match="sudah berisi data"):
        restore(archive, target)
    assert (target / "sapa.db").read_bytes() == b"something precious"

    report = restore(archive, target, force=True)
    assert report.moved_aside is not None
    assert (report.moved_aside / "sapa.db").read_bytes() == b"something precious"
    assert len(make_container(target).store.list_cases()) == 1


def _rewrite(archive: Path, out: Path, change: dict[str, bytes]) -> None:
    """Copy `archive` to `out`, replacing (or adding) members by name."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member)
            if member.name in change:
                continue
            dst.addfile(member, data)
        for name, data in change.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("tampered", "sha256 tidak cocok"),
        ("traversal", "jalur tidak sah"),
        ("not-a-backup", "Format arsip"),
        ("extra-file", "tidak sesuai dengan MANIFEST"),
    ],
)
def test_restore_checks_the_archive_before_touching_anything(
    container: Container, tmp_path: Path, damage: str, message: str
) -> None:
    greet(container)
    good = tmp_path / "good.tar.gz"
    backup(container.settings.sapa_data_dir, good)
    bad = tmp_path / "bad.tar.gz"
    if damage == "tampered":
        _rewrite(good, bad, {"data/secrets.json": b'{"link_secret": "changed"}'})
    elif damage == "traversal":
        _rewrite(good, bad, {"data/../../evil.txt": b"x"})
    elif damage == "extra-file":
        _rewrite(good, bad, {"data/planted.txt": b"x"})
    else:
        _rewrite(good, bad, {MANIFEST: b'{"format": "something-else"}'})
    target = tmp_path / "target"

    with pytest.raises(PermanentError, match=message):
        restore(bad, target)
    # nothing was put in place, nothing escaped the staging directory
    assert not target.exists()
    assert not (tmp_path / "evil.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["bad.tar.gz", "good.tar.gz", "var"]
    )


def test_cli_backup_and_restore(
    container: Container, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    greet(container)
    data_dir = container.settings.sapa_data_dir
    archive = tmp_path / "cli.tar.gz"
    assert cli.main(["backup", str(archive), "--data-dir", str(data_dir)]) == 0
    assert "sapa.db" in capsys.readouterr().out
    # a second restore over the restored data without --force is refused with a clear message
    target = tmp_path / "cli-restored"
    assert cli.main(["restore", str(archive), "--data-dir", str(target)]) == 0
    assert cli.main(["restore", str(archive), "--data-dir", str(target)]) == 2
    assert "sudah berisi data" in capsys.readouterr().err
    # the archive may not be written inside the data directory it backs up
    assert cli.main(["backup", str(data_dir / "x.tar.gz"), "--data-dir", str(data_dir)]) == 2
