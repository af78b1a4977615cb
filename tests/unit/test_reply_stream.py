"""The reply pipeline and the answer guard: what a student may see of a reply as it streams.

The model is a script of attempts (a fake of the model server is fine here: this is a unit test
of the logic around it; the consumer's integration tests and the e2e tests use real servers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.client import StreamEvent
from inference.reply_stream import Blocked, Delta, ReplyStream
from pedagogy.guard import AnswerGuard

pytestmark = pytest.mark.unit

PROBLEM = "A baker makes 5 trays of 15 cookies each. How many cookies does the baker make?"
ANSWER = "75"

# Every form a student would read as the answer (75), with the text around it.
LEAKS = [
    "So the baker makes 75 cookies.",
    "That gives seventy-five cookies in all.",
    "That gives seventy five cookies.",
    "You get $\\frac{150}{2}$ cookies.",
    "The answer, backwards, is 57.",
    "Spell it: seven five.",
    "It is 7, 5 when you read the digits.",
    "The total is 75.0 cookies.",
    "In all: 7,5 hmm no, 75!",
]


def attempts_of(*scripts: list[str]):
    """``open_attempt`` that plays one script of chunks per attempt and records its calls."""
    calls: list[tuple[list[dict[str, str]], dict | None]] = []

    async def open_attempt(messages, extra) -> AsyncIterator[StreamEvent]:
        calls.append((messages, extra))
        script = scripts[min(len(calls), len(scripts)) - 1]
        for chunk in script:
            await asyncio.sleep(0)
            yield StreamEvent(text=chunk)
        yield StreamEvent(finish_reason="stop")
        yield StreamEvent(prompt_tokens=10, completion_tokens=len(script))

    return open_attempt, calls


def run(stream: ReplyStream) -> tuple[list[str], list[Blocked]]:
    async def collect():
        shown, blocked = [], []
        async for event in stream:
            if isinstance(event, Delta):
                shown.append(event.text)
            else:
                blocked.append(event)
        return shown, blocked

    return asyncio.run(collect())


def guard(students: tuple[str, ...] = ()) -> AnswerGuard:
    return AnswerGuard(ANSWER, PROBLEM, students)


PROMPT = [{"role": "system", "content": "You are a tutor."}, {"role": "user", "content": "hi"}]
RECOVERY = [" how many cookies are on one tray, and how many trays are there?"]


@pytest.mark.parametrize("text", LEAKS)
def test_a_leak_in_any_form_never_reaches_the_student_at_any_split(text: str) -> None:
    for cut in range(1, len(text)):
        open_attempt, calls = attempts_of([text[:cut], text[cut:]], RECOVERY)
        stream = ReplyStream(open_attempt, PROMPT, guard=guard())
        shown, blocked = run(stream)
        visible = "".join(shown)
        assert len(blocked) == 1, (text, cut, visible)
        leaked_part = text[len(visible.split(RECOVERY[0])[0]) :]
        assert visible == stream.result.text or visible.strip() == stream.result.text
        assert stream.result.guard == "retried"
        # What the student saw of the first attempt stops before the leaking number.
        first = visible[: len(visible) - len(RECOVERY[0])]
        assert text.startswith(first)
        assert leaked_part
        # The retry continues the text the student already has.
        messages, extra = calls[1]
        assert "Correction" in messages[0]["content"]
        if first:
            assert extra == {"continue_final_message": True, "add_generation_prompt": False}
            assert messages[-1] == {"role": "assistant", "content": first}
        else:  # nothing was shown yet: the retry starts the reply afresh
            assert extra is None and messages[-1]["role"] == "user"


def test_the_reply_is_shown_as_written_when_it_passes() -> None:
    text = "Good start! How many cookies are on each tray? Then multiply 5 by that."
    chunks = [text[i : i + 3] for i in range(0, len(text), 3)]
    open_attempt, calls = attempts_of(chunks)
    stream = ReplyStream(open_attempt, PROMPT, guard=guard())
    shown, blocked = run(stream)
    assert "".join(shown) == text
    assert blocked == [] and len(calls) == 1
    assert stream.result.guard == "passed" and stream.result.attempts == 1


def test_values_from_the_problem_and_after_the_student_said_it_pass() -> None:
    text = "There are 5 trays of 15. Yes, 75 is right!"
    open_attempt, _ = attempts_of([text])
    shown, blocked = run(ReplyStream(open_attempt, PROMPT, guard=guard(("is it 75?",))))
    assert "".join(shown) == text and blocked == []


def test_a_model_that_never_recovers_gets_the_fallback() -> None:
    open_attempt, calls = attempts_of(["The answer is 75."], ["75!"], ["seventy-", "five."])
    stream = ReplyStream(open_attempt, PROMPT, guard=guard(), max_retries=2, fallback="Try it!")
    shown, blocked = run(stream)
    visible = "".join(shown)
    assert "75" not in visible
    assert visible == "The answer is … Try it!"
    assert len(calls) == 3 and len(blocked) == 3
    assert stream.result.guard == "fallback"
    assert [b.attempt.reason for b in blocked] == ["answer_leak"] * 3
    assert stream.result.model_leaked


def test_false_arithmetic_is_stopped_and_true_arithmetic_passes() -> None:
    open_attempt, _ = attempts_of(["Check: 7 × 14 = 84. Next?"], [" 98. Next?"])
    stream = ReplyStream(open_attempt, PROMPT, guard=guard())
    shown, blocked = run(stream)
    assert "84" not in "".join(shown)
    assert blocked[0].attempt.reason == "false_arithmetic"
    open_attempt, _ = attempts_of(["Check: 7 × 14 = 98. Next?"])
    shown, blocked = run(ReplyStream(open_attempt, PROMPT, guard=guard()))
    assert "".join(shown) == "Check: 7 × 14 = 98. Next?" and not blocked


def test_hidden_thinking_may_hold_the_answer() -> None:
    open_attempt, _ = attempts_of(["<think>it is 75</th", "ink>What is 5 × 15?"])
    stream = ReplyStream(open_attempt, PROMPT, guard=guard())
    shown, blocked = run(stream)
    assert "".join(shown) == "What is 5 × 15?" and not blocked
    assert stream.result.thinking == "it is 75"


def test_without_a_guard_the_text_streams_as_is() -> None:
    open_attempt, _ = attempts_of(["The answer is 7", "5."])
    stream = ReplyStream(open_attempt, PROMPT, guard=None)
    shown, _ = run(stream)
    assert "".join(shown) == "The answer is 75." and stream.result.guard == ""


def test_an_interrupted_reply_releases_only_checked_text() -> None:
    async def scenario(tail: str) -> tuple[str, ReplyStream]:
        gate = asyncio.Event()

        async def open_attempt(messages, extra):
            yield StreamEvent(text="We have 5 trays. So it is ")
            yield StreamEvent(text=tail)
            await gate.wait()  # the model is still writing when the student presses Stop

        stream = ReplyStream(open_attempt, PROMPT, guard=guard())
        shown: list[str] = []

        async def consume():
            async for event in stream:
                if isinstance(event, Delta):
                    shown.append(event.text)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        shown.append(stream.interrupt("stopped"))
        return "".join(shown), stream

    visible, stream = asyncio.run(scenario("75"))
    assert "75" not in visible and stream.result.partial
    assert stream.result.blocked[0].reason == "answer_leak"
    visible, stream = asyncio.run(scenario("what"))
    assert visible == "We have 5 trays. So it is what" and not stream.result.blocked


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    leak=st.sampled_from(LEAKS),
    cuts=st.lists(st.integers(min_value=1, max_value=200), max_size=6),
    before=st.text(alphabet="abc xyz.,?", max_size=30),
)
def test_no_split_of_a_leak_ever_shows_it(leak: str, cuts: list[int], before: str) -> None:
    text = before + " " + leak
    points = sorted({c % len(text) for c in cuts} - {0})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    open_attempt, _ = attempts_of(chunks, RECOVERY)
    stream = ReplyStream(open_attempt, PROMPT, guard=guard())
    shown, blocked = run(stream)
    assert blocked
    visible = "".join(shown)
    assert AnswerGuard(ANSWER, PROBLEM).start().finish(visible).violation is None


def test_coalescing_sends_fewer_frames_that_add_up() -> None:
    text = "Good start! How many trays are there, and how many cookies are on each?"
    clock = iter(i * 0.001 for i in range(10_000))
    open_attempt, _ = attempts_of(list(text))
    stream = ReplyStream(
        open_attempt, PROMPT, guard=guard(), coalesce_seconds=0.01, clock=lambda: next(clock)
    )
    shown, _ = run(stream)
    assert "".join(shown) == text
    assert len(shown) < len(text) / 3


# (final answer, problem, a reply that states it): every form a student would read as the answer.
FORMS = [
    ("1250", "A farm has 25 rows of 50 trees. How many trees?", "There are 1,250 trees."),
    ("1250", "A farm has 25 rows of 50 trees. How many trees?", "one thousand two hundred fifty"),
    ("37.4", "Split 187 into 5 equal parts.", "Each part is 37.4 units."),
    ("37.4", "Split 187 into 5 equal parts.", "Each is $\\frac{187}{5}$ exactly."),
    ("37.4", "Split 187 into 5 equal parts.", "Each is $\\dfrac{374}{10}$."),
    ("17/12", "Add 3/4 and 2/3.", "You get 1 5/12 in all."),
    ("17/12", "Add 3/4 and 2/3.", "You get 17/12 in all."),
    ("0.75", "What share of 8 slices is 6 slices?", "That is 75% of the pizza."),
    ("0.75", "What share of 8 slices is 6 slices?", "That is 75 percent."),
    ("0.75", "What share of 8 slices is 6 slices?", "It is three quarters."),
    ("0.75", "A pen costs 3 quarters of a dollar. What does it cost in dollars?", "It is $0.75."),
    ("0.75", "What share of 8 slices is 6 slices?", "That makes 75 cents."),
    ("215", "A film starts at 1:10 pm and ends at 4:45 pm. How many minutes?", "It is 3 h 35 min."),
    ("215", "A film lasts from 10 to 4. How many minutes?", "That is 3 hours and 35 minutes."),
    ("75", PROBLEM, "So it is seventy-five."),
    ("75", PROBLEM, "Digit by digit: 7, 5."),
    ("75", PROBLEM, "Backwards it reads 57."),
    ("-12", "It fell from 3 to minus 9, then by 3 more.", "It ends at -12 degrees."),
]


@pytest.mark.parametrize(("answer", "problem", "text"), FORMS)
def test_every_form_is_stopped_at_every_split(answer: str, problem: str, text: str) -> None:
    for cut in range(1, len(text)):
        open_attempt, _ = attempts_of([text[:cut], text[cut:]], [" what do you think?"])
        stream = ReplyStream(open_attempt, PROMPT, guard=AnswerGuard(answer, problem))
        shown, blocked = run(stream)
        assert [b.attempt.reason for b in blocked] == ["answer_leak"], (text, cut)
        first = "".join(shown)[: -len(" what do you think?")]
        assert text.startswith(first)
        assert AnswerGuard(answer, problem).start().finish(first).violation is None, (text, cut)


def test_quoting_the_students_own_mistake_is_not_false_arithmetic() -> None:
    text = "You wrote 7 × 14 = 84. Can you check that multiplication again?"
    open_attempt, _ = attempts_of([text])
    student = AnswerGuard(ANSWER, PROBLEM, ["I think 7 x 14 = 84 so it is 84 cookies"])
    shown, blocked = run(ReplyStream(open_attempt, PROMPT, guard=student))
    assert "".join(shown) == text and not blocked
    # Another false claim is still stopped.
    open_attempt, _ = attempts_of(["And 7 × 15 = 95, right?"], [" what is 7 × 15?"])
    shown, blocked = run(ReplyStream(open_attempt, PROMPT, guard=student))
    assert [b.attempt.reason for b in blocked] == ["false_arithmetic"]


@pytest.mark.parametrize(
    "text",
    [
        "Check: 5 + 5 + 5 + 5 = 18.\nNext, what do you do?",
        "So 240 + 480 = 960 and then we see.",
        "We get 3 × (4 + 2) = 3 × 6 = 19 apples.",
    ],
)
def test_false_arithmetic_is_stopped_at_every_split(text: str) -> None:
    for cut in range(1, len(text)):
        open_attempt, _ = attempts_of([text[:cut], text[cut:]], [" let's check that sum."])
        stream = ReplyStream(open_attempt, PROMPT, guard=guard())
        shown, blocked = run(stream)
        assert [b.attempt.reason for b in blocked] == ["false_arithmetic"], (text, cut)
        assert "".join(shown).endswith(" let's check that sum.")


def test_a_true_chain_is_never_stopped_at_any_split() -> None:
    text = "We get 3 × (4 + 2) = 3 × 6 = 18 apples, and 2 + 3 = 5 + 1 = 6 too."
    for cut in range(1, len(text)):
        open_attempt, _ = attempts_of([text[:cut], text[cut:]])
        shown, blocked = run(ReplyStream(open_attempt, PROMPT, guard=guard()))
        assert not blocked and "".join(shown) == text, (cut, blocked)


def test_an_answer_that_is_also_in_the_problem_is_allowed_only_in_the_problems_words() -> None:
    problem = "Ben has two brothers. Each eats 4 slices; a pizza has 4 slices. How many pizzas?"
    restated = "Ben has two brothers, right? How many people eat?"
    open_attempt, _ = attempts_of([restated])
    shown, blocked = run(ReplyStream(open_attempt, PROMPT, guard=AnswerGuard("2", problem)))
    assert "".join(shown) == restated and not blocked
    open_attempt, _ = attempts_of(["The answer is 2."], [" what do you think?"])
    shown, blocked = run(ReplyStream(open_attempt, PROMPT, guard=AnswerGuard("2", problem)))
    assert [b.attempt.reason for b in blocked] == ["answer_leak"]
    assert "2" not in "".join(shown)
