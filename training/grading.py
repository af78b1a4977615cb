"""Checking a student's final answer against a reference answer with math-verify.

Equivalent forms count as equal (37.4, 37.40, 187/5, $\\frac{187}{5}$). math-verify's own
timeouts use SIGALRM, which only works on the main thread; the web process calls this from
worker threads, so those timeouts are switched off (inputs are short and length-limited).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

# It warns on every call that its timeouts are off; that is deliberate here (see above).
logging.getLogger("math_verify").setLevel(logging.ERROR)

_EXTRACTION = [ExprExtractionConfig(), LatexExtractionConfig()]
_UNITS_AND_NOISE = re.compile(r"[$€£¥%]|\\%|\\\$|,(?=\d{3}\b)")


@dataclass(frozen=True)
class AnswerCheck:
    correct: bool
    parsed: str
    reference: str


def _prepare(text: str) -> str:
    """Normalise what students type: thousands separators, currency and percent signs."""
    text = text.strip()
    if text.startswith("$") and text.endswith("$") and len(text) > 2 and "\\" in text:
        return text  # LaTeX math, keep as is
    text = _UNITS_AND_NOISE.sub("", text).strip()
    return text


def _parse(text: str) -> list:
    prepared = _prepare(text)
    parsed = parse(prepared, extraction_config=_EXTRACTION, parsing_timeout=None)
    if not parsed and prepared:
        parsed = parse(f"${prepared}$", extraction_config=_EXTRACTION, parsing_timeout=None)
    return parsed


def check_answer(submitted: str, reference: str) -> AnswerCheck:
    """Whether ``submitted`` is mathematically equivalent to ``reference``."""
    gold = _parse(reference)
    answer = _parse(submitted)
    correct = bool(gold and answer) and verify(gold, answer, timeout_seconds=None)
    return AnswerCheck(
        correct=bool(correct),
        parsed=str(answer[-1]) if answer else "",
        reference=str(gold[-1]) if gold else "",
    )
