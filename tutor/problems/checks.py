"""What the editor asks of the grader: is a final answer one that students' answers can be
checked against, and how would a given student answer be graded ("try an answer").

Both go through :func:`pedagogy.grading.check_answer`, the check the chat uses, so what the
editor shows is what a student gets. That check is bounded (a size and cost refusal before any
parsing, then a worker process with a hard time limit); it raises
:class:`~pedagogy.grading.Uncheckable` or :class:`~pedagogy.grading.AmbiguousAnswer` with a
reason for a person, which is shown as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pedagogy.grading import (
    AmbiguousAnswer,
    Uncheckable,
    check_answer,
    reading,
    require_checkable,
    require_one_answer,
)

CHECK_HINT = "Write it as a number, a fraction or a short expression."
# Only letters and spaces, with a word of three letters or more: math-verify reads "hello" as
# the product h*e*l*l*o, which equals itself, so the self-check alone would let a word through.
_WORDS_ONLY = re.compile(r"[A-Za-z ]{0,200}[A-Za-z]{3}[A-Za-z ]{0,200}")
_NAMED_VALUES = {"pi", "infinity", "inf"}


class TryStatus(StrEnum):
    CORRECT = "correct"
    INCORRECT = "incorrect"
    AMBIGUOUS = "ambiguous"
    UNCHECKABLE = "uncheckable"
    # The final answer itself cannot be checked: fix it first.
    BAD_FINAL_ANSWER = "bad_final_answer"


@dataclass(frozen=True)
class TryResult:
    status: TryStatus
    message: str
    # True when the check ran a worker to its time or memory limit (see pedagogy.bounded).
    costly: bool = False


def final_answer_error(final_answer: str, problem_text: str = "", simplest: bool = False) -> str:
    """Why ``final_answer`` cannot serve as a problem's answer ("" when it can): it must pass
    the grader's size and cost limits, state one value, and be graded right against itself
    (which also means math-verify can read it), in simplest form when the problem asks for it."""
    try:
        require_checkable(final_answer)
        check = check_answer(
            final_answer, final_answer, problem_text=problem_text, simplest=simplest
        )
    except AmbiguousAnswer as exc:
        return f"The final answer must be one value: {exc.reason}."
    except Uncheckable as exc:
        return f"The final answer cannot be checked: {exc.reason}. {CHECK_HINT}"
    if _is_words(final_answer, problem_text):
        return (
            "The final answer is words that the grader cannot read as a value (a number in "
            f"words alone, such as “seventy-five”, is fine). {CHECK_HINT}"
        )
    if not check.correct and check.feedback:
        return (
            "The final answer is not in simplest form, but the problem requires simplest "
            "form: write it in lowest terms or turn the option off."
        )
    if not check.correct:
        return (
            "The final answer could not be read as a mathematical value, so no student "
            f"answer could be checked against it. {CHECK_HINT}"
        )
    return ""


def _is_words(text: str, problem_text: str) -> bool:
    """Letters only, and not a number in words ("seventy-five" is a value, "hello" is not;
    "five apples" is one where the problem is about apples)."""
    stripped = text.strip()
    if stripped.lower() in _NAMED_VALUES or not _WORDS_ONLY.fullmatch(stripped):
        return False
    return reading(stripped, problem_text) is None


def try_answer(
    answer: str, final_answer: str, problem_text: str = "", simplest: bool = False
) -> TryResult:
    """How a student who writes ``answer`` would be graded on a problem with this final answer,
    in words for the teacher."""
    try:
        require_checkable(final_answer)
        require_one_answer(final_answer)
    except AmbiguousAnswer as exc:
        return TryResult(
            TryStatus.BAD_FINAL_ANSWER, f"The final answer must be one value: {exc.reason}."
        )
    except Uncheckable as exc:
        return TryResult(
            TryStatus.BAD_FINAL_ANSWER, f"The final answer cannot be checked: {exc.reason}."
        )
    try:
        check = check_answer(answer, final_answer, problem_text=problem_text, simplest=simplest)
    except AmbiguousAnswer as exc:
        return TryResult(
            TryStatus.AMBIGUOUS,
            f"A student who writes this is asked to give one answer: {exc.reason}.",
        )
    except Uncheckable as exc:
        return TryResult(
            TryStatus.UNCHECKABLE,
            f"This answer cannot be checked: {exc.reason}. A student who writes it is asked "
            "to write a number, a fraction or a short expression.",
            costly=exc.costly,
        )
    if check.correct:
        return TryResult(TryStatus.CORRECT, "Correct: a student who writes this is marked right.")
    if check.feedback:
        return TryResult(TryStatus.INCORRECT, f"Not accepted: {check.feedback}")
    return TryResult(TryStatus.INCORRECT, "Not correct: a student who writes this is marked wrong.")
