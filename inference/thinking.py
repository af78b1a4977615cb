"""Separating hidden ``<think>...</think>`` text from what the student sees, in a stream.

Tags may be split across deltas ("<thi" + "nk>"), so the stripper holds back any tail that could
still become a tag until the next delta decides it.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


@dataclass
class Split:
    visible: str = ""
    hidden: str = ""


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for length in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-length:]):
            return length
    return 0


class ThinkStripper:
    """Feed stream deltas in; get visible and hidden text out.

    ``starts_inside=True`` is for chat templates that open the ``<think>`` block in the prompt,
    so the model's output begins with thinking and only writes ``</think>``.
    """

    def __init__(self, starts_inside: bool = False) -> None:
        self._inside = starts_inside
        self._pending = ""

    @property
    def inside_think(self) -> bool:
        return self._inside

    def feed(self, delta: str) -> Split:
        text = self._pending + delta
        self._pending = ""
        out = Split()
        while text:
            tag = CLOSE_TAG if self._inside else OPEN_TAG
            index = text.find(tag)
            if index >= 0:
                self._emit(out, text[:index])
                text = text[index + len(tag) :]
                self._inside = not self._inside
                continue
            keep = _partial_tag_suffix(text, tag)
            self._emit(out, text[: len(text) - keep])
            self._pending = text[len(text) - keep :]
            break
        return out

    def finish(self) -> Split:
        """Flush what was held back; an unterminated think block stays hidden."""
        out = Split()
        self._emit(out, self._pending)
        self._pending = ""
        return out

    def _emit(self, out: Split, text: str) -> None:
        if not text:
            return
        if self._inside:
            out.hidden += text
        else:
            out.visible += text


def split_thinking(text: str) -> Split:
    """Split a whole reply at once."""
    stripper = ThinkStripper()
    first = stripper.feed(text)
    last = stripper.finish()
    return Split(first.visible + last.visible, first.hidden + last.hidden)
