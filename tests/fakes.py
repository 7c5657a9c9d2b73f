"""Port fakes every test layer shares (beside tests/conftest.py's RecordingQueue)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sapa.domain.errors import TransientError
from sapa.ports import MediaContent


@dataclass
class Sent:
    """One message the fake WhatsApp API took."""

    kind: str  # text | document | template | buttons
    phone_number_id: str
    to: str
    body: str  # the text, the document's caption, or the template's name
    data: bytes = b""
    filename: str = ""
    language: str = ""  # templates only
    params: list[str] = field(default_factory=list)  # templates; buttons: their titles
    wamid: str = ""  # the id the API answered with
    reference: str | None = None  # what the sender asked statuses to echo


@dataclass
class FakeWhatsApp:
    """An in-memory WhatsApp port: records sends under ids `prefix`1, 2, …, serves media, and
    raises TransientError (like an outage) on every call while `down` is set, or on the next
    `fail_next` calls. Every send ends in `answer`, where a subclass may act before the
    sender has the API's answer."""

    sent: list[Sent] = field(default_factory=list)
    media: dict[str, MediaContent] = field(default_factory=dict)
    down: bool = False
    fail_next: int = 0
    prefix: str = "wamid.out."

    def _check(self) -> None:
        if self.down:
            raise TransientError("WhatsApp API unavailable (fake)")
        if self.fail_next:
            self.fail_next -= 1
            raise TransientError("WhatsApp API 503 (fake)")

    def _send(self, message: Sent) -> str:
        self._check()
        message.wamid = self.next_wamid()
        self.sent.append(message)
        return self.answer(message)

    def next_wamid(self) -> str:
        """The id the next message will get."""
        return f"{self.prefix}{len(self.sent) + 1}"

    def answer(self, message: Sent) -> str:
        """The API's answer for a message it took: its id."""
        return message.wamid

    def send_text(
        self, phone_number_id: str, to: str, body: str, *, reference: str | None = None
    ) -> str:
        return self._send(Sent("text", phone_number_id, to, body, reference=reference))

    def send_document(
        self,
        phone_number_id: str,
        to: str,
        data: bytes,
        filename: str,
        caption: str,
        *,
        reference: str | None = None,
    ) -> str:
        sent = Sent("document", phone_number_id, to, caption, data, filename, reference=reference)
        return self._send(sent)

    def send_template(
        self,
        phone_number_id: str,
        to: str,
        name: str,
        language: str,
        params: list[str],
        *,
        reference: str | None = None,
    ) -> str:
        return self._send(
            Sent(
                "template",
                phone_number_id,
                to,
                name,
                language=language,
                params=list(params),
                reference=reference,
            )
        )

    def send_buttons(
        self,
        phone_number_id: str,
        to: str,
        body: str,
        buttons: list[tuple[str, str]],
        *,
        reference: str | None = None,
    ) -> str:
        titles = [t for _, t in buttons]
        return self._send(
            Sent("buttons", phone_number_id, to, body, params=titles, reference=reference)
        )

    def fetch_media(self, media_id: str) -> MediaContent:
        self._check()
        return self.media[media_id]

    def add_media(
        self, media_id: str, data: bytes, mime_type: str = "application/octet-stream"
    ) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.media[media_id] = MediaContent(data, mime_type, sha)
        return sha
