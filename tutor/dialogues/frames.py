"""Validating frames from the browser. Every problem becomes a ``FrameError`` with a code and a
sentence a student can read; see docs/protocol.md."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

# C0/C1 control characters other than tab and newline (NUL would also break PostgreSQL text).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# json.loads joins escaped surrogate pairs into one character; what is left alone is invalid.
_SURROGATE = re.compile("[\ud800-\udfff]")


class FrameError(Exception):
    def __init__(self, code: str, detail: str, client_id: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.client_id = client_id

    def as_frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "error", "code": self.code, "detail": self.detail}
        if self.client_id:
            frame["client_id"] = self.client_id
        return frame


def parse_frame(text: str | None, binary: bytes | None, max_bytes: int) -> dict[str, Any]:
    if binary is not None or text is None:
        raise FrameError("bad_frame", "Frames must be JSON text, not binary data.")
    if len(text.encode("utf-8", errors="replace")) > max_bytes:
        raise FrameError("too_long", f"That frame is larger than {max_bytes} bytes.")
    try:
        frame = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise FrameError("bad_json", "That frame is not valid JSON.") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError("bad_frame", 'A frame must be a JSON object with a "type".')
    return frame


def repair_unicode(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (valid in a JSON string's escapes, but not text that
    UTF-8 or PostgreSQL can store) replaced by U+FFFD; well-formed text comes back unchanged."""
    if _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text)


def clean_text(value: Any, *, field: str, max_chars: int, client_id: str | None = None) -> str:
    """Text with invalid Unicode repaired, control characters removed and surrounding space
    trimmed, within limits."""
    if not isinstance(value, str):
        raise FrameError("bad_frame", f'"{field}" must be a string.', client_id)
    if len(value) > 4 * max_chars:  # not worth cleaning: it cannot fit
        raise FrameError(
            "too_long", f"That is too long; the limit is {max_chars} characters.", client_id
        )
    cleaned = _CONTROL.sub("", repair_unicode(value)).replace("\r\n", "\n").strip()
    if not cleaned:
        raise FrameError("empty", "There is nothing to send.", client_id)
    if len(cleaned) > max_chars:
        raise FrameError(
            "too_long",
            f"That is {len(cleaned)} characters; the limit is {max_chars}. "
            "Please shorten it and send again.",
            client_id,
        )
    return cleaned


def parse_client_id(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise FrameError("bad_frame", '"client_id" must be a UUID.') from None


@dataclass(frozen=True)
class StudentMessage:
    text: str
    client_id: uuid.UUID | None


def parse_student_message(frame: dict[str, Any], max_chars: int) -> StudentMessage:
    client_id = parse_client_id(frame.get("client_id"))
    raw_id = str(client_id) if client_id else None
    text = clean_text(frame.get("text"), field="text", max_chars=max_chars, client_id=raw_id)
    return StudentMessage(text=text, client_id=client_id)
