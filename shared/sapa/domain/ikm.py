"""The satisfaction index (Indeks Kepuasan Masyarakat) as PermenPANRB No. 14 of 2017 computes it
from the survey's answers (SKM, Survei Kepuasan Masyarakat).

Nine elements (unsur), each answered on a scale of 1 to 4. An element's value is the mean of its
answers (NRR, nilai rata-rata); the elements weigh the same (1/9 each); the index is the
weighted sum times 25, so from 25 (every answer 1) to 100 (every answer 4). Its grade (mutu
pelayanan) comes from the regulation's conversion table, whose bounds have two decimals: the
index is rounded half up to two decimals before it is graded.

The elements are in the order of the regulation's scope (ruang lingkup, a to i: persyaratan ...
penanganan pengaduan, saran dan masukan; sarana dan prasarana). Some offices' published tables
swap U8 and U9; an export to compare with those must map by name, not by number.

The weight is exactly 1/9. Many published reports multiply by 0.111 instead, which reads an
office whose every answer is 4 as 99.90 rather than 100; the regulation states the weight as
1/9 ("jumlah bobot / jumlah unsur"), and 0.111 is its rounding.

The minimum sample for a population (how many residents a period served) is Krejcie and
Morgan's, as the regulation's table gives it: chi-square 3.841 (one degree of freedom, 95 %),
P = 0.5, margin 0.05, rounded to the nearest whole respondent.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from pathlib import Path

SCALE = (1, 2, 3, 4)


@dataclass(frozen=True)
class Element:
    code: str  # U1 ... U9
    name: str  # as the regulation names it


ELEMENTS: tuple[Element, ...] = (
    Element("U1", "Persyaratan"),
    Element("U2", "Sistem, mekanisme, dan prosedur"),
    Element("U3", "Waktu penyelesaian"),
    Element("U4", "Biaya/tarif"),
    Element("U5", "Produk spesifikasi jenis pelayanan"),
    Element("U6", "Kompetensi pelaksana"),
    Element("U7", "Perilaku pelaksana"),
    Element("U8", "Penanganan pengaduan, saran dan masukan"),
    Element("U9", "Sarana dan prasarana"),
)
CODES = tuple(e.code for e in ELEMENTS)


@dataclass(frozen=True)
class Grade:
    letter: str  # A | B | C | D
    label: str  # mutu pelayanan / kinerja unit pelayanan
    lowest: Decimal  # the lowest index of the grade (two decimals)


# The regulation's conversion table, best first.
GRADES: tuple[Grade, ...] = (
    Grade("A", "Sangat Baik", Decimal("88.31")),
    Grade("B", "Baik", Decimal("76.61")),
    Grade("C", "Kurang Baik", Decimal("65.00")),
    Grade("D", "Tidak Baik", Decimal("25.00")),
)

_CENT = Decimal("0.01")


def two_decimals(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def grade(index: Decimal) -> Grade:
    """The grade of an index (rounded half up to two decimals first)."""
    shown = two_decimals(index)
    if not Decimal(25) <= shown <= Decimal(100):
        raise ValueError(f"an index runs from 25 to 100, not {index}")
    return next(g for g in GRADES if shown >= g.lowest)


@dataclass(frozen=True)
class Result:
    """The index of a set of answers: each element's mean (NRR), the index, its grade."""

    respondents: int
    nrr: Mapping[str, Decimal]  # element code → mean answer (exact)
    index: Decimal  # exact; `shown` is what a report prints

    @property
    def shown(self) -> Decimal:
        return two_decimals(self.index)

    @property
    def grade(self) -> Grade:
        return grade(self.index)

    def weakest(self, n: int = 3) -> list[str]:
        """The `n` elements with the lowest mean, lowest first (ties in element order)."""
        return sorted(self.nrr, key=lambda code: (self.nrr[code], CODES.index(code)))[:n]


def compute(answers: Sequence[Mapping[str, int]]) -> Result:
    """The index of the respondents' `answers`, each a complete questionnaire (every element
    answered on the scale). Raises ValueError for an incomplete or out-of-scale one."""
    if not answers:
        raise ValueError("no answers: the index needs at least one questionnaire")
    totals = dict.fromkeys(CODES, 0)
    for n, one in enumerate(answers, start=1):
        check(one, n)
        for code in CODES:
            totals[code] += one[code]
    return from_totals(len(answers), totals)


def check(one: Mapping[str, int], n: int = 1) -> None:
    """Raise ValueError unless `one` answers exactly the nine elements, each on the scale."""
    if set(one) != set(CODES):
        raise ValueError(f"questionnaire {n} does not answer exactly {', '.join(CODES)}")
    for code in CODES:
        if one[code] not in SCALE:
            raise ValueError(f"questionnaire {n}: {code} = {one[code]!r} is not 1, 2, 3 or 4")


def from_totals(respondents: int, totals: Mapping[str, int]) -> Result:
    """The index of `respondents` complete questionnaires whose answers to each element add up
    to `totals` (what the survey's rollup cells keep)."""
    if respondents <= 0:
        raise ValueError("no answers: the index needs at least one questionnaire")
    count = Decimal(respondents)
    nrr = {code: Decimal(int(totals.get(code, 0))) / count for code in CODES}
    if not all(Decimal(1) <= v <= Decimal(4) for v in nrr.values()):
        raise ValueError("element totals out of the scale for that many respondents")
    index = sum(nrr.values(), Decimal(0)) / Decimal(len(CODES)) * Decimal(25)
    return Result(respondents, nrr, index)


def minimum_sample(population: int) -> int:
    """Krejcie and Morgan's sample size for a population of `population` (0 for none)."""
    if population < 0:
        raise ValueError("a population cannot be negative")
    if population == 0:
        return 0
    chi2, p, d = Decimal("3.841"), Decimal("0.5"), Decimal("0.05")
    n = Decimal(population)
    size = chi2 * n * p * (1 - p) / (d * d * (n - 1) + chi2 * p * (1 - p))
    return int(size.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Question:
    element: str  # U1 ... U9
    text: str
    answers: tuple[str, str, str, str]  # scored 1, 2, 3, 4


QUESTION_LIMIT = 120  # characters: a question fits two lines of a small phone
ANSWER_LIMIT = 40


@dataclass(frozen=True)
class ProfileQuestion:
    key: str  # age | sex | education | occupation
    label: str
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Questionnaire:
    questions: tuple[Question, ...]  # one per element, in the elements' order
    profile: tuple[ProfileQuestion, ...]  # optional for the respondent


@cache
def load_survey(path: str | None = None) -> Questionnaire:
    """The survey (skm.toml): its nine questions and its profile questions, checked."""
    if path is None:
        raw = resources.files("sapa.data").joinpath("skm.toml").read_text("utf-8")
    else:
        raw = Path(path).read_text("utf-8")
    data = tomllib.loads(raw)
    questions = []
    for entry in data["questions"]:
        answers = tuple(str(a).strip() for a in entry["answers"])
        text = str(entry["text"]).strip()
        if len(answers) != len(SCALE) or not all(answers):
            raise ValueError(f"skm: {entry.get('element')}: four answers, worst first")
        if not text or len(text) > QUESTION_LIMIT or max(map(len, answers)) > ANSWER_LIMIT:
            raise ValueError(f"skm: {entry.get('element')}: a question or answer is too long")
        worst, poor, good, best = answers
        questions.append(Question(str(entry["element"]), text, (worst, poor, good, best)))
    if tuple(q.element for q in questions) != CODES:
        raise ValueError(f"skm: one question per element, in the order {', '.join(CODES)}")
    profile = []
    for entry in data.get("profile", []):
        choices = tuple(str(c).strip() for c in entry["choices"])
        key = str(entry["key"])
        if not key.isidentifier() or len(choices) < 2 or len(set(choices)) != len(choices):
            raise ValueError(f"skm: profile {key!r}: a plain key and two or more distinct choices")
        profile.append(ProfileQuestion(key, str(entry["label"]).strip(), choices))
    if len({p.key for p in profile}) != len(profile):
        raise ValueError("skm: each profile question once")
    return Questionnaire(tuple(questions), tuple(profile))
