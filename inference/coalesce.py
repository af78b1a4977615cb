"""Gathering small stream deltas into fewer, larger WebSocket frames.

The first piece of text goes out at once (time to first token matters most); after that text
is sent at most every ``interval`` seconds. The caller passes the clock so tests control time.
"""

from __future__ import annotations


class DeltaCoalescer:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._buffer: list[str] = []
        self._last_sent: float | None = None

    def push(self, text: str, now: float) -> str | None:
        """Add ``text``; return what should be sent now, or None to keep gathering."""
        if text:
            self._buffer.append(text)
        if not self._buffer:
            return None
        if self._last_sent is None or now - self._last_sent >= self.interval:
            self._last_sent = now
            return self.flush()
        return None

    def flush(self) -> str:
        """Everything gathered and not yet sent."""
        text = "".join(self._buffer)
        self._buffer.clear()
        return text
