"""The SOP-compliance dashboard in Chromium: a generated month in the store, the head of office
opens the dashboard from the worklist, filters October, and the charts are drawn from the data.

The screenshot docs/screenshots/dashboard.png is refreshed with

    SAPA_UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/browser/test_dashboard.py
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sapa.dev.localserver import LocalStack
from sapa.dev.seed import SeedParams, seed_store

from .support import DESKTOP, login
from .test_screenshots import overflow, png_size, publish

pytestmark = pytest.mark.browser

CASES = 1500


@pytest.fixture(scope="module")
def october(stack: LocalStack) -> int:
    """A generated October 2026 in the running stack's store."""
    params = SeedParams(date(2026, 10, 1), CASES, 7, stack.c.clock.now())
    return sum(seed_store(stack.c, params).values())


def bars(page: Any, cls: str) -> list[dict[str, float]]:
    return [
        {"value": float(b["value"]), "width": float(b["width"]), "height": float(b["height"])}
        for b in page.eval_on_selector_all(
            f"svg rect.{cls}",
            "els => els.map(e => ({value: e.dataset.value, "
            "width: e.getBoundingClientRect().width, height: e.getBoundingClientRect().height}))",
        )
    ]


def test_dashboard_draws_its_charts_from_the_data(
    stack: LocalStack, desk: Any, october: int, tmp_path: Path
) -> None:
    page = desk
    if stack.c.clock.now().date() < date(2026, 11, 1):
        pytest.skip("the generated month must lie in the past (October 2026)")
    # GIVEN the head of office on the worklist, with a generated October in the store
    login(page, stack.base_url, "Kepala Dinas")
    # WHEN they open the dashboard from the worklist and choose October 2026
    page.get_by_role("link", name="Dasbor kepatuhan SOP").click()
    page.get_by_role("heading", name="Dasbor kepatuhan SOP").wait_for()
    page.get_by_label("Dari tanggal").fill("2026-10-01")
    page.get_by_label("Sampai tanggal").fill("2026-10-31")
    with page.expect_navigation():
        page.get_by_role("button", name="Tampilkan").click()
    assert "from=2026-10-01" in page.url and "to=2026-10-31" in page.url
    # THEN the summary counts the generated month
    assert (
        page.get_by_text("permohonan masuk")
        .locator("..")
        .inner_text()
        .startswith(f"{october:,}".replace(",", "."))
    )
    # the steps chart: a median and a 90th-percentile bar per handled step, lengths in
    # proportion to their values (share of the mutu baku)
    steps = page.get_by_role("img", name="Waktu penanganan per langkah dibanding mutu baku")
    assert steps.is_visible()
    medians, p90s = bars(page, "bar-median"), bars(page, "bar-p90")
    assert len(medians) == len(p90s) == 8
    scale = max(medians + p90s, key=lambda b: b["value"])
    assert scale["value"] > 1.0  # some step's 90th percentile is past its mutu baku
    for b in medians + p90s:
        assert b["width"] == pytest.approx(scale["width"] * b["value"] / scale["value"], abs=1.5)
    officer_p90s = [b for b in p90s[2:] if b["value"] > 0]
    assert len(officer_p90s) == 6 and all(b["width"] > 10 for b in officer_p90s)
    # the kecamatan chart: 18 volume bars; the widest is the largest kecamatan in the table
    volumes = bars(page, "bar-volume")
    assert len(volumes) == 18
    assert sum(int(b["value"]) for b in volumes) == october
    widest = max(volumes, key=lambda b: b["width"])
    assert widest["value"] == max(b["value"] for b in volumes)
    row = page.locator("#table-kecamatan tr", has_text="Somba Opu").inner_text()
    assert f"\t{int(widest['value'])}\t" in f"{row}\t".replace(".", "")
    backlogs = bars(page, "bar-backlog")
    assert 0 < sum(int(b["value"]) for b in backlogs) < october  # some still open
    for b, v in zip(backlogs, volumes, strict=True):
        assert b["width"] <= v["width"] + 0.5
        assert b["width"] == pytest.approx(widest["width"] * b["value"] / widest["value"], abs=1.5)
    # the weekly trend: five ISO weeks, bar heights in proportion to the volume
    weeks = bars(page, "bar-week")
    assert len(weeks) == 5
    tallest = max(weeks, key=lambda b: b["value"])
    for b in weeks:
        assert b["height"] == pytest.approx(
            tallest["height"] * b["value"] / tallest["value"], abs=1.5
        )
    assert page.locator("svg polyline.trend").count() == 1
    # and the page, photographed, fits an office screen
    shot = tmp_path / "dashboard.png"
    data = page.screenshot(path=str(shot), full_page=True)
    assert overflow(page) == 0
    assert png_size(data)[0] == DESKTOP["width"]
    publish(shot)
    # AND each table's download says which table it is
    csv_links = page.get_by_role("link", name=re.compile(r"^Unduh CSV: ")).all_inner_texts()
    assert len(csv_links) == 5 and len(set(csv_links)) == 5
    # AND the monthly report is asked for by month, from the picker
    picker = page.get_by_label("Laporan bulanan untuk Kepala Dinas (PDF)")
    picker.select_option(label="Oktober 2026")
    with page.expect_response(lambda r: "/reports/monthly.pdf" in r.url) as report:
        page.get_by_role("button", name="Unduh laporan bulanan").click()
    assert report.value.status == 200
    assert report.value.headers["content-type"] == "application/pdf"
    assert "month=2026-10" in report.value.url
