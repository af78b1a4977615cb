import asyncio
import json

import pytest

from inference.client import ModelUnavailable
from inference.prompts import Turn, build_tutor_messages
from training.rollout import (
    Completion,
    EndpointConfig,
    RolloutProblem,
    final_solutions,
    run_dialogue,
    run_rollouts,
)
from training.simulated_student import StudentProfile, student_says_done

pytestmark = pytest.mark.unit

PROBLEM = RolloutProblem(
    problem_id="p1",
    text="Tom has 3 bags with 4 apples each. He eats 2 apples. How many apples are left?",
    final_answer="10",
    solution="3*4=12, 12-2=10",
    category="multi-step",
    instructions=("Use a friendly tone.",),
)
STUDENT = StudentProfile(name="Sam", profile="Sam is a 6th grader.", incorrect_solution="3+4=7")
TUTOR = EndpointConfig(base_url="http://fake/v1", model="tutor-lora")
STUDENT_MODEL = EndpointConfig(base_url="http://fake/v1", model="base")


class FakeEndpoint:
    """Scripted replies per model name; records every call."""

    def __init__(self, tutor=None, student=None, final="Final answer: 10", delay=0.0):
        self.tutor = list(tutor or ["<think>ask about bags</think>How many apples in all?"])
        self.student = list(student or ["Maybe 12?"])
        self.final = final
        self.delay = delay
        self.calls = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, endpoint, messages, *, seed, n=1, max_tokens=None, extra_body=None):
        self.calls.append({"model": endpoint.model, "messages": messages, "seed": seed, "n": n})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if endpoint.model == "tutor-lora":
                reply = self.tutor.pop(0) if len(self.tutor) > 1 else self.tutor[0]
            elif n > 1 or "session is over" in messages[-1]["content"]:
                return [Completion(text=f"{self.final} #{i}") for i in range(n)]
            else:
                reply = self.student.pop(0) if len(self.student) > 1 else self.student[0]
            if isinstance(reply, Exception):
                raise reply
            return [Completion(text=reply, finish_reason="stop", completion_tokens=5)]
        finally:
            self.in_flight -= 1


async def test_dialogue_alternates_and_records_exact_tutor_prompts():
    fake = FakeEndpoint(
        tutor=["<think>plan: ask about bags</think>How many apples in all?", "Now he eats 2."],
        student=["Sam: Maybe 12?\nTutor: I made this up"],
    )
    d = await run_dialogue(PROBLEM, STUDENT, TUTOR, STUDENT_MODEL, max_turns=2, seed=1, chat=fake)
    assert not d.failed and not d.ended_by_student
    assert [t.role for t in d.turns] == ["student", "tutor", "student", "tutor"]
    first = d.turns[1]
    assert first.text == "How many apples in all?"
    assert first.hidden == "plan: ask about bags"
    assert first.raw.startswith("<think>")
    assert d.turns[2].text == "Maybe 12?"  # name prefix and invented tutor line removed
    # The tutor saw exactly what serving would build from the visible history.
    assert d.turns[3].messages == build_tutor_messages(
        PROBLEM.context(),
        [Turn(t.role, t.text) for t in d.turns[:3]],
        PROBLEM.instructions,
    )
    student_prompt = json.dumps(fake.calls[1]["messages"])
    assert "plan: ask about bags" not in student_prompt
    assert "How many apples in all?" in student_prompt
    assert "3+4=7" in student_prompt  # the persona's incorrect attempt
    assert all(t.latency_s >= 0 and t.started_at > 0 for t in d.turns)
    json.dumps(d.to_dict())  # serialisable


async def test_dialogue_ends_early_when_the_student_is_done():
    fake = FakeEndpoint(student=["Oh! 12 minus 2, so Final answer: 10 [DONE]"])
    d = await run_dialogue(PROBLEM, STUDENT, TUTOR, STUDENT_MODEL, max_turns=5, seed=1, chat=fake)
    assert d.ended_by_student
    assert [t.role for t in d.turns] == ["student", "tutor", "student"]
    assert student_says_done("I'm done") and not student_says_done("Is it 12?")


async def test_final_solutions_sample_k_in_one_request():
    fake = FakeEndpoint()
    d = await run_dialogue(PROBLEM, STUDENT, TUTOR, STUDENT_MODEL, max_turns=1, seed=1, chat=fake)
    solutions = await final_solutions(d, 3, chat=fake)
    assert solutions == d.final_solutions and len(solutions) == 3
    assert fake.calls[-1]["n"] == 3
    assert "Final answer" in d.final_messages[-1]["content"]


async def test_endpoint_error_is_recorded_not_raised():
    fake = FakeEndpoint(tutor=["Hint one", ModelUnavailable("server down")])
    d = await run_dialogue(PROBLEM, STUDENT, TUTOR, STUDENT_MODEL, max_turns=3, seed=1, chat=fake)
    assert d.failed and "server down" in d.error
    assert [t.role for t in d.turns] == ["student", "tutor", "student"]  # partial kept
    assert await final_solutions(d, 2, chat=fake) == []

    class Broken(FakeEndpoint):
        async def __call__(self, endpoint, messages, **kw):
            if kw.get("n", 1) > 1:
                raise TimeoutError("slow")
            return await super().__call__(endpoint, messages, **kw)

    broken = Broken()
    [d] = await run_rollouts([PROBLEM], TUTOR, STUDENT_MODEL, max_turns=1, k=2, chat=broken)
    assert d.failed and d.error.startswith("final solutions")


async def test_concurrency_bound_progress_and_group_seeds():
    fake = FakeEndpoint(delay=0.01)
    problems = [
        RolloutProblem(problem_id=f"p{i}", text=PROBLEM.text, final_answer="10") for i in range(5)
    ]
    seen = []
    dialogues = await run_rollouts(
        problems,
        TUTOR,
        STUDENT_MODEL,
        max_turns=2,
        k=2,
        group_size=2,
        concurrency=3,
        seed=0,
        progress=lambda done, total, d: seen.append((done, total)),
        chat=fake,
    )
    assert fake.max_in_flight == 3
    assert seen == [(i, 10) for i in range(1, 11)]
    assert [(d.group, d.sample) for d in dialogues] == [(g, s) for g in range(5) for s in range(2)]
    # One group shares problem and student, but its samples differ by seed.
    a, b = dialogues[0], dialogues[1]
    assert a.student == b.student and a.seed != b.seed
    assert a.turns[1].seed != b.turns[1].seed
    again = await run_rollouts(problems, TUTOR, STUDENT_MODEL, max_turns=2, k=2, group_size=2,
                               seed=0, chat=FakeEndpoint())  # fmt: skip
    assert [d.seed for d in again] == [d.seed for d in dialogues]


async def test_async_progress_callback_is_awaited():
    calls = []

    async def progress(done, total, dialogue):
        await asyncio.sleep(0)
        calls.append(done)

    await run_rollouts([PROBLEM] * 2, TUTOR, STUDENT_MODEL, max_turns=1, k=1,
                       progress=progress, chat=FakeEndpoint())  # fmt: skip
    assert calls == [1, 2]


def test_a_rollout_request_waits_its_own_timeout_not_the_streaming_first_token_wait():
    # Non-streaming: the chat client's first-token wait (300 s by default) must not apply.
    config = EndpointConfig(base_url="http://127.0.0.1:1/v1", model="m", timeout=7).server_config()
    assert config.read_timeout == 7 and config.first_token_timeout == 7
