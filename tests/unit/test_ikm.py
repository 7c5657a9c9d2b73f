"""The satisfaction index as PermenPANRB 14/2017 computes it: NRR per element, the weighted
sum × 25, the conversion table's grades at their bounds, and Krejcie–Morgan's minimum sample."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from sapa.domain import ikm

ALL = ikm.CODES


def questionnaire(**values: int) -> dict[str, int]:
    return {code: values.get(code, 4) for code in ALL}


def test_a_unit_whose_every_answer_is_4_scores_100_sangat_baik() -> None:
    # A civil-registration office's published semester report (one respondent, every element
    # answered 4): NRR 4 per element, IKM 100, "Sangat Baik".
    result = ikm.compute([questionnaire()])
    assert all(v == 4 for v in result.nrr.values())
    assert result.shown == Decimal("100.00")
    assert result.grade.letter == "A" and result.grade.label == "Sangat Baik"


def test_the_index_is_the_mean_of_the_element_means_times_25() -> None:
    # two respondents: U3 (waiting time) answered 2 and 3, U4 (cost) 4 and 4, the rest 3 and 4
    answers = [
        {code: 3 for code in ALL} | {"U3": 2, "U4": 4},
        {code: 4 for code in ALL} | {"U3": 3},
    ]
    result = ikm.compute(answers)
    assert result.respondents == 2
    assert result.nrr["U3"] == Decimal("2.5") and result.nrr["U4"] == 4
    assert result.nrr["U1"] == Decimal("3.5")
    # (7 × 3.5 + 2.5 + 4) / 9 × 25 = 31 / 9 × 25 = 86.111… → 86.11, "Baik"
    assert result.shown == Decimal("86.11")
    assert result.grade.letter == "B"
    assert result.weakest(2) == ["U3", "U1"]


def test_an_office_whose_every_answer_is_1_scores_25_tidak_baik() -> None:
    result = ikm.compute([{code: 1 for code in ALL}])
    assert result.shown == Decimal("25.00") and result.grade.letter == "D"


@pytest.mark.parametrize(
    ("index", "letter"),
    [
        ("25.00", "D"),
        ("64.99", "D"),
        ("64.994", "D"),
        ("64.995", "C"),  # rounded half up to 65.00
        ("65.00", "C"),
        ("76.60", "C"),
        ("76.605", "B"),  # the table's gap between 76.60 and 76.61, closed by rounding
        ("76.61", "B"),
        ("88.30", "B"),
        ("88.31", "A"),
        ("100", "A"),
    ],
)
def test_the_grades_change_exactly_at_the_conversion_tables_bounds(index: str, letter: str) -> None:
    assert ikm.grade(Decimal(index)).letter == letter


def test_an_index_outside_25_to_100_is_refused() -> None:
    with pytest.raises(ValueError, match="25 to 100"):
        ikm.grade(Decimal("24.99"))


def test_incomplete_or_out_of_scale_questionnaires_are_refused() -> None:
    with pytest.raises(ValueError, match="exactly"):
        ikm.compute([{code: 4 for code in ALL[:8]}])
    with pytest.raises(ValueError, match="U5 = 5"):
        ikm.compute([questionnaire(U5=5)])
    with pytest.raises(ValueError, match="no answers"):
        ikm.compute([])


@pytest.mark.parametrize(
    ("population", "sample"),
    # Krejcie and Morgan's table (1970), the one the regulation's annex reproduces
    [
        (10, 10),
        (20, 19),
        (50, 44),
        (100, 80),
        (150, 108),
        (200, 132),
        (500, 217),
        (1000, 278),
        (5000, 357),
        (10000, 370),
        (1000000, 384),
    ],
)
def test_the_minimum_sample_is_krejcie_and_morgans(population: int, sample: int) -> None:
    assert ikm.minimum_sample(population) == sample


def test_no_population_needs_no_sample() -> None:
    assert ikm.minimum_sample(0) == 0
    with pytest.raises(ValueError):
        ikm.minimum_sample(-1)


def test_the_questionnaire_asks_each_element_once_with_four_answers_worst_first() -> None:
    questions = ikm.load_survey().questions
    assert [q.element for q in questions] == list(ALL)
    assert all(len(q.answers) == 4 and len(set(q.answers)) == 4 for q in questions)
    # civil-registration services are free by law: the best answer on cost says so
    cost = next(q for q in questions if q.element == "U4")
    assert "tidak dipungut biaya" in cost.text and cost.answers[3] == "Tidak, gratis"


def test_a_questionnaire_file_out_of_order_or_short_of_answers_is_refused(tmp_path: Path) -> None:
    entries = [
        f'[[questions]]\nelement = "{code}"\ntext = "Pertanyaan {code}?"\n'
        'answers = ["a", "b", "c", "d"]\n'
        for code in ALL
    ]
    good = tmp_path / "good.toml"
    good.write_text("".join(entries), "utf-8")
    assert len(ikm.load_survey(str(good)).questions) == 9
    swapped = tmp_path / "swapped.toml"
    swapped.write_text("".join([entries[1], entries[0], *entries[2:]]), "utf-8")
    with pytest.raises(ValueError, match="in the order"):
        ikm.load_survey(str(swapped))
    short = tmp_path / "short.toml"
    short.write_text(
        "".join(entries).replace('["a", "b", "c", "d"]', '["a", "b", "c"]', 1), "utf-8"
    )
    with pytest.raises(ValueError, match="four answers"):
        ikm.load_survey(str(short))
