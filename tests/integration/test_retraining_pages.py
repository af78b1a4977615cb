"""The retraining pages: admins only; the job form; cancel; promote (with the gate), roll
back, compare, evaluate; the JSON the charts draw from."""

import pytest
from django.urls import reverse

from tests.support.retraining import GOOD, LEAKY, finished_eval, make_version
from tutor.classes.models import Classroom
from tutor.dialogues.models import TutoringSession
from tutor.retraining import jobs, services
from tutor.retraining.models import EvalRun, Promotion, TrainingJob

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def admin(make_user):
    return make_user("root", role="admin")


@pytest.fixture(autouse=True)
def no_publishing(monkeypatch, settings):
    """Tasks are not published from these tests (test_retraining_tasks covers them), and no
    model server is asked to load anything."""
    published = []
    short = {jobs.TRAINING_TASK: "train", jobs.EVALUATION_TASK: "eval"}

    class Result:
        id = "task-id"

    def publish(name, *args):
        published.append((short[name], args))
        return Result()

    monkeypatch.setattr(jobs, "publish_task", publish)
    settings.TUTOR_MODEL_BASE_URL = "http://127.0.0.1:9/v1"
    return published


@pytest.fixture
def world(admin, teacher, make_user, problem):
    classroom = Classroom.objects.create(name="7A", teacher=teacher)
    TutoringSession.objects.create(student=make_user("stu"), problem=problem, classroom=classroom)
    base = services.base_version()
    job = TrainingJob.objects.create(
        created_by=admin,
        base_version=base,
        config={"steps": 3},
        total_steps=3,
        status="running",
        step=1,
        history=[{"step": 1, "reward_mean": 0.25, "solve_rate": 0.5, "leak_rate": 0.1, "kl": 0}],
        log="12:00:00 started\n12:00:01 <script>alert(1)</script>\n",
    )
    version = make_version("tutor-v1", training_job=job)
    run = finished_eval(version, GOOD)
    return {"classroom": classroom, "job": job, "version": version, "run": run, "base": base}


def pages(world):
    job, version, run = world["job"], world["version"], world["run"]
    return [
        reverse("retraining:jobs"),
        reverse("retraining:job_new"),
        reverse("retraining:job_detail", args=[job.pk]),
        reverse("retraining:job_progress", args=[job.pk]),
        reverse("retraining:versions"),
        reverse("retraining:versions_json"),
        reverse("retraining:version_detail", args=[version.pk]),
        reverse("retraining:compare") + f"?a={world['base'].pk}&b={version.pk}",
        reverse("retraining:eval_progress", args=[run.pk]),
    ]


def actions(world):
    job, version = world["job"], world["version"]
    return [
        (reverse("retraining:job_new"), {}),
        (reverse("retraining:job_cancel", args=[job.pk]), {}),
        (reverse("retraining:job_resume", args=[job.pk]), {}),
        (reverse("retraining:version_evaluate", args=[version.pk]), {"limit": 2}),
        (reverse("retraining:version_promote", args=[version.pk]), {"scope": "global"}),
        (reverse("retraining:rollback"), {"scope": "global"}),
    ]


@pytest.mark.parametrize("role", ["student", "teacher"])
def test_students_and_teachers_get_403_everywhere(client, make_user, world, role):
    client.force_login(make_user(f"someone-{role}", role=role))
    for url in pages(world):
        assert client.get(url).status_code == 403, url
    for url, data in actions(world):
        assert client.post(url, data).status_code == 403, url
    job = TrainingJob.objects.get(pk=world["job"].pk)
    assert not job.cancel_requested
    assert not Promotion.objects.exists() and EvalRun.objects.count() == 1


def test_anonymous_visitors_are_sent_to_log_in(client, world):
    for url in pages(world):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_admins_and_superusers_see_every_page(client, admin, django_user_model, world):
    superuser = django_user_model.objects.create_superuser("boss", password="x", role="student")
    for user in (admin, superuser):
        client.force_login(user)
        for url in pages(world):
            assert client.get(url).status_code == 200, url


def test_nav_links_only_for_admins(client, admin, teacher):
    client.force_login(teacher)
    assert 'id="nav-retraining"' not in client.get("/").text
    client.force_login(admin)
    home = client.get("/").text
    assert 'id="nav-retraining"' in home and reverse("retraining:versions") in home


def test_job_detail_and_progress_json(client, admin, world):
    client.force_login(admin)
    job = world["job"]
    page = client.get(reverse("retraining:job_detail", args=[job.pk])).text
    assert 'id="job-progress"' in page and 'value="33"' in page
    assert 'id="chart-leak_rate"' in page and "tutor/retraining.js" in page
    assert "<script>alert(1)</script>" not in page  # the log is text, never HTML
    assert 'id="cancel-form"' in page
    data = client.get(reverse("retraining:job_progress", args=[job.pk])).json()
    assert (data["status"], data["step"], data["total_steps"], data["percent"]) == (
        "running",
        1,
        3,
        33,
    )
    assert data["history"][0]["reward_mean"] == 0.25
    assert data["chart_metrics"] == ["reward_mean", "solve_rate", "leak_rate", "kl"]
    assert data["log"].endswith("<script>alert(1)</script>\n")
    assert data["stale"] is True  # no heartbeat yet


def test_the_reward_model_stage_shows_its_progress_then_its_accuracy(client, admin, world):
    from training.jobs import Progress

    job = world["job"]
    job.config = {"steps": 3, "retrain_reward_model": True, "mu": 0.5}
    job.save(update_fields=["config"])
    client.force_login(admin)
    page = client.get(reverse("retraining:job_detail", args=[job.pk])).text
    assert "retrained from the window's ratings before the first step" in page

    def report(**stage_report):
        fields = jobs.apply_progress(
            job, Progress(step=0, total_steps=3, stage="reward_model", stage_report=stage_report)
        )
        job.save(update_fields=sorted(fields))
        return fields

    # A stage report leaves the steps, metrics and curves alone.
    assert report(status="running", done=4, total=10) == {"stages"}
    job.refresh_from_db()
    assert (job.step, job.history[0]["reward_mean"]) == (1, 0.25)
    data = client.get(reverse("retraining:job_progress", args=[job.pk])).json()
    assert data["stages"]["reward_model"] == {"status": "running", "done": 4, "total": 10}
    page = client.get(reverse("retraining:job_detail", args=[job.pk])).text
    assert "retraining: step 4 of 10" in page

    report(
        status="trained",
        done=10,
        total=10,
        accuracy_before=0.5,
        accuracy_after=0.75,
        held_out_pairs=8,
        train_pairs=30,
        reason="held-out pairwise accuracy 0.500 → 0.750",
    )
    page = client.get(reverse("retraining:job_detail", args=[job.pk])).text
    assert "held-out pairwise accuracy 0.500 → <strong>0.750</strong> on 8 pairs" in page


def test_job_form_validation(
    client, admin, world, no_publishing, django_capture_on_commit_callbacks
):
    client.force_login(admin)
    url = reverse("retraining:job_new")
    good = {
        "base_version": world["base"].pk,
        "classrooms": [world["classroom"].pk],
        "lambda_": "1.5",
        "steps": "4",
        "group_size": "4",
        "learning_rate": "1e-5",
        "seed": "3",
        "mu": "0",
        "beta": "0.04",
        "variant": "hard",
        "max_turns": "2",
        "k": "2",
        "problems_per_step": "2",
    }
    bad_cases = [
        ({"steps": "0"}, "steps"),
        ({"group_size": "1"}, "group_size"),
        ({"lambda_": "-1"}, "lambda_"),
        ({"learning_rate": "0.5"}, "learning_rate"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"base_version": "999999"}, "base_version"),
        ({"date_from": "2030-02-01", "date_to": "2030-01-01"}, "date_to"),
        ({"band_low": "0.7", "band_high": "0.2"}, "band_high"),
        ({"band_high": "1.5"}, "band_high"),
        ({"retrain_reward_model": "on", "mu": "0"}, "retrain_reward_model"),
    ]
    for change, field in bad_cases:
        response = client.post(url, {**good, **change})
        assert response.status_code == 200, change
        assert f'data-field="{field}"' in response.text, change
    # A window with no logged session is refused unless the problem bank tops it up.
    empty = {**good, "date_from": "2030-01-01"}
    response = client.post(url, empty)
    assert 'id="form-error"' in response.text and "nothing to train on" in response.text
    assert not TrainingJob.objects.exclude(pk=world["job"].pk).exists()
    assert no_publishing == []

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {**empty, "include_problem_bank": "on"})
    assert response.status_code == 302
    job = TrainingJob.objects.exclude(pk=world["job"].pk).get()
    assert response["Location"] == reverse("retraining:job_detail", args=[job.pk])
    assert job.include_problem_bank and job.status == "queued"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, good)
    job = TrainingJob.objects.latest("id")
    assert response["Location"] == reverse("retraining:job_detail", args=[job.pk])
    assert list(job.classrooms.all()) == [world["classroom"]]
    assert job.created_by == admin and job.total_steps == 4
    config = job.config
    assert (config["lambda_"], config["steps"], config["group_size"], config["seed"]) == (
        1.5,
        4,
        4,
        3,
    )
    assert config["learning_rate"] == 1e-5 and config["init_adapter"] is None
    # The band and calculator defaults when the advanced fields are left empty.
    assert (config["band_low"], config["band_high"], config["calculator"]) == (0.01, 0.6, False)
    assert config["retrain_reward_model"] is False

    tuned = {
        **good,
        "mu": "0.5",
        "retrain_reward_model": "on",
        "band_low": "0.1",
        "band_high": "0.5",
        "calculator": "on",
    }
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, tuned)
    config = TrainingJob.objects.latest("id").config
    assert (config["band_low"], config["band_high"], config["calculator"]) == (0.1, 0.5, True)
    assert config["retrain_reward_model"] is True and config["mu"] == 0.5
    assert [p[0] for p in no_publishing] == ["train", "train", "train"]
    assert job.celery_task_id == "task-id"


def test_cancel_button(client, admin, world):
    client.force_login(admin)
    job = world["job"]
    response = client.post(reverse("retraining:job_cancel", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    # No heartbeat: the worker is gone, so the job ends at once.
    assert job.cancel_requested and job.status == "cancelled"


def test_cancel_needs_post_and_csrf(admin, world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    url = reverse("retraining:job_cancel", args=[world["job"].pk])
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403
    assert not TrainingJob.objects.get(pk=world["job"].pk).cancel_requested


def test_promote_refused_by_the_gate_then_overridden_then_rolled_back(client, admin, world):
    client.force_login(admin)
    first, classroom = world["version"], world["classroom"]
    url = reverse("retraining:version_promote", args=[first.pk])
    response = client.post(url, {"scope": "global"}, follow=True)
    assert "now serves new sessions globally" in response.text
    assert services.serving_version(None) == first

    leaky = make_version("tutor-v2")
    finished_eval(leaky, LEAKY)
    detail = client.get(reverse("retraining:version_detail", args=[leaky.pk])).text
    assert 'id="promotion-gate" class="gate gate--failed"' in detail
    assert "leak_rate is worse beyond the confidence intervals" in detail
    url = reverse("retraining:version_promote", args=[leaky.pk])
    response = client.post(url, {"scope": "global"}, follow=True)
    assert "was not promoted" in response.text and "leak_rate is worse" in response.text
    assert services.serving_version(None) == first
    response = client.post(url, {"scope": "classes"}, follow=True)
    assert "Tick at least one class" in response.text

    response = client.post(
        url, {"scope": "classes", "classrooms": [classroom.pk], "override": "on"}, follow=True
    )
    assert "over a failed gate" in response.text
    promotion = Promotion.objects.get(active=True, classroom=classroom)
    assert promotion.version == leaky and promotion.override and promotion.promoted_by == admin
    assert services.serving_version(classroom) == leaky

    versions = client.get(reverse("retraining:versions")).text
    assert f'data-scope="{classroom.pk}"' in versions
    response = client.post(
        reverse("retraining:rollback"), {"scope": str(classroom.pk)}, follow=True
    )
    assert "Rolled back 7A" in response.text
    assert services.serving_version(classroom) == first
    response = client.post(reverse("retraining:rollback"), {"scope": "global"}, follow=True)
    assert services.serving_version(None) == world["base"]


def test_evaluate_button_queues_an_evaluation(
    client, admin, world, no_publishing, django_capture_on_commit_callbacks
):
    client.force_login(admin)
    version = world["version"]
    url = reverse("retraining:version_evaluate", args=[version.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"limit": "5", "max_turns": "2", "k": "3", "seed": "9"})
    assert response.status_code == 302
    run = EvalRun.objects.filter(version=version, status="queued").get()
    assert (run.config["limit"], run.config["k"], run.config["seed"]) == (5, 3, 9)
    assert run.created_by == admin
    assert no_publishing == [("eval", (run.pk,))]
    client.post(url, {"limit": "0", "max_turns": "2", "k": "3", "seed": "9"})
    assert EvalRun.objects.filter(version=version).count() == 2  # the bad one was refused
    progress = client.get(reverse("retraining:eval_progress", args=[run.pk])).json()
    assert (progress["status"], progress["finished"]) == ("queued", False)


def test_versions_table_chart_data_and_compare(client, admin, world):
    client.force_login(admin)
    other = make_version("tutor-v2")
    finished_eval(other, LEAKY)
    data = client.get(reverse("retraining:versions_json")).json()
    rows = {row["name"]: row for row in data["versions"]}
    assert set(rows) == {world["base"].name, "tutor-v1", "tutor-v2"}
    assert rows["tutor-v1"]["headline"]["solve_gain"] == {
        "value": 0.3,
        "ci_low": 0.2,
        "ci_high": 0.4,
        "n": 20,
    }
    assert rows["tutor-v2"]["headline"]["leak_rate"]["value"] == 0.6
    assert rows[world["base"].name]["serving"] == ["globally (base)"]
    assert rows[world["base"].name]["headline"]["leak_rate"] is None

    page = client.get(reverse("retraining:versions")).text
    assert 'id="tradeoff-chart"' in page and "0.300 [0.200, 0.400] n=20" in page

    compare = client.get(
        reverse("retraining:compare") + f"?a={world['version'].pk}&b={other.pk}"
    ).text
    assert "0.600 [0.500, 0.700] n=20" in compare and "0.100 [0.050, 0.150] n=20" in compare
    assert 'id="compare-gate" class="gate gate--failed"' in compare
    assert client.get(reverse("retraining:compare") + "?a=x").status_code == 302


def test_long_histories_are_thinned_for_the_charts(client, admin, world):
    from tutor.retraining.payloads import thin

    history = [{"step": s, "kl": s} for s in range(1, 5001)]
    kept = thin(history, 1000)
    assert len(kept) <= 1001 and kept[0]["step"] == 1 and kept[-1]["step"] == 5000
    assert thin(history[:10], 1000) == history[:10]
    TrainingJob.objects.filter(pk=world["job"].pk).update(history=history)
    client.force_login(admin)
    data = client.get(reverse("retraining:job_progress", args=[world["job"].pk])).json()
    assert len(data["history"]) <= 1001 and data["history"][-1]["step"] == 5000
