"""staff /skm: the satisfaction index report over a seeded month of survey answers. Every figure
is compared with the regulation's arithmetic (sapa.domain.ikm.compute) run over the answers kept
on the cases, so the rollup path is checked against the definition, not against itself."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook

from sapa.bootstrap import Container
from sapa.dev.seed import SeedParams, seed_store
from sapa.domain import ikm
from sapa.domain.case import Case
from sapa.services import skm
from tests.functions.test_dashboard import FORBIDDEN, login, pdf_text

JSON = {"Accept": "application/json"}
Q4 = {"periode": "2026-T4"}


@pytest.fixture
def seeded(container: Container) -> list[Case]:
    params = SeedParams(date(2026, 10, 1), 240, 3, container.clock.now())
    seed_store(container, params)
    return container.store.list_cases(limit=10_000)


@pytest.fixture
def as_(
    client_for: Callable[[str], FlaskClient], seeded: list[Case]
) -> Callable[[str], FlaskClient]:
    return lambda email: login(client_for("staff"), email)


def answered(c: Container, cases: list[Case], first: date, last: date, **only: Any) -> list[Case]:
    tz = ZoneInfo(c.region.timezone)
    out = []
    for case in cases:
        if case.survey is None or not first <= case.survey.at.astimezone(tz).date() <= last:
            continue
        if any(getattr(case, k) != v for k, v in only.items()):
            continue
        out.append(case)
    return out


def test_the_quarter_index_is_the_regulations_arithmetic_over_the_answers(
    container: Container, seeded: list[Case], as_: Callable[[str], FlaskClient]
) -> None:
    c = container
    ones = answered(c, seeded, date(2026, 10, 1), date(2026, 12, 31))
    assert len(ones) >= 30, "the seeded month should hold a real sample of answers"
    want = ikm.compute([k.survey.scores for k in ones if k.survey])
    body = as_("kabid@sapa.test").get("/skm", query_string=Q4, headers=JSON).get_json()
    assert body["respondents"] == want.respondents
    assert Decimal(body["result"]["ikm"]) == want.shown
    assert body["result"]["grade"] == want.grade.letter
    assert [e["nrr"] for e in body["elements"]] == [str(want.nrr[code]) for code in ikm.CODES]
    assert body["weakest"] == want.weakest(3)
    # the population is the delivered requests opened in the quarter, the sample Krejcie-Morgan's
    delivered = [k for k in seeded if k.state == "delivered"]
    assert body["population"] == len(delivered)
    assert body["minimum_sample"] == ikm.minimum_sample(len(delivered))
    # per kecamatan: the same arithmetic over that kecamatan's answers (shown from 5)
    for row in body["by_kecamatan"]:
        mine = [k.survey.scores for k in ones if k.kecamatan == row["code"] and k.survey]
        assert row["n"] == len(mine)
        if len(mine) >= skm.SHOWN_FROM:
            assert Decimal(row["ikm"]) == ikm.compute(mine).shown
        else:
            assert "ikm" not in row


def test_a_narrowed_report_counts_only_its_answers_and_hides_small_groups(
    container: Container, seeded: list[Case], as_: Callable[[str], FlaskClient]
) -> None:
    c = container
    client = as_("kadis@sapa.test")
    ones = answered(c, seeded, date(2026, 10, 1), date(2026, 12, 31), service="kk")
    body = client.get("/skm", query_string={**Q4, "service": "kk"}, headers=JSON).get_json()
    assert body["respondents"] == len(ones)
    # a kecamatan with fewer than five respondents: its count only
    counts: dict[str, int] = {}
    for k in answered(c, seeded, date(2026, 10, 1), date(2026, 12, 31)):
        counts[k.kecamatan] = counts.get(k.kecamatan, 0) + 1
    small = next(code for code, n in counts.items() if 0 < n < skm.SHOWN_FROM)
    body = client.get("/skm", query_string={**Q4, "kecamatan": small}, headers=JSON).get_json()
    assert body["respondents"] == counts[small]
    assert body["result"] is None and body["weakest"] == []
    page = client.get("/skm", query_string={**Q4, "kecamatan": small}).get_data(as_text=True)
    assert "nilai belum ditampilkan" in page


def test_the_page_chart_and_downloads_agree(
    container: Container, seeded: list[Case], as_: Callable[[str], FlaskClient]
) -> None:
    client = as_("kabid@sapa.test")
    body = client.get("/skm", query_string=Q4, headers=JSON).get_json()
    page = client.get("/skm", query_string=Q4).get_data(as_text=True)
    assert body["result"]["ikm"].replace(".", ",") in page
    assert page.count('class="bar nrr"') == 9
    resp = client.get("/skm.csv", query_string={**Q4, "table": "elements"})
    assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Unsur" and [r[0] for r in rows[1:]] == list(ikm.CODES)
    for row, element in zip(rows[1:], body["elements"], strict=True):
        assert [int(x) for x in row[2:6]] == element["answers"]
        assert row[6] == f"{Decimal(element['nrr']):.2f}".replace(".", ",")
    book = load_workbook(io.BytesIO(client.get("/skm.xlsx", query_string=Q4).data))
    assert book.sheetnames == ["Info", *skm.TABLE_NAMES]
    info = {row[0].value: row[1].value for row in book["Info"].iter_rows()}
    assert info["Responden"] == body["respondents"]
    assert Decimal(str(info["IKM"])) == Decimal(body["result"]["ikm"])


@pytest.mark.parametrize("email", ["loket.sombaopu@sapa.test", "operator.siak@sapa.test"])
@pytest.mark.parametrize("path", ["/skm", "/skm.csv?table=elements", "/skm.xlsx"])
def test_officers_of_the_steps_get_403(
    as_: Callable[[str], FlaskClient], email: str, path: str
) -> None:
    resp = as_(email).get(path)
    assert resp.status_code == 403
    assert FORBIDDEN in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"periode": "2026-T5"}, "periode", "bad_period"),
        ({"periode": "2026-Q4"}, "periode", "bad_period"),
        ({"periode": "2099"}, "periode", "period_future"),
        ({"periode": "2026", "kecamatan": "999999"}, "kecamatan", "kecamatan"),
        ({"periode": "2026", "role": "pemohon"}, "role", "role"),
    ],
)
def test_a_bad_filter_is_named_in_indonesian(
    as_: Callable[[str], FlaskClient], query: dict[str, str], field: str, message: str
) -> None:
    client = as_("kabid@sapa.test")
    resp = client.get("/skm", query_string=query)
    assert resp.status_code == 400
    assert skm.T[message] in resp.get_data(as_text=True)
    api = client.get("/skm", query_string=query, headers=JSON)
    assert api.status_code == 422
    assert api.get_json()["fields"] == {field: skm.T[message]}


@pytest.mark.parametrize(
    ("code", "first", "last", "label"),
    [
        ("2026-T1", date(2026, 1, 1), date(2026, 3, 31), "Triwulan I 2026"),
        ("2026-t4", date(2026, 10, 1), date(2026, 12, 31), "Triwulan IV 2026"),
        ("2028-T1", date(2028, 1, 1), date(2028, 3, 31), "Triwulan I 2028"),
        ("2026-S1", date(2026, 1, 1), date(2026, 6, 30), "Semester I 2026"),
        ("2026-S2", date(2026, 7, 1), date(2026, 12, 31), "Semester II 2026"),
        ("2026", date(2026, 1, 1), date(2026, 12, 31), "Tahun 2026"),
    ],
)
def test_periods_are_quarters_semesters_and_years(
    code: str, first: date, last: date, label: str
) -> None:
    p = skm.period(code)
    assert (p.first, p.last, p.label) == (first, last, label)


@pytest.mark.parametrize("code", ["2026-T0", "2026-S3", "26-T1", "2026-", "2026-T", "T4-2026", ""])
def test_other_period_codes_are_refused(code: str) -> None:
    with pytest.raises(ValueError):
        skm.period(code)


def test_the_pdf_report_follows_the_annexs_chapters_and_its_figures(
    container: Container, seeded: list[Case], as_: Callable[[str], FlaskClient]
) -> None:
    client = as_("kadis@sapa.test")
    body = client.get("/skm", query_string=Q4, headers=JSON).get_json()
    resp = client.get("/skm.pdf", query_string=Q4)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    words = " ".join(pdf_text(resp.data).split())
    chapters = ["PENDAHULUAN", "PENGUMPULAN DATA", "HASIL PENGOLAHAN DATA", "ANALISIS"]
    positions = [words.index(f"BAB {n}") for n in ("I ", "II ", "III ", "IV ", "V ")]
    assert positions == sorted(positions)
    assert all(chapter in words for chapter in [*chapters, "KESIMPULAN", "KUESIONER"])
    assert body["result"]["ikm"].replace(".", ",") in words
    assert f"{body['respondents']}" in words and "Krejcie" in words
    assert "Kepala Dinas" in words and "@sapa.test" not in words
    for element in body["elements"]:
        assert f"{Decimal(element['nrr']):.2f}".replace(".", ",") in words


def test_the_suggestions_are_the_periods_free_texts_without_their_cases(
    container: Container, seeded: list[Case], as_: Callable[[str], FlaskClient]
) -> None:
    c = container
    ones = answered(c, seeded, date(2026, 10, 1), date(2026, 12, 31))
    said = sorted((k.survey.at, k.id, k.survey.text) for k in ones if k.survey and k.survey.text)
    assert said, "the seeded month should hold some suggestions"
    client = as_("kabid@sapa.test")
    body = client.get("/skm", query_string=Q4, headers=JSON).get_json()
    assert [s["text"] for s in body["suggestions"]] == [text for _, _, text in said]
    page = client.get("/skm", query_string=Q4).get_data(as_text=True)
    section = page[page.index('id="t-suggestions"') :]
    assert said[0][2] in section
    assert not any(k.reg_no in section for k in ones)
    # narrowed to one kecamatan: only its residents' suggestions
    kec = next(k.kecamatan for k in ones if k.survey and k.survey.text)
    mine = [t for _, i, t in said if c.store.get(i).kecamatan == kec]
    narrowed = client.get("/skm", query_string={**Q4, "kecamatan": kec}, headers=JSON).get_json()
    assert [s["text"] for s in narrowed["suggestions"]] == mine
