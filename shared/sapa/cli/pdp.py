"""The operator's personal-data commands (UU 27/2022), registered in `sapa.cli.COMMANDS`:

    sapa subject-export (--nik NIK | --wa NUMBER) --out FILE.zip --by ADMIN-EMAIL
    sapa breach-report --since TIME [--until TIME] [--out FILE.csv]
    sapa subject-reindex    re-save every case so the store's subject index covers it

Both use the same services as the admin pages; the export is recorded in the access log and
the audit trail under the admin named with --by (who must hold the admin role).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from sapa.domain.errors import ConcurrentUpdate, Forbidden, PermanentError

OUT_EXISTS = "Berkas {path} sudah ada; pilih nama lain (tidak ditimpa)."
UNKNOWN_ADMIN = "Petugas {email} tidak terdaftar."


def subject_export_args(p: argparse.ArgumentParser) -> None:
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--nik", help="the resident's NIK (16 digits)")
    who.add_argument(
        "--wa",
        help="the resident's WhatsApp number (08..., 62... or +62...) or user id (US.1234...)",
    )
    p.add_argument("--out", type=Path, required=True, help="the zip to write (never overwritten)")
    p.add_argument("--by", required=True, help="e-mail of the admin handling the request")


def subject_export(ns: argparse.Namespace) -> int:
    from sapa.bootstrap import container
    from sapa.services import subject

    out = Path(ns.out)
    if out.exists():
        raise PermanentError(OUT_EXISTS.format(path=out))
    c = container()
    staff = c.staff.get(ns.by)
    if staff is None:
        raise Forbidden(UNKNOWN_ADMIN.format(email=ns.by))
    who = subject.parse_subject(ns.nik or "", ns.wa or "")
    done = subject.export(c, staff, who)
    # The zip is the resident's data: readable by the operator only, never replaced.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(done.data)
    print(
        f"{out}: {done.cases} permohonan, {done.files} berkas"
        + (f", {done.missing} dokumen sudah dihapus sesuai retensi" if done.missing else "")
    )
    return 0


def breach_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", required=True, help="start, ISO date/time (local time if no offset)")
    p.add_argument("--until", help="end (exclusive), ISO date/time; default: now")
    p.add_argument("--out", type=Path, help="CSV file to write; default: standard output")


def breach_report(ns: argparse.Namespace) -> int:
    from sapa.bootstrap import container
    from sapa.services import access

    c = container()
    zone = ZoneInfo(c.region.timezone)
    since = access.parse_time(ns.since, zone)
    until = access.parse_time(ns.until, zone) if ns.until else access.until_now(c)
    rows = access.breach_report(c, since, until)
    text = access.report_csv(rows)
    if ns.out is None:
        sys.stdout.write(text)
    else:
        Path(ns.out).write_text(text, encoding="utf-8")
        cases = len({r.case_id for r in rows})
        print(f"{ns.out}: {len(rows)} catatan, {cases} permohonan", file=sys.stderr)
    return 0


def subject_reindex_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=int, default=500, help="cases read per query (default 500)")


def subject_reindex(ns: argparse.Namespace) -> int:
    """Cases stored before the subject index existed (Firestore; SQLite indexes its old cases
    when it opens the file) get it by being saved again unchanged: no event, no new updated_at,
    so the walk by updated_at below sees each case once."""
    from sapa.bootstrap import container
    from sapa.services.rollups import cases_since

    if ns.batch < 1:
        raise PermanentError("--batch harus lebih dari 0.")
    c = container()
    done = 0
    for case in cases_since(c.store, None, int(ns.batch)):
        with contextlib.suppress(ConcurrentUpdate):  # saved meanwhile: indexed by that save
            c.store.save(case)
        done += 1
    print(f"{done} permohonan diindeks ulang")
    return 0
