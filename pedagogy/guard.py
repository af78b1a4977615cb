"""The answer guard: what a tutor reply may show a student, decided as the reply streams.

The guard reads the visible text of a reply as it grows and releases it only up to where it is
settled (:func:`pedagogy.numbers.settled_until`): a trailing run that could still grow into a
number ("7", "seventy", "\\frac{3") is held back until the next piece decides it. Before text is
released it must pass two checks:

- **the final answer**: no number the text states equals the problem's answer, in any form a
  student would read as the answer (digits, words, fractions, percentages, money, durations,
  digits spelled one by one or reversed: :mod:`pedagogy.numbers`). As in the post-turn judge,
  values already in the problem text do not count, and once the student has stated the answer
  the tutor may confirm it;
- **arithmetic**: every computation the text states ("7 * 14 = 98") is true
  (:mod:`pedagogy.arithmetic`).

A failed check is a :class:`Violation`; the reply pipeline (``inference.reply_stream``) ends
that attempt and asks the model again. All work here is in-process, bounded by the text's
length (linear scans, numbers of bounded size): it runs on every streamed piece.

An answer that is not a single number (an expression, a set) cannot be recognised piece by
piece; then the whole reply is held and judged once at its end by the bounded math-verify
judge (:func:`pedagogy.judges.areveals_answer`), an uncheckable reply counting as a leak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from . import arithmetic, numbers
from .judges import Uncheckable, areveals_answer

__all__ = ["AnswerGuard", "GuardedText", "Violation"]

# Longest visible reply the guard reads; the pipeline ends a reply that reaches it.
MAX_GUARDED_CHARS = numbers.MAX_TEXT_CHARS
# Text before the last release that is read again for arithmetic claims: enough for the left
# side of one.
CLAIM_CONTEXT_CHARS = 400


@dataclass(frozen=True)
class Violation:
    """Why the guard stopped an attempt: ``reason`` is ``answer_leak``, ``false_arithmetic``
    or ``uncheckable``; ``detail`` is what was found, as written; ``correction`` is what the
    model is told when asked again."""

    reason: str
    detail: str
    correction: str


@dataclass(frozen=True)
class Release:
    """What one step of the guard lets through, and the violation that stopped it, if any."""

    text: str = ""
    violation: Violation | None = None


def _digits_of(value: Fraction) -> str:
    """The digits of a value written as a decimal numeral ("37.4" -> "374"), or "" when it has
    no finite decimal form (1/3)."""
    if value.denominator == 1:
        return str(abs(value.numerator))
    denominator = value.denominator
    places = 0
    while denominator % 10 and places < 12:
        value *= 10
        denominator = value.denominator
        places += 1
        if value.denominator == 1:
            break
    if value.denominator != 1:
        return ""
    return str(abs(value.numerator)).lstrip("0") or "0"


@dataclass
class AnswerGuard:
    """The guard for one problem and one point in a dialogue.

    ``student_texts`` are the student's messages so far: once one states the answer, the guard
    lets the tutor say it too. ``check_arithmetic`` turns the arithmetic check on.
    """

    final_answer: str
    problem_text: str = ""
    student_texts: Sequence[str] = ()
    check_arithmetic: bool = True
    answer: Fraction | None = field(init=False, default=None)
    answer_digits: str = field(init=False, default="")
    problem_values: frozenset[Fraction] = field(init=False, default=frozenset())
    problem_digits: frozenset[str] = field(init=False, default=frozenset())
    # How the problem itself writes the answer's value, when it does ("Ben has two brothers"
    # for an answer of 2): restating the problem in its own words is not a leak, the same
    # value in another form ("The answer is 2") is.
    answer_forms_in_problem: frozenset[str] = field(init=False, default=frozenset())
    answer_stated: bool = field(init=False, default=False)
    # The student's own false computations (actual value, stated value): a tutor quoting them
    # back ("you wrote 7 x 14 = 84; check it") is not stating false arithmetic.
    student_errors: frozenset[tuple[Fraction, Fraction]] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        self.answer = numbers.answer_value(self.final_answer[: numbers.MAX_TEXT_CHARS])
        problem = _mentions(self.problem_text)
        self.problem_values = frozenset(m.values[0] for m in problem if m.values)
        self.problem_digits = frozenset(m.digits for m in problem if m.digits)
        if self.answer is not None:
            self.answer_forms_in_problem = frozenset(
                _form(self.problem_text[m.start : m.end])
                for m in problem
                if m.values and m.values[0] == self.answer
            )
            self.answer_digits = _digits_of(self.answer)
            self.answer_stated = any(
                self.answer in m.values for text in self.student_texts for m in _mentions(text)
            )
        else:
            self.answer_stated = False
        if self.check_arithmetic:
            self.student_errors = frozenset(
                (claim.actual, claim.stated)
                for text in self.student_texts
                for claim in arithmetic.claims(text[: arithmetic.MAX_TEXT_CHARS], final=True)
                if not claim.true
            )

    @property
    def whole_reply(self) -> bool:
        """True when the answer is not one number: replies are judged whole, at their end."""
        return self.answer is None and bool(self.final_answer.strip())

    def start(self, released: str = "") -> GuardedText:
        """A check of one attempt whose visible text begins with ``released`` (text that an
        earlier attempt already showed the student and that passed)."""
        return GuardedText(self, released)

    # ---- the checks ---------------------------------------------------------------------------

    def leak(self, mention: numbers.Mention, written: str) -> str:
        """How a student would read ``mention`` (``written`` in the text) as the answer:
        "value", "reversed", or "" when they would not."""
        if self.answer is None or self.answer_stated or not mention.values:
            return ""
        literal = mention.values[0]
        if literal == self.answer:
            # The answer's own value: allowed only as the problem itself writes it.
            return "" if _form(written) in self.answer_forms_in_problem else "value"
        if literal in self.problem_values:
            return ""  # restating the problem's data ("75 students", not "75%")
        if self.answer in mention.values:
            return "value"
        reversed_digits = self.answer_digits[::-1]
        if (
            len(self.answer_digits) >= 2
            and reversed_digits != self.answer_digits
            and mention.digits == reversed_digits
            and mention.digits not in self.problem_digits
        ):
            return "reversed"
        return ""


def _form(written: str) -> str:
    """A written number, compared without case and spacing ("Two" and "two", "1,250")."""
    return "".join(written.lower().split())


def _mentions(text: str) -> list[numbers.Mention]:
    return numbers.mentions(text[: numbers.MAX_TEXT_CHARS]) if text else []


class GuardedText:
    """One attempt's visible text, checked as it grows (see :class:`AnswerGuard`)."""

    def __init__(self, guard: AnswerGuard, released: str = "") -> None:
        self.guard = guard
        self.text = released
        self.released = len(released)
        self._checked: set[tuple[int, int]] = set()
        self._claims_checked: set[tuple[int, int]] = set()
        self.most_held = 0  # the most text held back at once, in characters

    @property
    def held(self) -> str:
        return self.text[self.released :]

    def feed(self, delta: str) -> Release:
        """Add visible text; return what may be shown now (or the violation)."""
        self.text += delta
        if len(self.text) > MAX_GUARDED_CHARS:
            self.text = self.text[:MAX_GUARDED_CHARS]
        if self.guard.whole_reply:
            self.most_held = max(self.most_held, len(self.held))
            return Release()
        settled = max(self.released, numbers.settled_until(self.text))
        release = self._check(settled)
        self.most_held = max(self.most_held, len(self.text) - self.released)
        return release

    def finish(self, tail: str = "") -> Release:
        """The attempt ended: check and release the rest."""
        self.text = (self.text + tail)[:MAX_GUARDED_CHARS]
        if self.guard.whole_reply:
            return Release()  # judged by :meth:`afinish`
        return self._check(len(self.text))

    async def afinish(
        self,
        tail: str = "",
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (also the check worker's kill deadline)
    ) -> Release:
        """:meth:`finish`, with the bounded whole-reply judge for answers that are not one
        number (it runs in the check pool: the event loop keeps serving others)."""
        if not self.guard.whole_reply:
            return self.finish(tail)
        self.text = (self.text + tail)[:MAX_GUARDED_CHARS]
        new = self.text[self.released :]
        try:
            leaked = await areveals_answer(
                self.text,
                self.guard.final_answer,
                self.guard.problem_text,
                self.guard.student_texts,
                timeout=timeout,
            )
        except Uncheckable as exc:
            return Release(violation=_uncheckable(exc.reason))
        if leaked:
            return Release(violation=_leak(self.guard.final_answer, "the final answer"))
        self.released = len(self.text)
        return Release(new)

    def _check(self, settled: int) -> Release:
        """Check what became settled since the last release; release it if it passes.

        Only the tail of the text is scanned each time (what was released before it was
        checked when it settled), so a reply costs time about linear in its length."""
        if settled <= self.released:
            return Release()
        guard = self.guard
        for mention in numbers.mentions(self.text, self.released):
            if mention.start >= settled:
                break
            span = (mention.start, mention.end)
            if span in self._checked:
                continue
            self._checked.add(span)
            how = guard.leak(mention, self.text[mention.start : mention.end])
            if how:
                return Release(violation=_leak(self.text[mention.start : mention.end], how))
        if guard.check_arithmetic:
            offset = _sentence_start(
                self.text, max(0, self.released - CLAIM_CONTEXT_CHARS), self.released
            )
            # Settled text is final for claims: pedagogy.numbers holds back an arithmetic chain
            # while an operator or "=" may still follow, so nothing after ``settled`` can
            # extend a claim read here.
            for claim in arithmetic.claims(self.text[offset:settled], final=True):
                start, end = offset + claim.start, offset + claim.end
                if end <= self.released or (start, end) in self._claims_checked:
                    continue
                self._claims_checked.add((start, end))
                if not claim.true and (claim.actual, claim.stated) not in guard.student_errors:
                    return Release(
                        violation=Violation(
                            "false_arithmetic",
                            self.text[start:end][:300],
                            f"Careful: {claim.describe()} Continue from where you stopped, "
                            "with correct arithmetic.",
                        )
                    )
        new = self.text[self.released : settled]
        self.released = settled
        return Release(new)


def _sentence_start(text: str, at: int, before: int) -> int:
    """Where to start reading claims so that no expression is cut in two: just after the first
    sentence end or line break in ``text[at:before]``, else the start of the text."""
    if at == 0:
        return 0
    ends = [text.find(end, at, before) for end in (". ", "? ", "! ", "\n")]
    found = [index for index in ends if index >= 0]
    return min(found) + 1 if found else 0


def _leak(written: str, how: str) -> Violation:
    form = "written backwards" if how == "reversed" else "in any form"
    return Violation(
        "answer_leak",
        written[:300],
        "Your reply was about to give the student the final answer "
        f"({written[:80]!r}, {form}). Continue from where you stopped without stating the "
        "final answer in any form (digits, words, fractions, percentages, reversed or spelled "
        "out): ask a guiding question so that the student works it out.",
    )


def _uncheckable(reason: str) -> Violation:
    return Violation(
        "uncheckable",
        reason[:300],
        "Keep your reply short and simple, and do not state the final answer in any form.",
    )
