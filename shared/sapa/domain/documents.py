"""What a file is, judged by its content (magic bytes), never by its name or declared type."""

from __future__ import annotations

ALLOWED = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "application/pdf": "pdf",
}


def sniff(data: bytes) -> str | None:
    """The content type of `data` if it is one SAPA accepts (JPEG, PNG, PDF), else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    # PDF readers accept a header within the first 1024 bytes.
    if b"%PDF-" in data[:1024]:
        return "application/pdf"
    return None


def extension(content_type: str) -> str:
    return ALLOWED.get(content_type, "bin")
