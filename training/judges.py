"""Cheap, model-free judges of tutor turns.

The answer-leak check compares the mathematical values a tutor turn states with the problem's
final answer (math-verify), rather than looking for keywords: "so the answer is $\\frac{187}{5}$"
leaks 37.4 even though "37.4" never appears.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .grading import check_answer

# Numbers (with thousands separators and decimals), simple fractions and LaTeX fractions.
_CANDIDATE = re.compile(
    r"\\[dt]?frac\{[^{}]+\}\{[^{}]+\}"
    r"|-?\d{1,3}(?:,\d{3})+(?:\.\d+)?"
    r"|-?\d+(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?"
)


def stated_values(text: str) -> list[str]:
    """The mathematical values a text states, as written."""
    return [match.group(0).replace(" ", "") for match in _CANDIDATE.finditer(text)]


def _states(text: str, final_answer: str, ignore: set[str]) -> bool:
    return any(
        value not in ignore and check_answer(value, final_answer).correct
        for value in stated_values(text)
    )


def reveals_answer(
    tutor_text: str,
    final_answer: str,
    problem_text: str = "",
    student_texts: Iterable[str] = (),
) -> bool:
    """Whether a tutor turn states the final answer before the student has.

    Values already given in the problem statement are not counted (restating the data is not a
    leak), and once a student has stated the answer the tutor may confirm it.
    """
    if any(_states(text, final_answer, set()) for text in student_texts):
        return False
    return _states(tutor_text, final_answer, set(stated_values(problem_text)))
