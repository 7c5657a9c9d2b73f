"""Property tests of every parser of resident input not covered elsewhere (the webhook's is in
tests/whatsapp/test_webhook_properties.py): NIK, KK and phone numbers, and the guest-book form
as the function reads it. Bad input is refused with ValidationFailed (a clear message per
field), never another exception, and a refusal changes nothing on the case."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sapa.bootstrap import Container
from sapa.domain.errors import ValidationFailed
from sapa.domain.values import KkNumber, Nik, normalize_phone
from sapa.log import mask
from sapa.services import guestbook
from sapa.services.guestbook import Submission, Upload
from tests.functions.conftest import Flow, tiny_png, valid_fields

EXAMPLES = settings(max_examples=150, deadline=None)
FIXTURE_EXAMPLES = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# ---- strategies -------------------------------------------------------------------------------

region = st.tuples(st.integers(11, 99), st.integers(1, 99), st.integers(1, 99)).map(
    lambda t: f"{t[0]:02d}{t[1]:02d}{t[2]:02d}"
)
birth = st.dates(min_value=date(1930, 1, 1), max_value=date(2029, 12, 31))
serial = st.integers(1, 9999).map(lambda n: f"{n:04d}")


@st.composite
def niks(draw: Any) -> tuple[str, date, bool]:
    born, female = draw(birth), draw(st.booleans())
    day = born.day + (40 if female else 0)
    value = f"{draw(region)}{day:02d}{born.month:02d}{born.year % 100:02d}{draw(serial)}"
    return value, born, female


def separated(digits: str) -> st.SearchStrategy[str]:
    """The same digits as people type them: with spaces, dots or dashes between groups."""
    return st.lists(st.sampled_from(["", " ", ".", "-"]), min_size=3, max_size=3).map(
        lambda seps: (
            digits[:4] + seps[0] + digits[4:8] + seps[1] + digits[8:12] + seps[2] + digits[12:]
        )
    )


mobile = st.integers(7, 12).flatmap(
    lambda n: st.text("0123456789", min_size=n, max_size=n).map(lambda rest: "8" + rest)
)
junk = st.text(max_size=40) | st.from_regex(r"[0-9 .\-+()]{0,24}", fullmatch=True)

# ---- NIK and KK -------------------------------------------------------------------------------


@EXAMPLES
@given(niks(), st.data())
def test_every_well_formed_nik_parses_in_any_typed_form(sample: Any, data: Any) -> None:
    value, born, female = sample
    nik = Nik.parse(data.draw(separated(value)))
    assert nik.value == value and nik.female is female and nik.birth_matches(born)
    assert nik.masked == value[:4] + "********" + value[12:]
    assert value not in mask(f"NIK {value} diterima") and nik.masked in mask(value)


@EXAMPLES
@given(junk)
def test_nik_and_kk_parsers_accept_only_sixteen_ascii_digits(raw: str) -> None:
    for parse in (Nik.parse, KkNumber.parse):
        try:
            parsed = parse(raw)
        except ValidationFailed as exc:
            assert exc.fields and all(isinstance(m, str) and m for m in exc.fields.values())
            continue
        assert re.fullmatch(r"[0-9]{16}", parsed.value)


@EXAMPLES
@given(st.text("0123456789", min_size=16, max_size=16))
def test_a_nik_is_refused_with_the_reason(raw: str) -> None:
    try:
        Nik.parse(raw)
    except ValidationFailed as exc:
        assert set(exc.fields) == {"nik"}
        assert exc.message in {
            "Kode wilayah pada NIK tidak valid.",
            "Nomor urut pada NIK tidak boleh 0000.",
            "Tanggal lahir pada NIK tidak valid.",
        }


@EXAMPLES
@given(st.text("٠١٢٣٤٥٦٧٨٩０１２３４５６７８９", min_size=16, max_size=16))
def test_digits_of_other_scripts_are_not_a_nik(raw: str) -> None:
    with pytest.raises(ValidationFailed):
        Nik.parse(raw)
    with pytest.raises(ValidationFailed):
        KkNumber.parse(raw)


# ---- phone numbers ----------------------------------------------------------------------------


@EXAMPLES
@given(mobile, st.sampled_from(["0{}", "62{}", "+62{}", "+62 {}", "{}", "(0){}"]))
def test_every_written_form_of_a_mobile_number_gives_one_wa_id(digits: str, form: str) -> None:
    raw = form.format(digits)
    if raw.startswith("(0)"):
        raw = "0" + raw[3:]
    wa_id = normalize_phone(raw)
    assert wa_id == "62" + digits
    assert normalize_phone(wa_id) == wa_id  # idempotent
    assert wa_id not in mask(f"dari {wa_id}") and digits not in mask(f"nomor 0{digits}")


@EXAMPLES
@given(junk)
def test_phone_parser_returns_a_wa_id_or_a_clear_refusal(raw: str) -> None:
    try:
        wa_id = normalize_phone(raw, field="wa_number")
    except ValidationFailed as exc:
        assert set(exc.fields) == {"wa_number"}
        return
    assert re.fullmatch(r"62[1-9][0-9]{7,12}", wa_id)
    if wa_id.startswith("628"):
        assert wa_id not in mask(wa_id)


# ---- the guest-book form ----------------------------------------------------------------------

FORM_KEYS = ["service", "name", "nik", "kk", "birth_date", "desa", "address", "wa_number"]
form_values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", " ", "ktp_el", "kk_baru", "1990-08-15", "7306081508900001", "0"]),
)
forms = st.dictionaries(
    st.sampled_from([*FORM_KEYS, "consent", "notes", "csrf", "doc_kk", "x" * 50]),
    form_values,
    max_size=10,
)


@FIXTURE_EXAMPLES
@given(forms, st.booleans())
def test_any_form_is_either_accepted_or_refused_without_a_trace(
    flow: Flow, container: Container, fields: dict[str, str], with_valid_base: bool
) -> None:
    case = flow.to("link_sent")
    sent = {**valid_fields(), **fields} if with_valid_base else fields
    before = container.store.get(case.id)
    events = len(container.store.events(case.id))
    try:
        updated = guestbook.submit(container, flow.token(case), Submission(sent, {}))
    except ValidationFailed as exc:
        assert exc.fields and all(isinstance(v, str) and v for v in exc.fields.values())
        after = container.store.get(case.id)
        # refused: only the draft (what was typed) is kept, nothing is submitted
        assert after.state == "link_sent" and after.form == before.form
        assert after.service == before.service and after.consent == before.consent
        assert len(container.store.events(case.id)) == events
        return
    assert updated.state == "form_submitted"  # only possible with the documents: never here
    pytest.fail("a submission without documents was accepted")


@FIXTURE_EXAMPLES
@given(forms)
def test_drafts_keep_only_known_fields_and_cut_long_values(
    flow: Flow, container: Container, fields: dict[str, str]
) -> None:
    case = flow.to("link_sent")
    updated = guestbook.save_draft(container, flow.token(case), fields)
    assert set(updated.draft_form) <= set(guestbook.FORM_FIELDS)
    assert all(len(v) <= 300 for v in updated.draft_form.values())
    assert updated.state == "link_sent"


@FIXTURE_EXAMPLES
@given(
    forms,
    st.dictionaries(
        st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).map(lambda k: "doc_" + k),
        st.binary(max_size=64) | st.just(tiny_png()),
        max_size=3,
    ),
)
def test_the_function_parses_any_multipart_form_into_200_or_422(
    flow: Flow,
    container: Container,
    client_for: Callable[[str], FlaskClient],
    fields: dict[str, str],
    files: dict[str, bytes],
) -> None:
    case = flow.to("link_sent")
    data: dict[str, Any] = dict(fields)
    for name, content in files.items():
        data[name] = (io.BytesIO(content), f"{name}.bin")
    resp = client_for("guestbook").post(
        f"/f/{flow.token(case)}",
        data=data,
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert resp.status_code in (200, 422), resp.get_data(as_text=True)[:300]
    if resp.status_code == 422:
        body = resp.get_json()
        assert body["error"] == "invalid" and body["message"] and body["fields"]
        assert container.store.get(case.id).state == "link_sent"


def test_a_valid_submission_still_goes_through(flow: Flow, container: Container) -> None:
    """The properties above refuse everything they make; this one must pass."""
    case = flow.to("link_sent")
    files = {"kk": Upload("kk.png", tiny_png()), "ktp_lama": Upload("k.png", tiny_png())}
    done = guestbook.submit(container, flow.token(case), Submission(valid_fields(), files))
    assert done.state == "form_submitted"
