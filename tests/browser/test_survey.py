"""The satisfaction survey in a real browser on a 360-px phone: the invitation the resident got on
WhatsApp opens one screen-wide page, nine taps and a button answer it, and the answer is kept."""

from __future__ import annotations

from typing import Any

import pytest

from sapa.dev import demo
from sapa.dev.driver import Office
from sapa.dev.localserver import LocalStack
from sapa.domain.ikm import load_survey

from .support import wait_for

pytestmark = pytest.mark.browser


def test_a_resident_answers_the_survey_on_a_small_phone(stack: LocalStack, page: Any) -> None:
    # GIVEN a resident whose signed document was delivered on WhatsApp
    tl = demo.run(
        stack.base_url, out=lambda _: None, office=Office.of(stack.c), answer_survey=False
    )
    case = stack.c.store.get(tl["case_id"])
    link = wait_for("the survey invitation", lambda: demo.survey_link(stack.base_url, case.wa_id))

    # WHEN they open the invitation's link on a 360-px phone
    page.goto(link)
    # THEN the page fits the screen's width, in Indonesian, and asks the nine questions
    assert page.locator("html").get_attribute("lang") == "id"
    assert page.evaluate("document.documentElement.scrollWidth - innerWidth") <= 0
    questions = load_survey().questions
    assert page.locator("fieldset.q").count() == len(questions) == 9

    # WHEN they send it with one question left out, the browser asks for it and nothing is kept
    for q in questions[:-1]:
        page.get_by_role("group", name=q.text).get_by_label(q.answers[2], exact=True).check()
    page.get_by_role("button", name="Kirim jawaban").click()
    assert page.get_by_role("heading", name="Survei Kepuasan Masyarakat").is_visible()
    assert stack.c.store.get(case.id).survey is None

    # WHEN they tap the last answer (each answer's whole line is its label) and send
    last = questions[-1]
    page.get_by_role("group", name=last.text).get_by_text(last.answers[3], exact=True).click()
    page.get_by_label("Jenis kelamin").select_option(label="Perempuan")
    page.get_by_label("Saran atau masukan (tidak wajib)").fill("Cepat, terima kasih.")
    page.get_by_role("button", name="Kirim jawaban").click()

    # THEN they are thanked, and the answer is kept as given
    page.get_by_role("heading", name="Terima kasih").wait_for()
    kept = stack.c.store.get(case.id).survey
    assert kept is not None
    assert kept.scores == {**{q.element: 3 for q in questions[:-1]}, last.element: 4}
    assert kept.profile == {"sex": "Perempuan"}
    assert kept.text == "Cepat, terima kasih."

    # AND opening the link again says it was answered
    page.goto(link)
    assert page.get_by_role("heading", name="Survei sudah diisi").is_visible()
