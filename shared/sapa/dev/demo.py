"""`make demo`: one request through all eight SOP steps over HTTP, then its timeline."""

from __future__ import annotations

import argparse
import io
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from sapa.dev.driver import DriveError, HttpDesk, Office, Officer, StepInput, walk
from sapa.domain.sla import format_duration

KECAMATAN = "730608"  # Somba Opu
PHONE_NUMBER_ID = f"demo-{KECAMATAN}"  # its service number in the embedded default
FORM = {
    "service": "kk",
    "name": "Andi Baso",
    "nik": "7306081708900001",
    "kk": "7306080101200003",
    "birth_date": "1990-08-17",
    "desa": "Sungguminasa",
    "address": "Jl. Masjid Raya No. 1",
    "consent": "1",
}
# A 1×1 PNG: the smallest honest photo of a document.
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415478"
    "9c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)


class DemoFailed(DriveError):
    pass


def _wait(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise DemoFailed(f"timed out waiting for {what}")


def _ok(resp: requests.Response, what: str) -> requests.Response:
    if resp.status_code >= 400:
        raise DemoFailed(f"{what}: HTTP {resp.status_code} {resp.text[:300]}")
    return resp


class _Desk(HttpDesk):
    """The officers of the demo, over HTTP: each says what they did; the SIAK operator types
    from the hand-off package (built by a task after "forward"), so waits for it first."""

    def __init__(self, office: Office, looker: str, base: str, out: Callable[[str], None]):
        super().__init__(office, looker, lambda email: Officer(f"{base}/staff", email))
        self.report = self._said
        self.out = out

    def _said(self, email: str, action: str, status: int | None) -> None:
        if action != "claim":
            self.out(f"   {email}: {action}")

    def act(self, email: str, case_id: str, action: str, given: StepInput) -> bool:
        if action == "enter_siak":
            officer = self.officer(email)
            _wait("the SIAK hand-off package", lambda: officer.case(case_id).get("handoff"))
        return super().act(email, case_id, action, given)


def conversation(base: str, wa_id: str) -> list[dict[str, Any]]:
    resp = requests.post(
        f"{base}/dev/wa/api/conversation",
        json={"phone_number_id": PHONE_NUMBER_ID, "wa_id": wa_id},
        timeout=10,
    )
    return list(_ok(resp, "conversation").json()["messages"])


def run(
    base: str,
    out: Callable[[str], None] = print,
    *,
    office: Office | None = None,
    answer_survey: bool = True,
) -> dict[str, Any]:
    """Drive one complete request and return its final timeline (raises DemoFailed): and, with
    `answer_survey`, the resident answers the satisfaction survey they are invited to. `office`:
    the server's SOP and staff (default: read with this environment's settings)."""
    from sapa.adapters.pdf import simple_pdf

    base = base.rstrip("/")
    # A fresh resident each run, so a demo never lands in an earlier run's open case.
    wa_id = "62812" + "".join(secrets.choice("0123456789") for _ in range(8))
    out(f"1. Pemohon {wa_id[:5]}***** menyapa nomor WA Kecamatan Somba Opu")
    sent = _ok(
        requests.post(
            f"{base}/dev/wa/api/send",
            json={
                "phone_number_id": PHONE_NUMBER_ID,
                "from": wa_id,
                "name": FORM["name"],
                "text": "Assalamualaikum, mau urus KK",
            },
            timeout=15,
        ),
        "greet",
    ).json()
    if sent.get("webhook_status") != 200:
        raise DemoFailed(f"webhook refused the greeting: {sent}")

    def link() -> str | None:
        for m in conversation(base, wa_id):
            found = re.search(r"https?://\S+/guestbook/f/\S+", m.get("text") or "")
            if m["direction"] == "out" and found:
                return found.group(0)
        return None

    url = _wait("the guest-book link on WhatsApp", link)
    out(f"2. Tautan Buku Tamu diterima: {url[:60]}…")
    _ok(requests.get(url, timeout=15), "open guest book")
    pdf = simple_pdf("Buku Nikah", ["Salinan buku nikah pemohon (contoh)"])
    resp = _ok(
        requests.post(
            url,
            data=FORM,
            headers={"Accept": "application/json"},
            timeout=30,
            files={
                "doc_kk_lama": ("kk.png", io.BytesIO(_PNG), "image/png"),
                "doc_buku_nikah": ("nikah.pdf", io.BytesIO(pdf), "application/pdf"),
            },
        ),
        "submit guest book",
    )
    reg_no = resp.json()["reg_no"]
    out(f"   Buku Tamu terkirim: permohonan {reg_no}")

    office = office or Office.local()
    counter = office.first_officer(KECAMATAN)
    desk = _Desk(office, counter, base, out)
    finder = desk.officer(counter)
    case_id = _wait(
        "the case in the counter officer's worklist",
        lambda: next((c["id"] for c in finder.worklist() if c["reg_no"] == reg_no), None),
    )
    # steps 3–8 (and the delivery) along the SOP, each officer claiming before acting
    walk(desk, case_id, "delivered")
    final = finder.case(case_id)
    desk.close()
    docs = [m for m in conversation(base, wa_id) if m["direction"] == "out" and m.get("document")]
    if not docs:
        raise DemoFailed("the resident did not receive the signed document on WhatsApp")
    filename = docs[-1]["document"]["filename"]
    out(f"8. Dokumen bertanda tangan elektronik (TTE) terkirim ke pemohon: {filename}")
    if answer_survey:
        url = _wait("the survey invitation on WhatsApp", lambda: survey_link(base, wa_id))
        answers = {f"U{n}": str(3 + n % 2) for n in range(1, 10)}
        _ok(
            requests.post(url, data=answers, headers={"Accept": "application/json"}, timeout=15),
            "answer the survey",
        )
        out("9. Pemohon mengisi survei kepuasan masyarakat (SKM) melalui tautan undangan")
    return dict(final["timeline"])


def survey_link(base: str, wa_id: str) -> str | None:
    """The survey link of the invitation the resident received, once it has come."""
    for m in conversation(base, wa_id):
        found = re.search(r"https?://\S+/guestbook/s/\S+", m.get("text") or "")
        if m["direction"] == "out" and found:
            return found.group(0)
    return None


def print_timeline(tl: dict[str, Any], out: Callable[[str], None] = print) -> None:
    out("")
    out(f"Linimasa permohonan {tl['reg_no']} — status: {tl['state_label']}")
    header = (
        f"{'#':>2}  {'Kegiatan':<52} {'Oleh':<26} {'Tunggu':>10} {'Proses':>10} {'Mutu baku':>10}  "
    )
    out(header)
    out("-" * len(header))
    for s in tl["steps"]:
        flag = "MELEWATI" if s["breached"] else "ok"
        out(
            f"{s['number']:>2}  {s['kegiatan'][:52]:<52} {(s['done_by'] or '-')[:26]:<26} "
            f"{s['waiting']:>10} {s['handling']:>10} {s['mutu_baku']:>10}  {flag}"
        )
    out("-" * len(header))
    out(
        f"Waktu total (lead time): {tl['lead_time']}  · jumlah mutu baku SOP: "
        f"{format_duration(tl['standard_total_seconds'])}  · target kantor: "
        f"{format_duration(tl['lead_time_target_seconds'])}"
    )


def _reachable(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--base",
        default=os.environ.get("SAPA_URL", "http://127.0.0.1:" + os.environ.get("PORT", "8080")),
    )
    args = parser.parse_args(argv)
    stack = None
    base = args.base
    if not _reachable(base):
        from sapa.dev.localserver import LocalStack
        from sapa.settings import load_settings

        data = Path(tempfile.mkdtemp(prefix="sapa-demo-"))
        print(f"Tidak ada server di {base}; menjalankan server sementara (data di {data}).")
        stack = LocalStack(load_settings(sapa_data_dir=data), "127.0.0.1", 0)
        base = stack.base_url
        stack.start()
    try:
        # the office of the server we started (its staff in its store), not of ./var
        tl = run(base, office=Office.of(stack.c) if stack is not None else None)
        print_timeline(tl)
        return 0
    except DriveError as exc:
        print(f"DEMO GAGAL: {exc}", file=sys.stderr)
        return 1
    finally:
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
