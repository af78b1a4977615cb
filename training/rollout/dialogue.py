"""One rollout: the dialogue loop (:func:`run_dialogue`: the student's templated opening, the
tutor's turns and the simulated student's replies), the guarded tutor reply
(:func:`guarded_reply`) and the student's final solutions (:func:`final_solutions`)."""

from __future__ import annotations

import time
from typing import Any

from inference.client import StreamEvent
from inference.prompts import build_tutor_messages
from inference.reply_stream import ReplyResult, ReplyStream
from inference.thinking import split_thinking
from pedagogy.guard import AnswerGuard
from training.calculator import apply_calculator
from training.simulated_student import (
    StudentProfile,
    build_final_solution_messages,
    build_student_messages,
    clean_student_turn,
    opening_message,
    student_says_done,
)

from .chat import ChatFn, _timed, derive_seed, openai_chat
from .failures import ENDPOINT_ERRORS, failure_kind
from .types import Completion, Dialogue, DialogueTurn, EndpointConfig, Messages, RolloutProblem


async def run_dialogue(
    problem: RolloutProblem,
    student: StudentProfile,
    tutor: EndpointConfig,
    student_model: EndpointConfig,
    max_turns: int,
    seed: int | None = None,
    *,
    chat: ChatFn = openai_chat,
    group: int = 0,
    sample: int = 0,
    hidden_planning: bool = False,
    guard_retries: int | None = None,
) -> Dialogue:
    """Run one tutor-student dialogue of at most ``max_turns`` tutor turns. Never raises for
    endpoint failures: the partial dialogue comes back with ``error`` set.

    With ``guard_retries`` (an int) every tutor turn passes the platform's answer guard, as on
    the chat socket (:func:`guarded_reply`): the student sees what a student would see."""
    if max_turns < 1:
        raise ValueError("max_turns must be at least 1")
    dialogue = Dialogue(
        problem=problem,
        student=student,
        tutor=tutor,
        student_model=student_model,
        seed=seed,
        group=group,
        sample=sample,
        started_at=time.time(),
    )
    dialogue.turns.append(
        DialogueTurn(
            role="student",
            text=opening_message(student),
            started_at=dialogue.started_at,
            generated=False,
        )
    )
    clock = time.perf_counter()
    context = problem.context()
    try:
        for index in range(max_turns):
            messages = build_tutor_messages(
                context, dialogue.history(), problem.instructions, hidden_planning=hidden_planning
            )
            turn_seed = derive_seed(seed, "tutor", index)
            (reply, *_), started, latency = await _timed(chat, tutor, messages, turn_seed)
            split = split_thinking(reply.text)
            visible, guarded = split.visible.strip(), None
            if guard_retries is not None:
                guarded = await guarded_reply(
                    chat,
                    tutor,
                    messages,
                    reply,
                    AnswerGuard(
                        problem.final_answer,
                        problem.text,
                        [t.text for t in dialogue.turns if t.role == "student"],
                    ),
                    retries=guard_retries,
                    seed=turn_seed,
                )
                visible = guarded.text
            dialogue.turns.append(
                DialogueTurn(
                    role="tutor",
                    text=visible,
                    guard=guarded.guard if guarded else "",
                    blocked=[b.reason for b in guarded.blocked] if guarded else [],
                    hidden=split.hidden,
                    raw=reply.text,
                    messages=messages,
                    finish_reason=reply.finish_reason,
                    prompt_tokens=reply.prompt_tokens,
                    completion_tokens=reply.completion_tokens,
                    seed=turn_seed,
                    started_at=started,
                    latency_s=latency,
                )
            )
            if index == max_turns - 1:
                break
            student_messages = build_student_messages(problem.text, student, dialogue.history())
            turn_seed = derive_seed(seed, "student", index)
            (answer, *_), started, latency = await _timed(
                chat, student_model, student_messages, turn_seed
            )
            text = clean_student_turn(answer.text, student.name)
            dialogue.turns.append(
                DialogueTurn(
                    role="student",
                    text=text,
                    raw=answer.text,
                    finish_reason=answer.finish_reason,
                    prompt_tokens=answer.prompt_tokens,
                    completion_tokens=answer.completion_tokens,
                    seed=turn_seed,
                    started_at=started,
                    latency_s=latency,
                )
            )
            if student_says_done(text):
                dialogue.ended_by_student = True
                break
    except ENDPOINT_ERRORS as exc:
        dialogue.error = f"{type(exc).__name__}: {exc}"
        dialogue.error_kind = failure_kind(exc)
    dialogue.dialogue_s = time.perf_counter() - clock
    return dialogue


async def guarded_reply(
    chat: ChatFn,
    endpoint: EndpointConfig,
    messages: Messages,
    first: Completion,
    guard: AnswerGuard,
    *,
    retries: int,
    seed: int | None,
) -> ReplyResult:
    """``first`` (a whole completion of ``messages``) through the reply pipeline
    (:class:`inference.reply_stream.ReplyStream`): a turn the guard stops is asked for again,
    with the correction and a seed of its own, up to ``retries`` times, then replaced by the
    fallback. The guard reads a whole completion at once, so a retry starts the turn afresh."""
    attempts = 0

    async def open_attempt(prompt: Messages, extra: dict[str, Any] | None):
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            completion = first
        else:
            kwargs: dict[str, Any] = {"extra_body": extra} if extra else {}
            (completion, *_) = await chat(
                endpoint, prompt, seed=derive_seed(seed, "retry", attempts), **kwargs
            )
        yield StreamEvent(text=completion.text, finish_reason=completion.finish_reason)

    stream = ReplyStream(open_attempt, messages, guard=guard, max_retries=retries)
    async for _ in stream:
        pass
    return stream.result


async def final_solutions(
    dialogue: Dialogue,
    k: int,
    *,
    max_tokens: int | None = None,
    chat: ChatFn = openai_chat,
    calculator: bool = False,
) -> list[str]:
    """Sample ``k`` post-dialogue solutions from the student (one request with ``n=k``) and
    store them on the dialogue. A failed dialogue gets none; an endpoint failure is recorded
    on the dialogue and gives []. With ``calculator`` the student may write ``calc(...)``,
    and the stored solutions have each call replaced by its value
    (:func:`training.calculator.apply_calculator`)."""
    if dialogue.failed or k < 1:
        return []
    messages = build_final_solution_messages(
        dialogue.problem.text, dialogue.student, dialogue.history(), calculator=calculator
    )
    dialogue.final_messages = messages
    clock = time.perf_counter()
    try:
        completions, _, _ = await _timed(
            chat,
            dialogue.student_model,
            messages,
            derive_seed(dialogue.seed, "final"),
            n=k,
            max_tokens=max_tokens,
        )
    except ENDPOINT_ERRORS as exc:
        dialogue.error = f"final solutions: {type(exc).__name__}: {exc}"
        dialogue.error_kind = failure_kind(exc)
        return []
    finally:
        dialogue.final_s = time.perf_counter() - clock
    texts = [c.text for c in completions[:k]]
    dialogue.final_solutions = [apply_calculator(t) for t in texts] if calculator else texts
    return dialogue.final_solutions
