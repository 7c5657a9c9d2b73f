"""The head of office publishes a finished period's satisfaction index; the public page
(/verify/ikm) then shows it per service, as published, and nothing a figure could name anyone by."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from flask.testing import FlaskClient

from sapa.bootstrap import Container
from sapa.dev.seed import SeedParams, seed_store
from sapa.services import skm
from tests.functions.conftest import Officer

JSON = {"Accept": "application/json"}
Q3 = "2026-T3"  # July to September: over by the test clock's 29 November


@pytest.fixture
def september(container: Container) -> None:
    seed_store(container, SeedParams(date(2026, 9, 1), 240, 5, container.clock.now()))


@pytest.fixture
def public(client_for: Callable[[str], FlaskClient]) -> FlaskClient:
    return client_for("verify")


def test_the_head_of_office_publishes_and_the_public_page_shows_it(
    september: None, login: Callable[[str], Officer], public: FlaskClient
) -> None:
    # GIVEN nothing published yet
    assert public.get("/ikm", headers=JSON).get_json() == {"period": None}
    assert "belum diterbitkan" in public.get("/ikm").get_data(as_text=True)
    # WHEN the head of office publishes the third quarter from the report page
    kadis = login("kadis@sapa.test")
    report = kadis.get(f"/skm?periode={Q3}").get_json()
    page = kadis.get(f"/skm?periode={Q3}", json=False).get_data(as_text=True)
    assert 'action="/skm/publish"' in page
    resp = kadis.post("/skm/publish", json=False, periode=Q3)
    assert resp.status_code == 303 and f"periode={Q3}" in resp.headers["Location"]
    assert "Diterbitkan" in kadis.get(f"/skm?periode={Q3}", json=False).get_data(as_text=True)
    # THEN the public page shows that quarter's index, grade and sample, per service
    shown = public.get("/ikm", headers=JSON).get_json()
    assert shown["period"] == Q3 and shown["label"] == "Triwulan III 2026"
    assert shown["ikm"] == report["result"]["ikm"]
    assert shown["grade"] == report["result"]["grade"]
    assert shown["respondents"] == report["respondents"]
    by_code = {s["code"]: s for s in shown["services"]}
    for row in report["by_service"]:
        if row["n"]:
            assert by_code[row["code"]]["respondents"] == row["n"]
            assert by_code[row["code"]]["ikm"] == row.get("ikm")
    html = public.get("/ikm")
    assert html.status_code == 200
    assert report["result"]["ikm"].replace(".", ",") in html.get_data(as_text=True)
    # AND it names no officer and no resident, only who published it on the staff side
    assert "@sapa.test" not in html.get_data(as_text=True)
    assert "published_by" in shown  # the head of office's name, public by office


def test_only_the_head_of_office_publishes_and_only_a_finished_period(
    september: None, login: Callable[[str], Officer], public: FlaskClient
) -> None:
    kabid = login("kabid@sapa.test")
    assert 'action="/skm/publish"' not in kabid.get(f"/skm?periode={Q3}", json=False).get_data(
        as_text=True
    )
    assert kabid.post("/skm/publish", periode=Q3).status_code == 403
    kadis = login("kadis@sapa.test")
    assert kadis.post("/skm/publish", periode=Q3, csrf=False).status_code == 403
    running = kadis.post("/skm/publish", periode="2026-T4")
    assert running.status_code == 409 and "belum berakhir" in running.get_json()["message"]
    assert kadis.post("/skm/publish", periode="2026-Q3").status_code == 422
    # a quarter with no answers has nothing to publish
    empty = kadis.post("/skm/publish", periode="2026-T1")
    assert empty.status_code == 409 and "kurang dari" in empty.get_json()["message"]
    assert public.get("/ikm", headers=JSON).get_json() == {"period": None}


def test_an_older_period_published_later_does_not_replace_the_newest(
    container: Container, september: None, login: Callable[[str], Officer], public: FlaskClient
) -> None:
    seed_store(container, SeedParams(date(2026, 5, 1), 240, 5, container.clock.now()))
    kadis = login("kadis@sapa.test")
    assert kadis.post("/skm/publish", periode=Q3).status_code == 200
    assert kadis.post("/skm/publish", periode="2026-T2").status_code == 200
    assert public.get("/ikm", headers=JSON).get_json()["period"] == Q3
    assert skm.published(container, "2026-T2") is not None
