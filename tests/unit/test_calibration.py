import asyncio
import json
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.client import ModelUnavailable
from training import calibrate as cli
from training.calculator import (
    CALCULATOR_INSTRUCTION,
    MAX_CALLS,
    MAX_EXPRESSION_CHARS,
    apply_calculator,
    evaluate,
)
from training.calibration import (
    band_sample,
    calibrate,
    calibration_messages,
    histogram,
    in_band,
)
from training.rollout import (
    Completion,
    Dialogue,
    EndpointConfig,
    RolloutProblem,
    final_solutions,
)
from training.simulated_student import StudentProfile

pytestmark = pytest.mark.unit

STUDENT = EndpointConfig(base_url="http://fake/v1", model="student")


def problem(pid: str, text: str, answer: str) -> RolloutProblem:
    return RolloutProblem(problem_id=pid, text=text, final_answer=answer)


PROBLEMS = [
    problem("p-apples", "How many apples? 7 bags of 14 apples.", "98"),
    problem("p-change", "Change from $20 after $7.45 and $1.80?", "10.75"),
    problem("p-third", "Three friends share 2 pizzas.", "2/3"),
]


class FakeChat:
    """A student that solves ``right[key]`` of its n samples: the problem is told by a word in
    its text. With the calculator in the prompt it writes calc(...) for the ones it gets wrong
    by hand; ``fail`` makes one problem's request fail."""

    RIGHT = {"apples": 3, "Change": 0, "pizzas": 8}
    EXPRESSIONS = {"apples": ("7 * 14", "84"), "Change": ("20 - 7.45 - 1.80", "3.70")}

    def __init__(self, fail: str | None = None, short: bool = False):
        self.fail = fail
        self.short = short
        self.calls: list[dict] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, endpoint, messages, *, seed, n=1, max_tokens=None, extra_body=None):
        self.calls.append({"seed": seed, "n": n, "max_tokens": max_tokens, "messages": messages})
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        prompt = messages[-1]["content"]
        key = next(word for word in self.RIGHT if word in prompt)
        if key == self.fail:
            raise ModelUnavailable("the model server refused the request (500)")
        right = self.RIGHT[key]
        reference = {"apples": "98", "Change": "10.75", "pizzas": "2/3"}[key]
        calculator = CALCULATOR_INSTRUCTION in prompt
        out = []
        for index in range(n - 1 if self.short else n):
            if index < right:
                out.append(Completion(f"I think so.\nFinal answer: {reference}"))
            elif calculator and key in self.EXPRESSIONS:
                expression, guess = self.EXPRESSIONS[key]
                out.append(Completion(f"calc({expression}) = {guess}\nFinal answer: {guess}"))
            else:
                out.append(Completion("Final answer: 5"))
        return out


def run(coro):
    return asyncio.run(coro)


def test_rates_are_computed_per_problem_in_order():
    chat = FakeChat()
    seen = []
    results = run(
        calibrate(
            PROBLEMS, STUDENT, k=8, seed=7, chat=chat, progress=lambda d, t, r: seen.append(d)
        )
    )
    assert [r.problem_id for r in results] == ["p-apples", "p-change", "p-third"]
    assert [r.solve_rate for r in results] == [3 / 8, 0.0, 1.0]
    assert results[0].answers[:3] == ("98",) * 3 and results[0].answers[3] == "5"
    assert results[0].solved == (True,) * 3 + (False,) * 5
    assert sorted(seen) == [1, 2, 3]
    assert all(c["n"] == 8 and c["max_tokens"] == 384 for c in chat.calls)
    # seeded per problem, the same on every run
    again = FakeChat()
    run(calibrate(PROBLEMS, STUDENT, k=8, seed=7, chat=again))
    assert [c["seed"] for c in chat.calls] == [c["seed"] for c in again.calls]
    assert len({c["seed"] for c in chat.calls}) == 3


def test_the_prompt_is_the_evaluations_before_prompt():
    chat = FakeChat()
    run(calibrate(PROBLEMS[:1], STUDENT, k=2, chat=chat))
    prompt = chat.calls[0]["messages"][-1]["content"]
    assert "The tutoring session is over" in prompt
    assert "Hi, I'm working on this problem" in prompt  # the templated opening
    assert CALCULATOR_INSTRUCTION not in prompt
    assert (
        CALCULATOR_INSTRUCTION in calibration_messages(PROBLEMS[0], calculator=True)[-1]["content"]
    )


def test_a_missing_sample_counts_as_wrong_and_a_failure_is_uncalibrated():
    results = run(calibrate(PROBLEMS, STUDENT, k=8, chat=FakeChat(fail="Change", short=True)))
    assert results[2].solve_rate == 7 / 8  # 7 right answers came back for k = 8
    assert results[1].solve_rate is None and "ModelUnavailable" in results[1].error
    assert results[1].error_kind is not None
    assert not in_band(results[1].solve_rate)
    assert results[1].to_dict()["error"]


def test_concurrency_is_limited():
    chat = FakeChat()
    many = [problem(f"p{i}", "apples", "98") for i in range(12)]
    run(calibrate(many, STUDENT, k=1, concurrency=3, chat=chat))
    assert chat.most_in_flight == 3
    with pytest.raises(ValueError):
        run(calibrate(many, STUDENT, k=0, chat=chat))


def test_the_calculator_turns_right_operations_into_solves():
    off = run(calibrate(PROBLEMS, STUDENT, k=8, chat=FakeChat()))
    on = run(calibrate(PROBLEMS, STUDENT, k=8, chat=FakeChat(), calculator=True))
    # "calc(7 * 14) = 84 / Final answer: 84": the guess 84 is the calculator's 98 everywhere
    assert [r.solve_rate for r in off] == [3 / 8, 0.0, 1.0]
    assert [r.solve_rate for r in on] == [1.0, 1.0, 1.0]
    assert all(r.calculator for r in on)


def test_calculator_in_final_solutions():
    class Solver:
        async def __call__(self, endpoint, messages, *, seed, n=1, max_tokens=None, **kw):
            assert CALCULATOR_INSTRUCTION in messages[-1]["content"]
            return [Completion("7 bags: calc(7 * 14) = 84\nFinal answer: calc(7*14)")] * n

    student = StudentProfile(name="Mei", profile="Mei is a student.")
    dialogue = Dialogue(problem=PROBLEMS[0], student=student, tutor=STUDENT, student_model=STUDENT)
    texts = run(final_solutions(dialogue, 2, chat=Solver(), calculator=True))
    assert texts == ["7 bags: 98\nFinal answer: 98"] * 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("calc(7 * 14)", "98"),
        ("Final answer: calc(20 - 7.45 - 1.80)", "Final answer: 10.75"),
        ("calc(7 * 14) = 84 apples", "98 apples"),
        ("calc(2^10) = 1024.", "1024."),
        ("calc($20 - $7.45)", "12.55"),
        ("calc((3 + 4) * 2) and CALC (10/3)", "14 and 10/3"),
        ("calc(3/4 of 360)", "270"),
        ("calc(7 x 14), calc(7 × 14), calc(84 ÷ 4)", "98, 98, 21"),
        ("calc(42)", "42"),
        ("calc(1 - 3)", "-2"),
        (
            "calc(7 * 14) = 84, so 84 + 2 = 86.\nFinal answer: 84",
            "98, so 98 + 2 = 86.\nFinal answer: 98",
        ),
        (
            "calc(7 * 14) = 84 then calc(84 / 2) = 40\nFinal answer: 40",
            "98 then 49\nFinal answer: 49",
        ),
        ("calc(7 * 14) = 98 and 98 or 84", "98 and 98 or 84"),
        ("84 first, calc(7 * 14) = 84, 1,084 and 84.5 stay", "84 first, 98, 1,084 and 84.5 stay"),
        ("calc(1000 + 500) = 1,600 so 1,600", "1500 so 1500"),
    ],
)
def test_calculator_substitutes_values(text, expected):
    assert apply_calculator(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "calc(x + 2)",
        "calc(apples 3 + 4)",
        "calc(5 / 0)",
        "calc(3 + ",
        "calc(3 + 4",
        "calc()",
        "calc(3 + 4 = 7)",
        "calc(9^9^9^9)",
        "calc(10^100000)",
        "calc(" + "9" * 200 + " * 9)",
        "calc(" + "(" * 60 + "1" + ")" * 60 + ")",
        "calc(" + " + ".join(["1"] * 80) + ")",
        "calc(3 +\n4)",
        "calc(1234567890123 / 9876543210127)",
        "calculate 3 + 4",
    ],
)
def test_invalid_calls_stay_as_text(text):
    assert apply_calculator(text) == text


def test_hostile_inputs_are_bounded():
    many = "calc(1 + 1) " * (MAX_CALLS + 20)
    clock = time.perf_counter()
    out = apply_calculator(many)
    assert out.count("calc(") == 20 and out.count("2 ") == MAX_CALLS
    huge = "calc(" * 5000
    assert apply_calculator(huge) == huge
    open_paren = "calc(" + "(" * 19_990
    assert apply_calculator(open_paren) == open_paren
    too_long = "calc(1 + 1)" + " " * 30_000
    assert apply_calculator(too_long) == too_long
    assert evaluate("1 + " * MAX_EXPRESSION_CHARS) is None
    assert time.perf_counter() - clock < 5


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="calc()0123456789+-*/^.x =$\n", max_size=300))
def test_calculator_never_raises_and_keeps_text_without_calls(text):
    out = apply_calculator(text)
    if "calc" not in text.lower():
        assert out == text
    assert len(out) <= 25 * len(text)


@settings(max_examples=200, deadline=None)
@given(st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6), st.sampled_from("+-*"))
def test_calculator_agrees_with_python(a, b, op):
    expression = f"{a} {op} {b}".replace("- -", "+ ")
    expected = {"+": a + b, "-": a - b, "*": a * b}[op]
    assert apply_calculator(f"so calc({expression}) apples") == f"so {expected} apples"


def test_in_band():
    assert in_band(1 / 8) and in_band(0.5) and in_band(0.6) and in_band(0.01)
    assert not in_band(0.0) and not in_band(5 / 8) and not in_band(1.0) and not in_band(None)
    assert in_band(0.9, low=0.5, high=1.0)
    with pytest.raises(ValueError):
        in_band(0.5, low=0.7, high=0.6)


def test_band_sample_draws_from_the_band():
    problems = [problem(f"p{i}", "t", "1") for i in range(40)]
    rates = {p.problem_id: (0.25 if i % 2 else 0.0) for i, p in enumerate(problems)}
    chosen = band_sample(problems, rates, 10, random.Random(1))
    assert len(chosen) == 10 and len({p.problem_id for p in chosen}) == 10
    assert all(rates[p.problem_id] == 0.25 for p in chosen)
    assert chosen == band_sample(problems, rates, 10, random.Random(1))
    assert chosen != band_sample(problems, rates, 10, random.Random(2))


def test_band_sample_tops_up_with_the_nearest_when_too_few(monkeypatch):
    import training.calibration as calibration

    warnings: list[str] = []
    # The module's logger itself, not the root's capture: other tests may reconfigure logging.
    monkeypatch.setattr(
        calibration.logger, "warning", lambda message, *args: warnings.append(message % args)
    )
    problems = [problem(f"p{i}", "t", "1") for i in range(6)]
    rates = {"p0": 0.5, "p1": 1.0, "p2": 0.75, "p3": 0.0, "p4": 0.625}  # p5 uncalibrated
    chosen = band_sample(problems, rates, 4, random.Random(0))
    ids = [p.problem_id for p in chosen]
    # in band, then by distance to the band: 0.0 (0.01 below), 0.625, 0.75; 1.0 is left out
    assert ids == ["p0", "p3", "p4", "p2"]
    assert any("only 1 of 4" in warning for warning in warnings)
    everything = band_sample(problems, rates, 10, random.Random(0))
    assert len(everything) == 6 and everything[-1].problem_id == "p5"


def test_histogram():
    assert histogram([0.0, 0.125, 0.125, 1.0, None], 8) == {
        0: 1,
        1: 2,
        2: 0,
        3: 0,
        4: 0,
        5: 0,
        6: 0,
        7: 0,
        8: 1,
    }


def test_cli_writes_results_and_in_band_dataset(tmp_path, monkeypatch, capsys):
    async def fake_calibrate(problems, endpoint, **kw):
        from training.calibration import calibrate as real

        return await real(problems, endpoint, **{**kw, "chat": FakeChat()})

    monkeypatch.setattr(cli, "calibrate", fake_calibrate)
    bank = tmp_path / "bank.json"
    bank.write_text(
        json.dumps(
            [
                {"source_id": "a", "text": "apples", "final_answer": "98", "skills": ["x"]},
                {"source_id": "b", "text": "pizzas", "final_answer": "2/3"},
            ]
        )
    )
    out, dataset = tmp_path / "r.jsonl", tmp_path / "d.jsonl"
    code = cli.main(
        [
            *("--endpoint", "http://fake/v1", "--source", "bank", "--bank", str(bank)),
            *("--k", "8", "--out", str(out), "--dataset-out", str(dataset)),
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((x["problem_id"], x["solve_rate"], x["in_band"]) for x in lines) == [
        ("bank:a", 3 / 8, True),
        ("bank:b", 1.0, False),
    ]
    assert "in band 1%-60% (*): 1 of 2" in capsys.readouterr().out
    assert [json.loads(x)["problem_id"] for x in dataset.read_text().splitlines()] == ["bank:a"]
    assert cli.main(["--source", "bank", "--out", str(out)]) == 2  # no endpoint
