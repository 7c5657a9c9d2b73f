"""The satisfaction survey (SKM, PermenPANRB 14/2017) on the resident's side: the invitation once
the signed document reached their phone, the page behind it, the answer kept once and
anonymously, and the resident's wish not to be asked again (TANPA SURVEI).

The answer is kept on the case (so it is counted once, with the case, by the rollups; see
sapa.domain.rollup) but no officer page shows it: staff read only the counts, and the free
text without the case it came from."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from sapa.bootstrap import Container
from sapa.domain.case import Case, SurveyAnswer
from sapa.domain.errors import Conflict, PermanentError, ValidationFailed
from sapa.domain.ikm import CODES, SCALE, load_survey
from sapa.domain.texts import text
from sapa.log import mask
from sapa.ports import Task
from sapa.services.names import task_name
from sapa.services.unit import mutate, outbox_task

log = logging.getLogger(__name__)

INVITE = "survey_invite"  # the notify kind of the invitation
DECLINED = "survey_declined"  # the notify kind of the answer to TANPA SURVEI
OPT_OUT_WORDS = frozenset({"TANPA SURVEI", "STOP SURVEI", "TIDAK SURVEI"})
TEXT_LIMIT = 500  # characters of free text
_SALT = "sapa.survey"
# Any run of 8 or more digits, however written (0812-3456-7890, 7306 0812 3456 0001): a phone,
# a NIK or a KK number the resident typed into their suggestion.
_LONG_NUMBER = re.compile(r"\+?\d(?:[\s.\-]?\d){7,}")


class SurveyLinkInvalid(PermanentError):
    code = "link_invalid"


def serializer(c: Container) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(c.settings.secret("link_secret"), salt=_SALT)


def link(c: Container, case: Case) -> str:
    """A signed, expiring link to the case's survey: no guessable id, no personal data."""
    return f"{c.settings.guestbook_base}/s/{serializer(c).dumps(case.id)}"


def invite_task(case: Case) -> None:
    """Decide the invitation as part of the change that delivered the case: one per case (the
    name is the case's), whatever delivery statuses come again."""
    outbox_task(
        case,
        "notify",
        {"case_id": case.id, "kind": INVITE},
        name=task_name("notify", case.id, INVITE),
    )


def not_invited(c: Container, case: Case) -> str | None:
    """Why the case's resident gets no invitation now (None: they may): surveys switched off,
    the case not delivered (cancelled, rejected, expired), its personal data erased, the survey
    already answered, or the resident asked not to be surveyed."""
    if not c.settings.survey_invite:
        return "survey_off"
    if case.state != "delivered":
        return "not_delivered"
    if "personal_data" in case.retention:
        return "erased"
    if case.survey is not None:
        return "answered"
    if opted_out(c, case.wa_id):
        return "opted_out"
    return None


def _opt_out_key(c: Container, wa_id: str) -> str:
    """The key of a resident's "no surveys" wish: an HMAC of their number, not the number."""
    secret = c.settings.secret("link_secret").encode()
    digest = hmac.new(secret, f"survey-opt-out|{wa_id}".encode(), hashlib.sha256).hexdigest()
    return f"survey-opt-out-{digest[:40]}"


def opted_out(c: Container, wa_id: str) -> bool:
    return c.store.get_key(_opt_out_key(c, wa_id)) is not None


def opt_out(c: Container, wa_id: str, wamid: str, case: Case) -> Task:
    """The resident wrote TANPA SURVEI: no invitation to this number again (any kecamatan).
    Returns the task of the one reply saying so, on `case` (open or closed)."""
    c.store.claim_key(_opt_out_key(c, wa_id), value={"at": c.clock.now().isoformat()})
    return Task("notify", {"case_id": case.id, "kind": DECLINED}, name=task_name("notify", wamid))


def resolve(c: Container, token: str) -> Case:
    """The case a survey link belongs to: refused when expired, tampered, or no longer one the
    resident may answer for (not delivered, erased)."""
    try:
        case_id = serializer(c).loads(token, max_age=c.settings.survey_link_days * 86400)
    except (BadSignature, SignatureExpired):
        raise SurveyLinkInvalid(text("survey_link_invalid")) from None
    case = c.store.get(str(case_id))
    if case.state != "delivered" or "personal_data" in case.retention:
        raise SurveyLinkInvalid(text("survey_link_invalid"))
    return case


def mask_text(value: str) -> str:
    """The resident's free text as staff may read it: every long number (phone, NIK, KK),
    however spaced, and every WhatsApp user id masked."""
    value = _LONG_NUMBER.sub("[angka disamarkan]", value)
    return mask(value).strip()


def answer_from(c: Container, fields: Mapping[str, str]) -> SurveyAnswer:
    """The answer in a submitted survey form, checked: every element scored 1 to 4, a profile
    choice only from the questionnaire's, free text within the limit. Raises ValidationFailed
    with a message per field."""
    survey = load_survey()
    errors: dict[str, str] = {}
    scores: dict[str, int] = {}
    for code in CODES:
        raw = str(fields.get(code, "")).strip()
        if raw not in {str(s) for s in SCALE}:
            errors[code] = text("survey_answer_required")
        else:
            scores[code] = int(raw)
    profile: dict[str, str] = {}
    for question in survey.profile:
        raw = str(fields.get(question.key, "")).strip()
        if not raw:
            continue
        if not raw.isdigit() or not 1 <= int(raw) <= len(question.choices):
            errors[question.key] = text("survey_choice_unknown")
        else:
            profile[question.key] = question.choices[int(raw) - 1]
    free = str(fields.get("text", "")).strip()
    if len(free) > TEXT_LIMIT:
        errors["text"] = text("survey_text_too_long", limit=TEXT_LIMIT)
    if errors:
        raise ValidationFailed(text("form_has_errors"), errors)
    return SurveyAnswer(at=c.clock.now(), scores=scores, profile=profile, text=mask_text(free))


def submit(c: Container, token: str, fields: Mapping[str, str]) -> Case:
    """Keep the resident's answer, once per case. Raises SurveyLinkInvalid, ValidationFailed,
    or Conflict when the survey was already answered (nothing changes)."""
    case = resolve(c, token)
    if case.survey is not None:
        raise Conflict(text("survey_already_answered"))
    answer = answer_from(c, fields)

    def keep(case: Case) -> None:
        case.answer_survey(answer)

    return mutate(c, case.id, keep)[0]
