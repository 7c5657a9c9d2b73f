"""Property: whatever a correctly signed body holds, the webhook answers 200 or 400 (never 5xx,
which Meta would retry for days) and the stored state stays consistent; an unsigned or forged
body is 401 and stores nothing.

Driven in-process through functions-framework's test client over the `container` fixture
(tmp data dir, FixedClock, RecordingQueue). Hypothesis runs many examples inside one test
function, so the function-scoped fixture is shared by all examples of a test: the invariants
checked are cumulative (they must hold for the store after any sequence of deliveries), which is
why the function_scoped_fixture health check is suppressed deliberately.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from sapa.adapters.meta_webhook import sign_body
from sapa.bootstrap import Container
from tests.conftest import ROOT, RecordingQueue

PNIDS = ["demo-730608", "demo-730601", "unknown-pnid"]
WA_IDS = ["6281234567890", "6285298765432", "62811"]
USER_IDS = ["ID.73061111", "ID.73062222", "US.ENT.1"]
TYPES = [
    "text",
    "image",
    "document",
    "audio",
    "video",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "unsupported",
    "order",
    "system",
    "edit",
    "revoke",
    "unknown",
]
STATUSES = ["sent", "delivered", "read", "failed", "deleted", "warning"]

_APP: dict[str, Any] = {}


def _app() -> Any:
    if "app" not in _APP:
        _APP["app"] = create_app(target="wa_webhook", source=str(ROOT / "functions" / "main.py"))
    return _APP["app"]


@pytest.fixture
def client(container: Container) -> Iterator[FlaskClient]:
    yield _app().test_client()


# ---- strategies -------------------------------------------------------------------------------

# Text as Meta might send it, and as it should never arrive: unicode (no lone surrogates from
# st.text; they come as JSON escapes below), control characters, long strings.
texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["BATAL", "ya", "YA BATAL", "status", "Halo", "LINK", "", " ", "\x00"]),
    st.text(alphabet=string.printable, min_size=2000, max_size=5000),
    st.builds(lambda: "𝔖𝔄𝔓𝔄 " * 500),  # built: hypothesis would print a just() in full
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly (8 in 10) the right thing, else missing (a sentinel) or any JSON value: so that
    most payloads are near-valid and reach the intake, with one or two fields broken."""

    def pick(i: int) -> st.SearchStrategy[Any]:
        return value if i < 8 else st.just(_MISSING) if i == 8 else json_values

    return st.sampled_from(range(10)).flatmap(pick)


_MISSING = object()


def obj(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict from per-key strategies: _MISSING drops the key; extra keys may be added."""

    def build(values: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in values.items() if v is not _MISSING}
        out.update(extra)
        return out

    return st.builds(
        build,
        st.fixed_dictionaries({k: maybe(v) for k, v in fields.items()}),
        st.dictionaries(st.text(max_size=6), json_values, max_size=2),
    )


media = obj(
    id=st.one_of(st.text(max_size=20), st.integers()),
    mime_type=st.sampled_from(["image/jpeg", "application/pdf", "audio/ogg", ""]),
    sha256=st.text(max_size=64),
    caption=texts,
    filename=texts,
)
message = obj(
    **{
        "from": st.sampled_from(WA_IDS),
        "id": st.one_of(st.sampled_from([f"wamid.P{i}" for i in range(8)]), st.text(max_size=30)),
        "timestamp": st.one_of(
            st.integers(min_value=-(2**40), max_value=2**40).map(str), st.integers()
        ),
        "type": st.sampled_from(TYPES),
        "text": obj(body=texts),
        "image": media,
        "document": media,
        "audio": media,
        "video": media,
        "sticker": media,
        "location": obj(
            latitude=st.floats(allow_nan=False), longitude=st.floats(), name=texts, address=texts
        ),
        "contacts": st.lists(obj(name=obj(formatted_name=texts)), max_size=3),
        "interactive": obj(
            type=st.sampled_from(["button_reply", "list_reply"]),
            button_reply=obj(id=texts, title=texts),
            list_reply=obj(id=texts, title=texts, description=texts),
        ),
        "button": obj(text=texts, payload=texts),
        "reaction": obj(message_id=texts, emoji=texts),
        "edit": obj(
            original_message_id=st.sampled_from([f"wamid.P{i}" for i in range(8)]),
            message=obj(type=st.just("text"), text=obj(body=texts)),
        ),
        "revoke": obj(original_message_id=st.sampled_from([f"wamid.P{i}" for i in range(8)])),
        "system": obj(
            type=st.sampled_from(["user_changed_number", "customer_identity_changed"]),
            body=texts,
            wa_id=st.sampled_from(WA_IDS),
        ),
        "from_user_id": st.sampled_from(USER_IDS),
        "errors": st.lists(obj(code=st.integers(), title=texts), max_size=2),
    }
)
status = obj(
    id=st.one_of(st.sampled_from(["wamid.P1", "out:x", "wamid.SIM1"]), st.text(max_size=20)),
    status=st.sampled_from(STATUSES),
    timestamp=st.integers(min_value=0, max_value=2**33).map(str),
    recipient_id=st.sampled_from(WA_IDS),
    errors=st.one_of(
        st.lists(obj(code=st.integers(), title=texts), max_size=2), st.integers(), texts
    ),
)
value = obj(
    messaging_product=st.just("whatsapp"),
    metadata=obj(phone_number_id=st.sampled_from(PNIDS), display_phone_number=texts),
    contacts=st.lists(
        obj(
            wa_id=st.sampled_from(WA_IDS),
            user_id=st.text(max_size=10),
            profile=obj(name=texts),
        ),
        max_size=3,
    ),
    messages=st.lists(message, min_size=1, max_size=6),
    message_echoes=st.lists(message, max_size=2),
    statuses=st.lists(status, max_size=4),
    errors=st.lists(obj(code=st.integers(), title=texts), max_size=2),
    event=st.sampled_from(["APPROVED", "PAUSED", "FLAGGED"]),
    message_template_name=texts,
    user_id_update=st.lists(
        obj(user_id=obj(previous=st.sampled_from(USER_IDS), current=st.sampled_from(USER_IDS))),
        max_size=2,
    ),
)
# Mostly the fields SAPA reads (so that most changes reach the intake), sometimes any text.
fields = st.one_of(
    st.sampled_from(
        [
            "messages",
            "messages",
            "smb_message_echoes",
            "history",
            "message_template_status_update",
            "user_id_update",
        ]
    ),
    texts,
)
payloads = obj(
    object=st.just("whatsapp_business_account"),
    entry=st.lists(
        obj(
            id=st.text(max_size=10),
            changes=st.lists(obj(field=fields, value=value), min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=3,
    ),
)
many_messages = st.builds(
    lambda n, body, run: {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    {
                        "value": {
                            "metadata": {"phone_number_id": "demo-730608"},
                            "messages": [
                                {
                                    "from": WA_IDS[i % 3],
                                    "id": f"wamid.{run}.{i % 97}",
                                    "type": "text",
                                    "text": {"body": body},
                                }
                                for i in range(n)
                            ],
                        }
                    }
                ]
            }
        ],
    },
    st.integers(min_value=50, max_value=300),
    texts,
    st.uuids().map(str),
)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# Raw bodies: random bytes, any JSON value, near-valid payloads (also re-encoded with JSON
# \u escapes, lone surrogates included), many messages, very deep nesting.
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    payloads.map(lambda v: json.dumps(v).encode()),
    payloads.map(lambda v: json.dumps(v, ensure_ascii=True).replace("Halo", "\\ud800").encode()),
    many_messages.map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=1, max_value=200_000).map(nested),
)


# ---- invariants -------------------------------------------------------------------------------


def assert_consistent(c: Container) -> None:
    """The store's invariants, in SQL (cheap enough to check after every example)."""
    db = c.store.db.conn()  # type: ignore[attr-defined]

    def rows(sql: str) -> list[Any]:
        return list(db.execute(sql).fetchall())

    assert rows("SELECT id FROM messages WHERE case_id NOT IN (SELECT id FROM cases)") == [], (
        "a stored message belongs to no case"
    )
    assert (
        rows(
            "SELECT kecamatan, wa_id FROM cases WHERE is_open = 1"
            " GROUP BY kecamatan, wa_id HAVING COUNT(*) > 1"
        )
        == []
    ), "more than one open case for one resident and kecamatan"
    assert rows("SELECT id FROM messages GROUP BY id HAVING COUNT(*) > 1") == [], "stored twice"
    # audit events: numbered 1..n without gaps per case, n being the case's own counter
    assert (
        rows(
            "SELECT c.id FROM cases c LEFT JOIN (SELECT case_id, COUNT(*) n, MIN(seq) lo,"
            " MAX(seq) hi FROM events GROUP BY case_id) e ON e.case_id = c.id"
            " WHERE COALESCE(e.n, 0) != json_extract(c.doc, '$.event_seq')"
            " OR (e.n > 0 AND (e.lo != 1 OR e.hi != e.n))"
        )
        == []
    ), "audit events out of sequence"
    assert rows("SELECT case_id FROM events WHERE case_id NOT IN (SELECT id FROM cases)") == []
    queue = c.queue
    assert isinstance(queue, RecordingQueue)
    assert all(task.payload.get("case_id") for task in queue.tasks)


def post(client: FlaskClient, raw: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post("/", data=raw, headers=headers)


# ---- properties -------------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(raw=bodies)
@example(raw=b"")
@example(raw=b"null")
@example(raw=nested(100_000))
@example(raw=b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": 1}]}]}')
@example(
    raw=json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "changes": [
                        {
                            "value": {
                                "metadata": {"phone_number_id": "demo-730608"},
                                "messages": [
                                    {"from": "62811", "id": "w1", "type": "text", "text": "x"},
                                    {"from": "62811", "id": "w2", "type": "image", "image": []},
                                    {
                                        "from": "62811",
                                        "id": "w3",
                                        "type": "location",
                                        "location": 5,
                                    },
                                    {
                                        "from": "62811",
                                        "id": "w4",
                                        "type": "reaction",
                                        "reaction": "x",
                                    },
                                    {
                                        "from": "62811",
                                        "id": "w5",
                                        "type": "contacts",
                                        "contacts": [{"name": "x"}],
                                    },
                                    {
                                        "from": "62811",
                                        "id": "w6",
                                        "type": "interactive",
                                        "interactive": [1],
                                    },
                                    {"from": "62811", "id": "w7", "type": "button", "button": "x"},
                                ],
                                "statuses": [{"id": "w1", "status": "failed", "errors": 5}],
                            }
                        }
                    ]
                }
            ],
        }
    ).encode()
)
@example(
    raw=b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"metadata":'
    b' {"phone_number_id": "demo-730608"}, "contacts": [{"wa_id": "62811", "profile": {"name":'
    b' "\\udc00"}}], "messages": [{"from": "62811", "id": "\\ud800", "type": "text", "text":'
    b' {"body": "\\ud83d"}}]}}]}]}'
)
def test_a_signed_body_is_answered_200_or_400_and_the_store_stays_consistent(
    container: Container, client: FlaskClient, raw: bytes
) -> None:
    secret = container.settings.secret("wa_app_secret")
    resp = post(client, raw, sign_body(secret, raw))
    assert resp.status_code in (200, 400), (resp.status_code, resp.get_data()[:300])
    assert resp.is_json
    event(f"HTTP {resp.status_code}")
    if resp.status_code == 200:
        answer = resp.get_json()
        event("routed" if answer.get("routed") else "nothing routed")
        assert answer["ok"] is True
        assert all(isinstance(answer[k], int) for k in ("routed", "duplicates", "unrouted"))
    assert_consistent(container)


@settings(SETTINGS, max_examples=150)
@given(raw=st.one_of(bodies, payloads.map(lambda v: json.dumps(v).encode())), forge=st.data())
def test_an_unsigned_or_forged_body_is_401_and_nothing_is_stored(
    container: Container, client: FlaskClient, raw: bytes, forge: st.DataObject
) -> None:
    secret = container.settings.secret("wa_app_secret")
    right = sign_body(secret, raw)
    signature = forge.draw(
        st.one_of(
            st.none(),
            st.just(""),
            st.just(sign_body("another-secret", raw)),
            st.just(sign_body(secret, raw + b" ")),
            st.just(right.replace("sha256=", "sha1=")),
            st.just(right[:-1] + ("0" if right[-1] != "0" else "1")),
            st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80).filter(
                lambda s: s.strip().lower() != right.lower()
            ),
        ),
        label="signature",
    )
    resp = post(client, raw, signature)
    assert resp.status_code == 401, (resp.status_code, resp.get_data()[:300])
    assert container.store.list_cases() == []
    assert container.store.db.conn().execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0  # type: ignore[attr-defined]
    queue = container.queue
    assert isinstance(queue, RecordingQueue)
    assert queue.tasks == []
