"""The retraining tasks when the model server fails: an evaluation or a job that lost its
server retries (Celery, with a growing countdown, a bounded number of times) and then fails
with the reason on the page, never passing as a success; the API key reaches every request;
adapters outside the adapter directory or broken ones are never loaded or promoted.

The evaluation is the real harness (training.evaluation) against the scripted server; the
trainer is a stand-in defined here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from inference.adapter_errors import AdapterPathError
from tests.support.adapters import write_adapter
from tests.support.mathdial import write_mathdial
from tests.support.retraining import GOOD, finished_eval
from tests.support.scripted_model_server import ScriptedModelServer
from training.jobs import TrainJobConfig
from training.rollout import InfrastructureFailure
from tutor.classes.models import Classroom
from tutor.dialogues.models import TutoringSession
from tutor.retraining import runner, services
from tutor.retraining.models import EvalRun, ModelVersion, Promotion, TrainingJob
from tutor.retraining.tasks import run_evaluation_task, run_training_job_task

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CAUSE = "cannot reach the model server"


@pytest.fixture(autouse=True)
def retraining_settings(settings, tmp_path):
    settings.TUTOR_ADAPTER_DIR = tmp_path / "adapters"
    settings.TUTOR_TRAINING_DIR = tmp_path / "training"
    settings.TUTOR_JOB_HEARTBEAT_SECONDS = 0.2
    settings.TUTOR_INFRA_RETRIES = 2
    settings.TUTOR_INFRA_RETRY_SECONDS = 0  # eager retries would not wait anyway
    settings.TUTOR_MODEL_API_KEY = "not-needed"
    return settings


@pytest.fixture
def admin(make_user):
    return make_user("root", role="admin")


@pytest.fixture
def version(settings) -> ModelVersion:
    folder = write_adapter(Path(settings.TUTOR_ADAPTER_DIR) / "tutor-v1")
    return ModelVersion.objects.create(name="tutor-v1", base_model="default", adapter_path=folder)


@pytest.fixture
def job(admin, make_user, problem) -> TrainingJob:
    TutoringSession.objects.create(student=make_user("stu"), problem=problem)
    config = TrainJobConfig(steps=2, problems_per_step=1)
    return TrainingJob.objects.create(
        created_by=admin, base_version=services.base_version(), config=config.to_dict()
    )


@pytest.fixture
def eval_run(version, job, tmp_path) -> EvalRun:
    """The evaluation that follows ``job``: three interactive items, one request each when
    the server is down (the student's solutions before any tutoring)."""
    mathdial = write_mathdial(tmp_path)
    config = {
        "tasks": ["interactive"],
        "limit": 3,
        "max_turns": 1,
        "k": 1,
        "concurrency": 1,
        "bootstrap_samples": 20,
        "mathdial_path": str(mathdial),
    }
    return EvalRun.objects.create(version=version, config=config, training_job=job)


@pytest.fixture
def model_server(settings):
    with ScriptedModelServer(served_models={settings.TUTOR_MODEL_NAME}) as server:
        settings.TUTOR_TRAINING_BASE_URL = server.base_url
        yield server


def page(admin, name: str, pk: int) -> str:
    client = Client()
    client.force_login(admin)
    return client.get(reverse(f"retraining:{name}", args=[pk])).content.decode()


# ---- evaluations ------------------------------------------------------------------------------


def test_an_evaluation_whose_server_went_away_fails_and_so_does_its_job(
    eval_run, model_server, admin
):
    model_server.outage = "abort"  # the adapter loads, then every chat request is dropped
    assert runner.run_eval(eval_run.pk) == runner.FAILED
    eval_run.refresh_from_db()
    assert eval_run.status == "failed" and eval_run.headline is None
    assert "3 of 3 interactive items failed for infrastructure reasons" in eval_run.error
    assert CAUSE in eval_run.error
    assert eval_run.report["tasks"]["interactive"]["infra_failed"] == 3  # kept to diagnose
    job = eval_run.training_job
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("the evaluation of tutor-v1 after training failed: ")
    assert "3 of 3 interactive items" in job.log
    # Both pages say why.
    assert "3 of 3 interactive items failed" in page(admin, "version_detail", eval_run.version_id)
    assert "after training failed" in page(admin, "job_detail", job.pk)
    # The gate never sees it: the version has no finished evaluation.
    assert services.latest_eval(eval_run.version) is None


def test_a_transient_outage_is_retried_by_the_task_and_the_run_then_succeeds(
    eval_run, model_server
):
    model_server.outage, model_server.outage_count = "abort", 3  # the first attempt only
    result = run_evaluation_task.apply(args=(eval_run.pk,))
    assert result.get() == runner.SUCCEEDED
    eval_run.refresh_from_db()
    assert eval_run.status == "succeeded" and eval_run.error == ""
    assert eval_run.report["tasks"]["interactive"]["n"] == 3
    assert model_server.failed_requests == 3
    eval_run.training_job.refresh_from_db()
    assert "retrying in 0 s (retry 1 of 2)" in eval_run.training_job.log
    assert eval_run.training_job.status != "failed"


def test_retries_are_bounded_then_the_run_fails(eval_run, model_server):
    model_server.outage = 503
    assert run_evaluation_task.apply(args=(eval_run.pk,)).get() == runner.FAILED
    eval_run.refresh_from_db()
    assert eval_run.status == "failed"
    assert "first cause: solutions before: ModelUnavailable" in eval_run.error
    assert eval_run.error.endswith("(gave up after 2 retries)")
    assert model_server.chat_requests == 9  # three attempts of three items
    assert len(model_server.loads) == 1  # loaded once; later attempts find it served


def test_a_server_down_before_the_run_is_retried_then_fails(eval_run, settings):
    settings.TUTOR_TRAINING_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens
    assert runner.run_eval(eval_run.pk, attempt=0, retries=1) == runner.RETRY
    eval_run.refresh_from_db()
    assert eval_run.status == "queued"
    assert CAUSE in eval_run.error and "retrying in" in eval_run.error
    assert runner.run_eval(eval_run.pk, attempt=1, retries=1) == runner.FAILED
    eval_run.refresh_from_db()
    assert eval_run.status == "failed" and CAUSE in eval_run.error


def test_the_api_key_reaches_adapter_loading_and_every_evaluation_request(eval_run, settings):
    settings.TUTOR_MODEL_API_KEY = "sekret"
    with ScriptedModelServer(served_models={settings.TUTOR_MODEL_NAME}, api_key="sekret") as s:
        settings.TUTOR_TRAINING_BASE_URL = s.base_url
        assert runner.run_eval(eval_run.pk) == runner.SUCCEEDED
        assert s.unauthorized == 0 and set(s.authorizations) == {"Bearer sekret"}
        assert len(s.requests) > 3 and s.loads[0]["lora_name"] == "tutor-v1"
    eval_run.refresh_from_db()
    assert "sekret" not in json.dumps(eval_run.config) + json.dumps(eval_run.report)


def test_a_wrong_api_key_fails_at_once_without_retrying(eval_run, settings):
    settings.TUTOR_MODEL_API_KEY = "wrong"
    with ScriptedModelServer(served_models={settings.TUTOR_MODEL_NAME}, api_key="sekret") as s:
        settings.TUTOR_TRAINING_BASE_URL = s.base_url
        assert run_evaluation_task.apply(args=(eval_run.pk,)).get() == runner.FAILED
        assert s.unauthorized == 1  # one listing, no retry
    eval_run.refresh_from_db()
    assert "refused the API key" in eval_run.error


def test_an_adapter_outside_the_directory_is_never_loaded(eval_run, model_server, tmp_path):
    outside = write_adapter(tmp_path / "elsewhere")
    ModelVersion.objects.filter(pk=eval_run.version_id).update(adapter_path=str(outside))
    assert run_evaluation_task.apply(args=(eval_run.pk,)).get() == runner.FAILED
    eval_run.refresh_from_db()
    assert "outside the adapter directory" in eval_run.error
    assert model_server.loads == [] and model_server.requests == []


# ---- training jobs ----------------------------------------------------------------------------

API_KEYS: list[str | None] = []


def unreachable_trainer(config, dataset_path, workdir, **_) -> None:
    """A trainer whose rollouts the model server failed every time."""
    API_KEYS.append(config.api_key)
    raise InfrastructureFailure(
        "every rollout failed for infrastructure reasons (4 of 4 in step 1); first cause: "
        "ModelUnavailable: cannot reach the model server at http://127.0.0.1:9/v1",
        failed=4,
        total=4,
        first_cause="ModelUnavailable: cannot reach the model server",
        transient=True,
    )


def test_a_job_whose_rollouts_failed_is_retried_then_fails_with_the_reason(job, settings, admin):
    settings.TUTOR_TRAINING_FUNCTION = f"{__name__}.unreachable_trainer"
    settings.TUTOR_MODEL_API_KEY = "sekret"
    API_KEYS.clear()
    assert runner.run_training(job.pk, attempt=0, retries=1) == runner.RETRY
    job.refresh_from_db()
    assert job.status == "queued" and "retrying in 0 s (retry 1 of 1)" in job.error
    assert runner.run_training(job.pk, attempt=1, retries=1) == runner.FAILED
    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 2
    assert job.error.startswith("every rollout failed for infrastructure reasons")
    assert job.error.endswith("(gave up after 1 retries)")
    assert "retrying in" in job.log
    assert API_KEYS == ["sekret", "sekret"] and "api_key" not in job.config
    assert "every rollout failed" in page(admin, "job_detail", job.pk)


def test_the_training_task_retries_a_bounded_number_of_times(job, settings):
    settings.TUTOR_TRAINING_FUNCTION = f"{__name__}.unreachable_trainer"
    API_KEYS.clear()
    assert run_training_job_task.apply(args=(job.pk,)).get() == runner.FAILED
    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 3 and len(API_KEYS) == 3


# ---- registering and promoting adapters -------------------------------------------------------


@pytest.fixture
def serving(admin, teacher, version):
    """tutor-v1 serves class 7A (and, evaluated, globally)."""
    classroom = Classroom.objects.create(name="7A", teacher=teacher)
    finished_eval(version, GOOD)
    services.promote(version, admin)
    services.promote(version, admin, [classroom])
    return classroom


def candidate(name: str, folder) -> ModelVersion:
    version = ModelVersion.objects.create(name=name, base_model="default", adapter_path=folder)
    finished_eval(version, GOOD)
    return version


def assert_refused(version, admin, classroom, message: str) -> None:
    before = Promotion.objects.count()
    for scope in (None, [classroom]):
        with pytest.raises(services.PromotionRefused, match=message):
            services.promote(version, admin, scope, override=True)
    assert Promotion.objects.count() == before
    assert services.serving_version(classroom).name == "tutor-v1"
    assert services.serving_version(None).name == "tutor-v1"


def test_adapters_outside_the_directory_are_refused_even_with_an_override(
    serving, admin, settings, tmp_path
):
    root = Path(settings.TUTOR_ADAPTER_DIR)
    outside = write_adapter(tmp_path / "elsewhere")
    (root / "tutor-v3").symlink_to(outside)
    for name, path in (("tutor-v2", "../../etc"), ("tutor-v3", root / "tutor-v3")):
        assert_refused(candidate(name, path), admin, serving, "outside the adapter directory")
    assert_refused(candidate("tutor-v4", str(outside)), admin, serving, "outside")


def test_broken_adapters_are_refused_before_they_can_serve(serving, admin, settings):
    root = Path(settings.TUTOR_ADAPTER_DIR)
    truncated = write_adapter(root / "tutor-v2")
    weights = truncated / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    assert_refused(candidate("tutor-v2", truncated), admin, serving, "truncated")
    wide = write_adapter(root / "tutor-v3", rank=128)
    assert_refused(candidate("tutor-v3", wide), admin, serving, "above the model server's max")
    settings.TUTOR_MAX_LORA_RANK = 256  # a server started with --max-lora-rank 256 takes it
    services.promote(ModelVersion.objects.get(name="tutor-v3"), admin, [serving])
    assert services.serving_version(serving).name == "tutor-v3"
    missing = candidate("tutor-v4", root / "tutor-v4")
    with pytest.raises(services.PromotionRefused, match="does not exist"):
        services.promote(missing, admin, override=True)


def test_an_adapter_the_model_server_refuses_is_not_promoted(serving, admin, settings, client):
    """Files that pass the checks, but vLLM reads them and refuses (here a server whose
    maximum rank is below what the platform was told): the promotion is refused with vLLM's
    reason, and the class stays on its version. A server that is down does not stop it."""
    settings.TUTOR_MAX_LORA_RANK = 256
    wide = candidate(
        "tutor-v2", write_adapter(Path(settings.TUTOR_ADAPTER_DIR) / "tutor-v2", rank=64)
    )
    client.force_login(admin)
    url = reverse("retraining:version_promote", args=[wide.pk])
    with ScriptedModelServer(served_models={"base"}) as server:
        settings.TUTOR_MODEL_BASE_URL = server.base_url
        server.load_error = (400, {"message": "LoRA rank 64 is greater than max_lora_rank 16."})
        page = client.post(url, {"scope": "classes", "classrooms": [serving.pk]}, follow=True)
        assert "tutor-v2 was not promoted" in page.text
        assert "greater than max_lora_rank 16" in page.text
        assert services.serving_version(serving).name == "tutor-v1"
        assert not Promotion.objects.filter(version=wide).exists()
        assert len(server.loads) == 1
    # Nothing listens: promoted, with a note that the chat loads it on first use.
    settings.TUTOR_MODEL_BASE_URL = "http://127.0.0.1:9/v1"
    page = client.post(url, {"scope": "classes", "classrooms": [serving.pk]}, follow=True)
    assert "tutor-v2 now serves new sessions 7A" in page.text
    assert "the chat retries on use" in page.text
    assert services.serving_version(serving).name == "tutor-v2"


def test_the_adapter_path_is_checked_where_versions_are_registered(settings):
    root = Path(settings.TUTOR_ADAPTER_DIR)
    assert services.check_adapter_path("tutor-v5") == str(root / "tutor-v5")
    with pytest.raises(AdapterPathError):
        services.check_adapter_path("../tutor-v5")
    version = ModelVersion(name="tutor-v9", base_model="default", adapter_path="../../etc")
    with pytest.raises(ValidationError, match="outside the adapter directory"):
        version.full_clean()  # what the Django admin's form runs
    ModelVersion(name="tutor-v9", base_model="default", adapter_path=str(root / "v")).full_clean()


def test_loading_a_version_sends_the_key_and_only_paths_inside(version, settings, tmp_path):
    settings.TUTOR_MODEL_API_KEY = "sekret"
    with ScriptedModelServer(served_models={"base"}, api_key="sekret") as server:
        assert services.load_version_adapter(version, server.base_url)
        assert server.unauthorized == 0
        version.adapter_path = str(write_adapter(tmp_path / "elsewhere"))
        with pytest.raises(AdapterPathError):
            services.load_version_adapter(version, server.base_url)
        assert len(server.loads) == 1
