"""Failures of the infrastructure (the model server unreachable, timing out, answering 5xx or
not serving the model) are told apart from the tutor's own results: the evaluation stops with
the count and the first cause instead of reporting figures over the few items that got
through, and a training step retries or stops instead of training on rewards the server
decided. The API key reaches every caller and never a report."""

from __future__ import annotations

import dataclasses
import json

import httpx
import openai
import pytest

from inference import launcher
from inference.client import ModelNotFound, ModelServerError, ModelUnavailable
from tests.support.mathdial import write_mathdial
from training import evaluate as cli
from training.evaluation import (
    EvaluationConfig,
    EvaluationIncomplete,
    check_report,
    run_evaluation,
)
from training.jobs import TrainJobConfig
from training.rollout import (
    MODEL_NOT_FOUND,
    SERVER_ERROR,
    TIMEOUT,
    UNAUTHORIZED,
    UNREACHABLE,
    Completion,
    Dialogue,
    EndpointConfig,
    InfrastructureFailure,
    RolloutProblem,
    check_rollouts,
    failure_kind,
    run_rollouts,
)
from training.simulated_student import StudentProfile

pytestmark = pytest.mark.unit


@pytest.fixture
def mathdial(tmp_path) -> str:
    return str(write_mathdial(tmp_path))


def config(mathdial: str, **kw) -> EvaluationConfig:
    base = {
        "endpoint": "http://fake/v1",
        "model": "tutor",
        "student_model": "base",
        "tasks": ("interactive", "solving"),
        "limit": 3,
        "max_turns": 1,
        "k": 1,
        "concurrency": 1,
        "bootstrap_samples": 50,
        "mathdial_path": mathdial,
    }
    return EvaluationConfig(**{**base, **kw})


class Chat:
    """Answers every call (a question from the tutor, a final answer from the student) except
    those ``fail(endpoint, messages)`` says to fail, which raise ``error``."""

    def __init__(self, error: BaseException | None = None, fail=lambda endpoint, text: True):
        self.error = error
        self.fail = fail
        self.endpoints: list[EndpointConfig] = []

    async def __call__(self, endpoint, messages, *, seed, n=1, max_tokens=None, extra_body=None):
        self.endpoints.append(endpoint)
        text = " ".join(m["content"] for m in messages)
        if self.error is not None and self.fail(endpoint, text):
            raise self.error
        return [Completion("What do two bags hold? Final answer: 8") for _ in range(n)]


def connection_refused() -> ModelUnavailable:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    try:
        raise openai.APIConnectionError(request=request)
    except openai.APIConnectionError as cause:
        try:
            raise ModelUnavailable("cannot reach the model server at http://127.0.0.1:9") from cause
        except ModelUnavailable as exc:
            return exc


# ---- what counts as the infrastructure -----------------------------------------------------


def test_failure_kinds():
    assert failure_kind(connection_refused()) == UNREACHABLE
    assert failure_kind(ModelUnavailable("refused (503)", status_code=503)) == SERVER_ERROR
    assert failure_kind(ModelNotFound("no such model", status_code=404)) == MODEL_NOT_FOUND
    assert failure_kind(ModelUnavailable("refused (401)", status_code=401)) == UNAUTHORIZED
    assert failure_kind(ModelServerError("no choices")) == SERVER_ERROR
    assert failure_kind(TimeoutError("slow")) == TIMEOUT
    assert failure_kind(ConnectionError("reset")) == UNREACHABLE
    assert failure_kind(httpx.ReadTimeout("slow")) == TIMEOUT
    # The request itself was refused (too long a prompt): not the infrastructure.
    assert failure_kind(ModelUnavailable("refused (400)", status_code=400)) is None
    assert failure_kind(ValueError("a bug")) is None


# ---- the evaluation ---------------------------------------------------------------------------


def test_an_unreachable_server_stops_the_evaluation_with_the_count_and_first_cause(mathdial):
    chat = Chat(connection_refused())
    with pytest.raises(EvaluationIncomplete) as caught:
        run_evaluation(config(mathdial, max_infra_failure_rate=0.1), chat=chat)
    error = caught.value
    message = str(error)
    assert "3 of 3 interactive items failed for infrastructure reasons" in message
    assert "3 of 3 solving items failed" in message
    assert "first cause: solutions before: ModelUnavailable: cannot reach the model server" in (
        message
    )
    assert error.transient and error.failed == 6 and error.total == 6
    # The report as far as it went comes with the error: every item says why it failed.
    items = error.report["tasks"]["interactive"]["items"]
    assert {item["error_kind"] for item in items} == {UNREACHABLE}
    assert error.report["tasks"]["interactive"]["infra_failed"] == 3


def test_failures_are_tolerated_up_to_the_threshold(mathdial):
    def one_problem(endpoint, text):
        return endpoint.model == "tutor" and "5 marbles" in text

    chat = Chat(ModelUnavailable("refused (502)", status_code=502), fail=one_problem)
    report = run_evaluation(config(mathdial, max_infra_failure_rate=0.5), chat=chat)
    assert report["tasks"]["interactive"]["n"] == 2
    assert report["tasks"]["interactive"]["infra_failed"] == 1
    with pytest.raises(EvaluationIncomplete, match="1 of 3 interactive items"):
        run_evaluation(config(mathdial, max_infra_failure_rate=0.1), chat=chat)
    # Without a threshold failures are only recorded, as before.
    assert run_evaluation(config(mathdial), chat=chat)["tasks"]["solving"]["failed"] == 1


def test_a_task_that_measured_nothing_stops_the_run_whatever_the_cause(mathdial, tmp_path):
    refused = Chat(ModelUnavailable("refused (400): too long", status_code=400))
    with pytest.raises(EvaluationIncomplete) as caught:
        run_evaluation(config(mathdial, max_infra_failure_rate=0.1), chat=refused)
    assert "interactive measured no item (3 attempted; first cause:" in str(caught.value)
    assert not caught.value.transient  # retrying the same requests would not help

    missing = config(
        mathdial,
        tasks=("interactive", "scaffolding"),
        mathtutorbench_paths=(str(tmp_path / "nope.json"),),
        max_infra_failure_rate=0.1,
    )
    with pytest.raises(EvaluationIncomplete, match="scaffolding measured no item"):
        run_evaluation(missing, chat=Chat())


def test_a_wrong_api_key_is_not_worth_retrying(mathdial):
    chat = Chat(ModelUnavailable("refused (401)", status_code=401))
    with pytest.raises(EvaluationIncomplete) as caught:
        run_evaluation(config(mathdial, max_infra_failure_rate=0.1), chat=chat)
    assert not caught.value.transient


def test_check_report_accepts_reports_without_items():
    metric = {"value": 0.1, "ci_low": 0.0, "ci_high": 0.2, "n": 20}
    check_report({"tasks": {"interactive": {"n": 20, "metrics": {"leak_rate": metric}}}}, 0.1)
    with pytest.raises(EvaluationIncomplete, match="interactive measured no item"):
        check_report({"tasks": {"interactive": {"n": 0, "metrics": {}}}}, 0.1)


def test_the_api_key_reaches_both_endpoints_and_never_the_report(mathdial):
    chat = Chat()
    cfg = config(mathdial, api_key="sekret")
    report = run_evaluation(cfg, chat=chat)
    assert {(e.model, e.api_key) for e in chat.endpoints} == {
        ("tutor", "sekret"),
        ("base", "sekret"),
    }
    assert "sekret" not in json.dumps(report) and "sekret" not in repr(cfg)
    assert "api_key" not in cfg.to_dict()
    assert EvaluationConfig.from_dict({**cfg.to_dict(), "api_key": "k"}).api_key == "k"


def test_the_cli_writes_the_report_and_exits_4_when_the_run_stops(mathdial, tmp_path, capsys):
    out = tmp_path / "report.json"
    argv = [
        "--endpoint", "http://fake/v1", "--model", "tutor", "--student-model", "base",
        "--mathdial", mathdial, "--tasks", "interactive", "--limit", "3", "--max-turns", "1",
        "--k", "1", "--bootstrap-samples", "20", "--no-progress", "--out", str(out),
    ]  # fmt: skip
    assert cli.main(argv, chat=Chat(connection_refused())) == cli.INCOMPLETE
    report = json.loads(out.read_text())
    assert "3 of 3 interactive items failed" in report["error"]
    assert "cannot reach the model server" in capsys.readouterr().err
    assert cli.main([*argv, "--keep-going"], chat=Chat(connection_refused())) == 1


def test_the_cli_sends_the_environments_api_key(monkeypatch):
    monkeypatch.setenv("TUTOR_MODEL_API_KEY", "from-env")
    args = cli.parse_args(["--endpoint", "http://x/v1", "--model", "m", "--out", "o.json"])
    assert cli.config_from_args(args).api_key == "from-env"


# ---- rollouts ---------------------------------------------------------------------------------

PROBLEM = RolloutProblem(problem_id="p1", text="What is 2 + 2?", final_answer="4")
TUTOR = EndpointConfig(base_url="http://fake/v1", model="tutor", api_key="sekret")
STUDENT = EndpointConfig(base_url="http://fake/v1", model="base", api_key="sekret")


async def test_rollouts_record_the_failure_kind_and_keep_the_key_out_of_records():
    dialogues = await run_rollouts(
        [PROBLEM], TUTOR, STUDENT, max_turns=1, k=1, group_size=2,
        chat=Chat(connection_refused()),
    )  # fmt: skip
    assert [d.error_kind for d in dialogues] == [UNREACHABLE, UNREACHABLE]
    record = dialogues[0].to_dict()
    assert "sekret" not in json.dumps(record) and "sekret" not in repr(TUTOR)


def dialogue(error_kind: str | None = None, error: str | None = None) -> Dialogue:
    d = Dialogue(
        problem=PROBLEM, student=StudentProfile(name="S", profile=""), tutor=TUTOR,
        student_model=STUDENT,
    )  # fmt: skip
    d.error, d.error_kind = error, error_kind
    return d


def test_check_rollouts_thresholds_and_transience():
    ok = [dialogue() for _ in range(9)]
    down = dialogue(UNREACHABLE, "ModelUnavailable: cannot reach the model server")
    assert check_rollouts([*ok, down], 0.1) is None  # 1 of 10: at the limit
    failure = check_rollouts([*ok[:8], down, down], 0.1, where="step 3")
    assert isinstance(failure, InfrastructureFailure) and failure.transient
    assert str(failure).startswith("2 of 10 rollouts in step 3 failed for infrastructure")
    assert "first cause: ModelUnavailable: cannot reach" in str(failure)
    every = check_rollouts([down, dialogue(UNAUTHORIZED, "401")], 0.1)
    assert str(every).startswith("every rollout failed") and not every.transient
    # A refused request is the rollout's own failure, not the infrastructure's.
    assert check_rollouts([dialogue(None, "400 too long")] * 3, 0.1) is None


def test_failed_rollouts_take_their_groups_mean_reward():
    from training.grpo_rollouts import neutral_failed_rewards

    class B:
        def __init__(self, total):
            self.total = total

    rewards = neutral_failed_rewards(
        [0, 0, 0, 1, 1], [False, True, False, True, True], [B(1.0), B(0.0), B(0.0), B(0), B(0)]
    )
    assert rewards == [1.0, 0.5, 0.0, 0.0, 0.0]


class FlakyChat(Chat):
    """Refuses connections for the first ``failing`` calls, then answers."""

    def __init__(self, failing: int, error: BaseException | None = None):
        super().__init__(error or connection_refused(), fail=self._count)
        self.failing = failing

    def _count(self, endpoint, text) -> bool:
        self.failing -= 1
        return self.failing >= 0


def rollouts(chat, logs: list[str], **overrides):
    from training.curriculum import SelfEvolvingCurriculum
    from training.grpo_rollouts import TutorRollouts

    class Publisher:
        current = "job-x-step0"

    class Tokenizer:
        eos_token_id = 0

        def apply_chat_template(self, messages, tokenize=False, **kw):
            return " ".join(m["content"] for m in messages)

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [len(word) for word in text.split()]}

    config = TrainJobConfig(
        group_size=2, problems_per_step=1, max_turns=1, k=1, concurrency=1,
        rollout_retry_seconds=0.01, api_key="sekret", **overrides,
    )  # fmt: skip
    curriculum = SelfEvolvingCurriculum(["general"], seed=0)
    return TutorRollouts(
        config, Tokenizer(), {"general": [PROBLEM]}, curriculum, Publisher(),
        log=logs.append, chat=chat,
    )  # fmt: skip


class Trainer:
    class state:
        global_step = 2


def test_a_step_whose_rollouts_the_server_failed_is_rolled_out_again(monkeypatch):
    import training.grpo_rollouts as grpo_rollouts

    monkeypatch.setattr(grpo_rollouts, "encode_dialogue", lambda tokenizer, d: None)
    logs: list[str] = []
    chat = FlakyChat(failing=2)  # both rollouts of the first attempt fail
    out = rollouts(chat, logs, rollout_retries=1)(["slot"] * 2, Trainer())
    assert len(out["pedagogy_reward"]) == 2
    assert any("every rollout failed" in line and "rolling out again" in line for line in logs)
    assert {e.api_key for e in chat.endpoints} == {"sekret"}


def test_a_step_stops_the_job_once_its_retries_are_spent_or_at_once_for_a_wrong_key(
    monkeypatch,
):
    logs: list[str] = []
    with pytest.raises(InfrastructureFailure) as caught:
        rollouts(FlakyChat(failing=100), logs, rollout_retries=2)(["slot"] * 2, Trainer())
    assert "every rollout failed for infrastructure reasons (2 of 2 in step 3)" in str(caught.value)
    assert "cannot reach the model server" in str(caught.value)
    assert sum("rolling out again" in line for line in logs) == 2

    logs.clear()
    unauthorized = FlakyChat(100, ModelUnavailable("refused (401)", status_code=401))
    with pytest.raises(InfrastructureFailure) as caught:
        rollouts(unauthorized, logs, rollout_retries=2)(["slot"] * 2, Trainer())
    assert not caught.value.transient and logs == []


def test_train_config_keeps_the_api_key_out_of_what_is_stored():
    config = TrainJobConfig(api_key="sekret")
    assert "api_key" not in config.to_dict() and "sekret" not in repr(config)
    assert TrainJobConfig.from_dict(config.to_dict()).api_key is None
    assert dataclasses.replace(config, steps=2).api_key == "sekret"


# ---- the launcher -------------------------------------------------------------------------------


def test_the_launcher_hands_the_key_to_vllm_and_masks_it(capsys, monkeypatch):
    monkeypatch.delenv("TUTOR_MODEL_API_KEY", raising=False)
    env = launcher.server_env(cpu=True, base={}, api_key="sekret")
    assert env["VLLM_API_KEY"] == "sekret"  # vLLM reads it as its --api-key
    server = launcher.VLLMServer("m", cpu=True, api_key="sekret", env={})
    assert server.api_key == "sekret" and "sekret" not in " ".join(server.command)
    assert launcher.main(["--print-command", "--api-key", "sekret"]) == 0
    printed = capsys.readouterr().out
    assert "VLLM_API_KEY=***" in printed and "sekret" not in printed
    monkeypatch.setenv("TUTOR_MODEL_API_KEY", "not-needed")
    assert launcher.default_api_key() is None
    monkeypatch.setenv("TUTOR_MODEL_API_KEY", "k2")
    assert launcher.default_api_key() == "k2"


def test_launcher_readiness_checks_send_the_key():
    from tests.support.scripted_model_server import ScriptedModelServer

    with ScriptedModelServer(served_models={"m"}, api_key="sekret") as server:
        assert launcher.http_status(f"{server.base_url}/models") == 401
        assert launcher.http_status(f"{server.base_url}/models", api_key="sekret") == 200
