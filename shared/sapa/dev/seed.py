"""A seeded generator of a realistic month of cases, built through the domain model.

    python -m sapa.dev.seed --cases 3000 --month 2026-10 --seed 7

writes into the configured store (by default the embedded SQLite under SAPA_DATA_DIR). Every
case is made by `Case.open`, `Case.claim` and `Case.apply` with a simulated clock, so it is a
case the state machine allows, with its audit trail. The same seed, month and settings give the
same cases (ids, times, officers); running it twice with them adds nothing the second time.

The residents are synthetic and say so: named "Warga Contoh NNNN", WhatsApp numbers in the
0800 range (toll-free numbers, never a mobile phone, so no real resident is ever written to),
NIKs and KK numbers that pass the validators with serials from 9000 upwards, and a note
"DATA CONTOH" in the form. Cases carry no documents.

What is modelled: arrivals over the month (fewer at weekends and at night), volume per
kecamatan roughly by population, the service mix, officers who work Monday to Friday in office
hours (cases wait over nights and weekends), handling times drawn log-normally around each
step's mutu baku (most within it, a tail past it), returns for correction, cases returned one
step, rejected, cancelled and expired cases, and cases still open when the month ends.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sapa.domain import ikm
from sapa.domain.case import Actor, Case, SurveyAnswer
from sapa.domain.reference import Catalogue, Region
from sapa.domain.registration import registration_number, sequence_scope
from sapa.domain.sop import Sop
from sapa.ports import StaffMember

if TYPE_CHECKING:
    from sapa.bootstrap import Container

SYNTHETIC_NOTE = "DATA CONTOH — dibuat oleh generator sapa.dev.seed, bukan warga sungguhan"

# Office hours (local time, minutes after midnight), Monday = 0, when the office's SLA
# settings name none: the civil service's five-day week with its breaks.
OFFICE_HOURS: dict[int, tuple[tuple[int, int], ...]] = {
    **{d: ((8 * 60, 12 * 60), (13 * 60, 16 * 60)) for d in range(4)},
    4: ((8 * 60, 11 * 60 + 30), (13 * 60, 16 * 60 + 30)),
}

# Relative volume per kecamatan: roughly the population in thousands (BPS Gowa); a kecamatan
# missing here weighs 30.
KECAMATAN_WEIGHT: dict[str, float] = {
    "730601": 45,
    "730602": 75,
    "730603": 32,
    "730604": 25,
    "730605": 20,
    "730606": 40,
    "730607": 130,
    "730608": 170,
    "730609": 17,
    "730610": 30,
    "730611": 35,
    "730612": 42,
    "730613": 26,
    "730614": 16,
    "730615": 15,
    "730616": 31,
    "730617": 14,
    "730618": 27,
}

# The service mix of a WhatsApp service desk; an unknown service weighs 0.1.
SERVICE_WEIGHT: dict[str, float] = {
    "ktp_el": 0.30,
    "kk": 0.25,
    "akta_kelahiran": 0.18,
    "kia": 0.12,
    "surat_pindah": 0.08,
    "akta_kematian": 0.07,
}

# Residents write in the day more than at night (local hour → weight).
HOUR_WEIGHT = [1, 0.5, 0.3, 0.3, 0.6, 2, 4, 7, 10, 11, 11, 10, 8, 8, 9, 8, 7, 6, 5, 5, 5, 4, 3, 2]
DAY_WEIGHT = [1.0, 1.0, 0.95, 0.95, 0.85, 0.45, 0.3]  # Monday … Sunday


@dataclass(frozen=True)
class RoleProfile:
    """How the officers of one role work: waiting (office time, minutes) before they take a
    step, and handling time as a multiple of the mutu baku (log-normal: median, sigma)."""

    wait_median_minutes: float
    wait_sigma: float
    handling_median_ratio: float
    handling_sigma: float


# P(within mutu baku) = Φ(ln(1/median_ratio)/sigma): about 0.9 for loket, 0.6 for the SIAK
# entry, 0.8-0.9 for the heads; the tails run to several times the standard.
PROFILES: dict[str, RoleProfile] = {
    "loket": RoleProfile(15, 1.0, 0.55, 0.45),
    "verifikator": RoleProfile(20, 0.9, 0.6, 0.5),
    "operator_siak": RoleProfile(35, 0.8, 0.75, 0.45),
    "kabid": RoleProfile(45, 0.9, 0.5, 0.7),
    "kadis": RoleProfile(60, 0.8, 0.55, 0.6),
}
DEFAULT_PROFILE = RoleProfile(60, 0.9, 0.7, 0.5)

# Shares of the ways a case goes (each drawn independently per case).
P_NO_FORM = 0.06  # never fills in the guest book → expired after the guest-book limit
P_CORRECTION = 0.13  # the counter officer asks for corrections at the check
P_NEVER_CORRECTS = 0.15  # of those: the resident never sends them → expired
P_CANCEL = 0.035  # the resident cancels (BATAL, YA) somewhere along the way
P_REJECT = 0.025  # rejected by an officer
P_RETURN = 0.05  # sent back one step by the SIAK operator or the head of division
GUESTBOOK_DAYS = 7
MAX_CASES = 99_999  # five digits of the synthetic WhatsApp number
CORRECTION_DAYS = 14

CORRECTION_REASONS = (
    ("doc:kk", "Foto KK buram, nomor tidak terbaca"),
    ("field:address", "Tuliskan RT/RW dan dusun"),
    ("field:birth_date", "Tanggal lahir tidak sesuai dokumen"),
    ("general", "Lampirkan halaman yang memuat tanda tangan"),
)
REJECT_REASONS = (
    "Permohonan ganda: sudah diproses di kantor kecamatan",
    "Dokumen persyaratan tidak sah",
    "Layanan tidak dapat diproses melalui WhatsApp, silakan datang ke kantor",
)
RETURN_REASONS = ("Data belum lengkap untuk SIAK", "Nomor KK tidak cocok dengan SIAK")
P_SURVEY = 0.4  # of the residents whose document was delivered: answer the survey
# How residents score each element (weights of 1, 2, 3, 4): mostly satisfied, slower on the
# completion time (U3) and the facilities (U9); "*" for the others.
SURVEY_WEIGHTS: dict[str, tuple[float, ...]] = {
    "*": (0.02, 0.06, 0.52, 0.40),
    "U3": (0.05, 0.17, 0.53, 0.25),
    "U4": (0.01, 0.01, 0.08, 0.90),
    "U9": (0.04, 0.14, 0.55, 0.27),
}
SURVEY_TEXTS = (
    "Pelayanan cepat, terima kasih.",
    "Mohon dokumen bisa lebih cepat selesai.",
    "Tautan buku tamu sempat tidak terbuka di HP saya.",
    "Petugas ramah dan jelas menjelaskan persyaratan.",
)


class SeedError(ValueError):
    """The generator cannot run with these arguments (said in Bahasa Indonesia)."""


def parse_month(raw: str) -> date:
    """'2026-10' → 1 October 2026."""
    try:
        year, month = (int(p) for p in raw.split("-"))
        return date(year, month, 1)
    except ValueError:
        raise SeedError(
            f"Bulan harus berbentuk TTTT-BB, misalnya 2026-10 (bukan {raw!r})."
        ) from None


# ---- office time --------------------------------------------------------------------------


def _window(t: datetime) -> tuple[datetime, datetime]:
    """The office-hours interval that contains `t`, or the next one after it."""
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(14):
        for open_, close in OFFICE_HOURS.get(day.weekday(), ()):
            start, end = day + timedelta(minutes=open_), day + timedelta(minutes=close)
            if t < end:
                return max(start, t), end
        day += timedelta(days=1)
    raise SeedError("OFFICE_HOURS tidak memuat satu hari kerja pun.")


def office_after(t: datetime, seconds: float) -> datetime:
    """`t` plus `seconds` of office time (nights, breaks and weekends do not count)."""
    remaining = max(seconds, 0.0)
    while True:
        start, end = _window(t)
        available = (end - start).total_seconds()
        if remaining <= available:
            return start + timedelta(seconds=remaining)
        remaining -= available
        t = end


OfficeTime = Callable[[datetime, float], datetime]


def _resident_time(rng: random.Random, t: datetime) -> datetime:
    """Residents act when awake: a moment between midnight and 06:00 moves to the morning."""
    if t.hour < 6:
        return t.replace(hour=6, minute=0, second=0) + timedelta(seconds=rng.uniform(0, 7200))
    return t


# ---- synthetic residents ------------------------------------------------------------------


def synthetic_nik(rng: random.Random, kecamatan: str, born: date, female: bool, n: int) -> str:
    day = born.day + (40 if female else 0)
    return f"{kecamatan}{day:02d}{born.month:02d}{born.year % 100:02d}{9000 + n % 1000:04d}"


def synthetic_kk(kecamatan: str, issued: date, n: int) -> str:
    return (
        f"{kecamatan}{issued.day:02d}{issued.month:02d}{issued.year % 100:02d}{9000 + n % 1000:04d}"
    )


def synthetic_wa(seed: int, month: date, n: int) -> str:
    """62 800 …: the toll-free range, never a mobile number (valid for the phone validator);
    distinct per seed, month and case."""
    return f"62800{seed % 100:02d}{month.year % 10 * 12 + month.month - 1:03d}{n:05d}"


# ---- the simulation -----------------------------------------------------------------------


@dataclass(frozen=True)
class SeedParams:
    month: date  # first day of the month
    cases: int
    seed: int
    now: datetime  # nothing happens after min(month end, now)


class _Sim:
    def __init__(
        self,
        sop: Sop,
        region: Region,
        catalogue: Catalogue,
        staff: Sequence[StaffMember],
        params: SeedParams,
        desa: dict[str, Sequence[str]],
        phone_numbers: dict[str, str],
        office_time: OfficeTime,
    ) -> None:
        self.office_time = office_time
        self.sop, self.region, self.catalogue, self.p = sop, region, catalogue, params
        self.tz = ZoneInfo(region.timezone)
        # deterministic on purpose: the same seed gives the same month (the salts keep the
        # module's first name, sapa.seed, so a seed still gives the month it gave before)
        self.rng = random.Random(f"sapa.seed:{params.seed}:{params.month:%Y-%m}")  # noqa: S311
        self.desa = desa
        self.pnid = {k: p for p, k in sorted(phone_numbers.items())}
        start = datetime(params.month.year, params.month.month, 1, tzinfo=self.tz)
        nxt = (start + timedelta(days=32)).replace(day=1)
        self.start, self.end = start, nxt
        self.cutoff = min(nxt, params.now.astimezone(self.tz))
        self.officers: dict[tuple[str, str | None], list[Actor]] = {}
        for s in staff:
            for role in s.roles:
                key = (role, s.kecamatan if role in sop.kecamatan_roles else None)
                actor = Actor(id=s.email, role=role, kecamatan=s.kecamatan, name=s.name)
                self.officers.setdefault(key, []).append(actor)
        # each officer has a pace of their own (a few are slower)
        self.pace = {
            a.id: math.exp(self.rng.gauss(0, 0.25))
            for group in self.officers.values()
            for a in group
        }

    # -- draws --

    def lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(self.rng.gauss(0.0, sigma))

    def arrivals(self) -> list[datetime]:
        days = (self.end - self.start).days
        day_w = [DAY_WEIGHT[(self.start + timedelta(days=d)).weekday()] for d in range(days)]
        out = []
        for _ in range(self.p.cases):
            d = self.rng.choices(range(days), day_w)[0]
            h = self.rng.choices(range(24), HOUR_WEIGHT)[0]
            at = self.start + timedelta(days=d, hours=h, seconds=self.rng.uniform(0, 3600))
            out.append(at)
        return sorted(out)

    def officer(self, role: str, kecamatan: str) -> Actor:
        key = (role, kecamatan if role in self.sop.kecamatan_roles else None)
        found = self.officers.get(key)
        if not found:
            raise SeedError(f"Tidak ada petugas berperan {role!r} untuk kecamatan {kecamatan}.")
        return found[0] if len(found) == 1 else self.rng.choice(found)

    # -- one case --

    def case(self, n: int, t0: datetime, case_id: str, sequence: Callable[[str], int]) -> Case:
        rng, sop = self.rng, self.sop
        codes = [k.code for k in self.region.kecamatan]
        kec = rng.choices(codes, [KECAMATAN_WEIGHT.get(k, 30) for k in codes])[0]
        services = [s.code for s in self.catalogue.services]
        service = rng.choices(services, [SERVICE_WEIGHT.get(s, 0.1) for s in services])[0]
        wa_id = synthetic_wa(self.p.seed, self.p.month, n)
        at = t0.astimezone(UTC)
        seq = sequence(sequence_scope(kec, at, self.region.timezone))
        case = Case.open(
            sop,
            case_id=case_id,
            reg_no=registration_number(kec, at, self.region.timezone, seq),
            kecamatan=kec,
            phone_number_id=self.pnid.get(kec, f"demo-{kec}"),
            wa_id=wa_id,
            applicant_name=f"Warga Contoh {n:04d}",
            at=at,
        )
        flow = _CaseFlow(self, case, kec, service, n)
        flow.run(t0)
        return case


class _CaseFlow:
    """Walks one case along the SOP until it ends or the simulated clock reaches the cutoff."""

    def __init__(self, sim: _Sim, case: Case, kecamatan: str, service: str, n: int) -> None:
        self.sim, self.case, self.kec, self.service, self.n = sim, case, kecamatan, service, n
        self.rng = sim.rng
        self.sop = sim.sop
        self.applicant = Actor.applicant(case.wa_id)
        self.system = Actor.system()
        # the resident may cancel before this many further moves (None: never)
        self.cancel_at = self.rng.randint(1, 7) if self.rng.random() < P_CANCEL else None
        self.moves = 0

    def _apply(self, event: str, actor: Actor, t: datetime, **detail: object) -> None:
        self.case.apply(self.sop, event, actor, t.astimezone(UTC), **detail)

    def _past(self, t: datetime) -> bool:
        return t >= self.sim.cutoff

    def _maybe_cancel(self, t: datetime) -> bool:
        """The resident sends BATAL (and YA) before the next move: the case ends here."""
        self.moves += 1
        if self.cancel_at is None or self.moves < self.cancel_at:
            return False
        when = _resident_time(self.rng, t + timedelta(minutes=self.sim.lognormal(90, 1.2)))
        if self._past(when):
            return True  # the case is still open at the cutoff
        self._apply("cancel", self.applicant, when, reason="Dibatalkan oleh pemohon (BATAL)")
        return True

    def _officer(self, ready: datetime, event: str, role: str, **detail: object) -> datetime | None:
        """An officer takes the waiting step in office hours and does `event`; None when the
        cutoff comes first (the case stays open, claimed or not)."""
        sim = self.sim
        profile = PROFILES.get(role, DEFAULT_PROFILE)
        actor = sim.officer(role, self.kec)
        wait = sim.lognormal(profile.wait_median_minutes * 60, profile.wait_sigma)
        claimed = sim.office_time(ready, wait)
        if self._past(claimed):
            return None
        self.case.claim(self.sop, actor, claimed.astimezone(UTC))
        step = self.case.waiting_step(self.sop)
        standard = step.mutu_baku_seconds if step else 60.0
        handling = sim.lognormal(
            standard * profile.handling_median_ratio * sim.pace[actor.id], profile.handling_sigma
        )
        done = claimed + timedelta(seconds=max(handling, 3.0))
        if self._past(done):
            return None
        self._apply(event, actor, done, **detail)
        return done

    def _submit(self, t: datetime) -> None:
        case = self.case
        born = date(1955, 1, 1) + timedelta(days=self.rng.randrange(0, 365 * 50))
        female = self.rng.random() < 0.5
        issued = date(2015, 1, 1) + timedelta(days=self.rng.randrange(0, 365 * 10))
        desa = self.sim.desa.get(self.kec) or ("-",)
        case.service = self.service
        case.form = {
            "name": case.applicant_name,
            "nik": synthetic_nik(self.rng, self.kec, born, female, self.n),
            "kk": synthetic_kk(self.kec, issued, self.n),
            "birth_date": born.isoformat(),
            "desa": self.rng.choice(list(desa)),
            "address": f"Jl. Contoh No. {self.n % 200 + 1}",
            "wa_number": case.wa_id,
            "notes": SYNTHETIC_NOTE,
        }
        case.consent = {"version": "data-contoh", "text": SYNTHETIC_NOTE, "at": t.isoformat()}
        case.corrections, case.corrections_at = {}, None
        self._apply("submit_form", self.applicant, t, service=self.service, documents=[])

    def run(self, t0: datetime) -> None:
        rng, sim, case = self.rng, self.sim, self.case
        # step 2: the link, at once by the system (auto) or by the counter officer (manual)
        step2 = case.waiting_step(self.sop)
        if step2 is None:
            return
        if self.sim.region.kecamatan_by_code(self.kec).link_mode == "auto" and step2.automatable:
            t = t0 + timedelta(seconds=rng.uniform(1, 4))
            if self._past(t):
                return
            self._apply(step2.event, self.system, t)
        else:
            done = self._officer(t0, step2.event, step2.role)
            if done is None:
                return
            t = done
        if self._maybe_cancel(t):
            return
        # the guest book
        if rng.random() < P_NO_FORM:
            t_exp = t + timedelta(days=GUESTBOOK_DAYS, minutes=rng.uniform(0, 10))
            if not self._past(t_exp):
                reason = f"Buku Tamu tidak diisi dalam {GUESTBOOK_DAYS} hari"
                self._apply("expire", self.system, t_exp, reason=reason)
            return
        t = _resident_time(rng, t + timedelta(minutes=sim.lognormal(40, 1.6)))
        if self._past(t):
            return
        self._submit(t)
        # step 3, with perhaps a round of corrections
        corrected = False
        while True:
            loket = "loket"
            if not corrected and rng.random() < P_CORRECTION:
                key, why = rng.choice(CORRECTION_REASONS)
                case.corrections = {key: why}
                done = self._officer(t, "request_correction", loket, reason=why)
                if done is None:
                    return
                case.corrections_at = done.astimezone(UTC)
                corrected = True
                if rng.random() < P_NEVER_CORRECTS:
                    t_exp = done + timedelta(days=CORRECTION_DAYS, minutes=rng.uniform(0, 10))
                    if not self._past(t_exp):
                        reason = f"perbaikan tidak dikirim dalam {CORRECTION_DAYS} hari"
                        self._apply("expire", self.system, t_exp, reason=reason)
                    return
                t = _resident_time(rng, done + timedelta(minutes=sim.lognormal(300, 1.2)))
                if self._past(t):
                    return
                self._submit(t)
                continue
            break
        reject_at = rng.choice(("check", "enter_siak")) if rng.random() < P_REJECT else None
        return_at = rng.choice(("enter_siak", "approve")) if rng.random() < P_RETURN else None
        for step in self.sop.steps[2:]:
            if self._maybe_cancel(t):
                return
            if reject_at == step.event:
                why = rng.choice(REJECT_REASONS)
                self._officer(t, "reject", step.role, reason=why)
                return
            if return_at == step.event:
                back = self._officer(t, "return", step.role, reason=rng.choice(RETURN_REASONS))
                if back is None:
                    return
                redo = case.waiting_step(self.sop)
                if redo is None:
                    return
                again = self._officer(back, redo.event, redo.role)
                if again is None:
                    return
                t = again
            if step.event == "enter_siak":
                case.siak_ref = f"SIAK-CONTOH-{self.n:06d}"
            done = self._officer(t, step.event, step.role)
            if done is None:
                return
            t = done
        # the signed document reaches the resident's phone
        if case.state in {x.from_state for x in self.sop.transitions if x.event == "deliver"}:
            delivered = t + timedelta(seconds=rng.uniform(5, 90))
            if not self._past(delivered):
                self._apply("deliver", self.system, delivered)
                self._survey(delivered)

    def _survey(self, delivered: datetime) -> None:
        """Some residents answer the satisfaction survey within two days. A random stream of
        the case's own, so adding the survey changed no other figure of a seeded month."""
        rng = random.Random(f"sapa.seed.skm:{self.case.id}")  # noqa: S311
        if rng.random() >= P_SURVEY:
            return
        at = delivered + timedelta(seconds=rng.uniform(60, 2 * 86400))
        if self._past(at):
            return
        scores = {}
        for code in ikm.CODES:
            weights = SURVEY_WEIGHTS.get(code, SURVEY_WEIGHTS["*"])
            scores[code] = rng.choices(ikm.SCALE, weights)[0]
        profile = {
            q.key: rng.choice(q.choices) for q in ikm.load_survey().profile if rng.random() < 0.7
        }
        text = rng.choice(SURVEY_TEXTS) if rng.random() < 0.15 else ""
        self.case.answer_survey(SurveyAnswer(at=at, scores=scores, profile=profile, text=text))


def generate(
    sop: Sop,
    region: Region,
    catalogue: Catalogue,
    staff: Sequence[StaffMember],
    params: SeedParams,
    *,
    desa: dict[str, Sequence[str]] | None = None,
    phone_numbers: dict[str, str] | None = None,
    sequence: Callable[[str], int] | None = None,
    skip: Callable[[str], bool] | None = None,
    office_time: OfficeTime | None = None,
) -> Iterable[Case]:
    """The cases of one month, in order of arrival (each with its audit events unsaved).

    `sequence(scope)` numbers the registration numbers (the store's counter when writing into
    a store; by default a counter of this run). `skip(case_id)` leaves out cases that exist.
    `office_time(t, seconds)` adds office time (default: OFFICE_HOURS, no holidays)."""
    if not 1 <= params.cases <= MAX_CASES:
        raise SeedError(f"Jumlah permohonan harus antara 1 dan {MAX_CASES}.")
    first = datetime(params.month.year, params.month.month, 1, tzinfo=ZoneInfo(region.timezone))
    if first > params.now:
        raise SeedError(f"Bulan {params.month:%Y-%m} belum dimulai: pilih bulan yang sudah lewat.")
    sim = _Sim(
        sop,
        region,
        catalogue,
        staff,
        params,
        desa or {},
        phone_numbers or {f"demo-{k.code}": k.code for k in region.kecamatan},
        office_time or office_after,
    )
    counter: Counter[str] = Counter()

    def local_sequence(scope: str) -> int:
        counter[scope] += 1
        return counter[scope]

    ids = random.Random(f"sapa.seed.ids:{params.seed}:{params.month:%Y-%m}")  # noqa: S311
    for n, t0 in enumerate(sim.arrivals(), start=1):
        case_id = f"{ids.getrandbits(128):032x}"
        if skip is not None and skip(case_id):
            # drawn all the same, so the cases after it are those of an uninterrupted run
            sim.case(n, t0, case_id, lambda scope: 1)
            continue
        yield sim.case(n, t0, case_id, sequence or local_sequence)


def generate_for(
    c: Container, params: SeedParams, *, skip: Callable[[str], bool] | None = None
) -> Iterable[Case]:
    """`generate` with the container's SOP, reference data, staff, phone numbers, working
    hours and the store's registration counters."""
    return generate(
        c.sop,
        c.region,
        c.catalogue,
        c.staff.all(),
        params,
        desa={k: [d.name for d in v] for k, v in c.desa.items()},
        phone_numbers=c.phone_numbers,
        sequence=c.store.next_sequence,
        skip=skip,
        office_time=_office_calendar(c),
    )


def seed_store(c: Container, params: SeedParams) -> dict[str, int]:
    """Generate the month into `c.store`; returns how many cases per final state. Cases that
    already exist (the same seed and month seeded before) are left as they are."""
    from sapa.domain.errors import NotFound

    def exists(case_id: str) -> bool:
        try:
            c.store.get(case_id)
        except NotFound:
            return False
        return True

    states: Counter[str] = Counter()
    for case in generate_for(c, params, skip=exists):
        c.store.create(case)
        states[case.state] += 1
    return dict(states)


def _office_calendar(c: Container) -> OfficeTime | None:
    """The office's own working hours and holidays, where its SLA settings define them."""
    from sapa.domain import sla

    calendar = getattr(getattr(c, "sla_clocks", None), "calendar", None)
    add = getattr(sla, "add_working_seconds", None)
    if calendar is None or add is None:
        return None
    return lambda t, seconds: add(t, seconds, calendar)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sapa.dev.seed",
        description="Isi penyimpanan dengan satu bulan permohonan contoh (data sintetis).",
    )
    parser.add_argument("--cases", type=int, default=3000, help="jumlah permohonan (3000)")
    parser.add_argument("--month", default=None, help="bulan TTTT-BB (bawaan: bulan lalu)")
    parser.add_argument("--seed", type=int, default=7, help="benih acak (7)")
    parser.add_argument(
        "--force-real-store",
        action="store_true",
        help="izinkan menulis ke penyimpanan selain SQLite lokal atau dengan WhatsApp sungguhan",
    )
    ns = parser.parse_args(argv)
    from sapa.bootstrap import Container
    from sapa.settings import load_settings

    c = Container(load_settings())
    s = c.settings
    real = s.sapa_env == "cloud" or s.store != "sqlite" or s.wa_api_base is not None
    if real and not ns.force_real_store:
        # synthetic open cases would breach at the next sweep and page real officers, and
        # the sweep would write to real (toll-free) numbers from the office's real numbers
        print(
            "Data contoh hanya untuk penyimpanan SQLite lokal dengan simulator WhatsApp "
            "(STORE=sqlite, WA_API_BASE kosong). Gunakan --force-real-store bila memang "
            "disengaja.",
            file=sys.stderr,
        )
        return 2
    now = c.clock.now()
    try:
        if ns.month:
            month = parse_month(ns.month)
        else:
            local = now.astimezone(ZoneInfo(c.region.timezone)).date().replace(day=1)
            month = (local - timedelta(days=1)).replace(day=1)
        started = time.perf_counter()
        states = seed_store(c, SeedParams(month=month, cases=ns.cases, seed=ns.seed, now=now))
    except SeedError as exc:
        print(exc, file=sys.stderr)
        return 2
    took = time.perf_counter() - started
    total = sum(states.values())
    print(f"{total} permohonan contoh untuk {month:%Y-%m} ditulis dalam {took:.1f} detik.")
    for state, n in sorted(states.items(), key=lambda kv: -kv[1]):
        print(f"  {state:<22} {n}")
    if total < ns.cases:
        print(f"  ({ns.cases - total} sudah ada dari benih yang sama, dilewati)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
