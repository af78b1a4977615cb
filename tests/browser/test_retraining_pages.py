"""The retraining pages in headless Chromium: an admin follows a running job live (progress bar,
curves, log) and cancels it; the versions page shows the metrics table, the gate verdicts and the
solve gain / leak rate chart, and a version whose gate passed is promoted from its page;
teachers get 403; a job log or version name holding markup never runs as script."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from tests.support.retraining import GOOD, LEAKY, finished_eval, make_version, report
from tutor.retraining import services
from tutor.retraining.models import EvalRun, ModelVersion, Promotion, TrainingJob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse"
METRICS = ("reward_mean", "solve_rate", "leak_rate", "kl")
GATE_CELL = 9  # after the headline metrics (visible_leak_rate included)

# Pixels on a canvas that are not fully transparent, and the canvas's backing size.
CANVAS = """(id) => {
  const canvas = document.getElementById(id);
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) drawn += 1;
  return { width: canvas.width, height: canvas.height, drawn };
}"""

CURVES = """() => Object.fromEntries(Object.entries(window.tutorRetraining.charts).map(
  ([name, chart]) => [name, chart.data.datasets[0].data.map((p) => [p.x, p.y])]))"""


def log_in(page, server, user):
    page.goto(f"{server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(f"{server.url}/")


def entry(step: int) -> dict:
    return {
        "step": step,
        "reward_mean": round(0.1 * step, 2),
        "solve_rate": round(0.05 * step, 2),
        "leak_rate": round(0.5 - 0.04 * step, 2),
        "kl": round(0.01 * step, 2),
    }


def running_job(admin, *, step: int, total: int, log: str) -> TrainingJob:
    history = [entry(s) for s in range(1, step + 1)]
    now = timezone.now()
    return TrainingJob.objects.create(
        created_by=admin,
        base_version=services.base_version(),
        config={"steps": total, "lambda_": 1.0},
        total_steps=total,
        status=TrainingJob.Status.RUNNING,
        step=step,
        history=history,
        metrics=history[-1],
        log=log,
        attempts=1,
        started_at=now,
        heartbeat_at=now,  # a live worker: cancelling waits for its next step
    )


def evaluated(version: ModelVersion, rep: dict, baseline: EvalRun | None) -> EvalRun:
    """A finished evaluation with the gate verdict the runner stores alongside it."""
    run = finished_eval(version, rep)
    run.gate = services.gate_verdict(run, baseline)
    run.baseline = baseline
    run.save(update_fields=["gate", "baseline"])
    return run


def test_admin_follows_a_running_job_live_and_cancels_it(
    page, asgi_server_without_model, make_user
):
    server = asgi_server_without_model
    admin = make_user("root", role="admin", password=PASSWORD)
    job = running_job(
        admin, step=3, total=10, log="12:00:00 started\n12:00:05 step 3: reward 0.30\n"
    )
    log_in(page, server, admin)
    page.goto(f"{server.url}{reverse('retraining:job_detail', args=[job.pk])}")

    expect(page.locator("h1")).to_have_text(f"Training job #{job.pk}")
    expect(page.locator("#job-status")).to_have_text("Running")
    expect(page.locator("#job-step")).to_have_text("step 3 of 10 (30%)")
    expect(page.locator("#job-progress")).to_have_js_property("value", 30)
    expect(page.locator("#job-log")).to_have_text(
        "12:00:00 started\n12:00:05 step 3: reward 0.30\n"
    )

    # Four Chart.js curves with the job's history, drawn on canvases of non-zero size.
    page.wait_for_function("() => window.tutorRetraining && window.tutorRetraining.charts.kl")
    curves = page.evaluate(CURVES)
    assert sorted(curves) == sorted(METRICS)
    assert curves["reward_mean"] == [[1, 0.1], [2, 0.2], [3, 0.3]]
    assert curves["leak_rate"] == [[1, 0.46], [2, 0.42], [3, 0.38]]
    for name in METRICS:
        canvas = page.evaluate(CANVAS, f"chart-{name}")
        assert canvas["width"] > 100 and canvas["height"] > 100, (name, canvas)
        assert canvas["drawn"] > 300, (name, canvas)

    # The worker reports step 7: the page follows by polling, without reloading.
    page.evaluate("() => { window.notReloaded = true; }")
    TrainingJob.objects.filter(pk=job.pk).update(
        step=7,
        history=[entry(s) for s in range(1, 8)],
        metrics=entry(7),
        heartbeat_at=timezone.now(),
        checkpoint_path="/work/ckpt/step-7",
        log=job.log + "12:00:30 step 7: reward 0.70\n",
    )
    expect(page.locator("#job-step")).to_have_text("step 7 of 10 (70%)", timeout=8000)
    expect(page.locator("#job-progress")).to_have_js_property("value", 70)
    expect(page.locator("#job-log")).to_contain_text("12:00:30 step 7: reward 0.70")
    expect(page.locator("#job-checkpoint")).to_have_text("/work/ckpt/step-7")
    assert page.evaluate("() => window.notReloaded") is True
    curves = page.evaluate(CURVES)
    assert [x for x, _ in curves["solve_rate"]] == [1, 2, 3, 4, 5, 6, 7]
    assert curves["kl"][-1] == [7, 0.07]

    # Cancel: accept a confirmation if the page asks for one; the row records the request
    # and, the worker being alive, the job keeps running until its next step.
    dialogs: list[str] = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    cancel = page.locator("#cancel-form button")
    expect(cancel).to_be_enabled()
    cancel.click()
    page.wait_for_url(f"{server.url}{reverse('retraining:job_detail', args=[job.pk])}")
    expect(page.locator("body")).to_contain_text(f"Job {job.pk} will stop after its current step.")
    job.refresh_from_db()
    assert job.cancel_requested is True
    assert job.status == TrainingJob.Status.RUNNING
    expect(page.locator("#cancel-form button")).to_be_disabled()
    expect(page.locator("#job-note")).to_have_text("Stopping after the current step…")

    # The worker stops: the page shows it ended and stops polling.
    TrainingJob.objects.filter(pk=job.pk).update(
        status=TrainingJob.Status.CANCELLED, finished_at=timezone.now()
    )
    expect(page.locator("#job")).to_have_attribute("data-state", "cancelled", timeout=8000)
    expect(page.locator("#job-status")).to_have_text("Cancelled")
    assert page.js_errors == []


def test_versions_table_chart_gate_and_promotion(page, asgi_server_without_model, make_user):
    server = asgi_server_without_model
    admin = make_user("root", role="admin", password=PASSWORD)
    base = services.base_version()
    base_run = evaluated(base, report(leak=(0.20, 0.15, 0.25), gain=(0.25, 0.15, 0.35)), None)
    good = make_version("tutor-v1", parent=base)
    evaluated(good, GOOD, base_run)
    leaky = make_version("tutor-v2", parent=base)
    evaluated(leaky, LEAKY, base_run)
    make_version("tutor-v3", parent=base)  # not evaluated: no point, no gate

    log_in(page, server, admin)
    page.goto(f"{server.url}{reverse('retraining:versions')}")
    expect(page.locator("#versions")).to_have_attribute("data-state", "ready")
    expect(page.locator("#global-version")).to_have_text(base.name)

    table = page.locator("#version-table tbody tr")
    expect(table).to_have_count(4)
    v1 = page.locator('#version-table tr[data-version="tutor-v1"]')
    expect(v1.locator('[data-metric="solve_gain"]')).to_have_text("0.300 [0.200, 0.400] n=20")
    expect(v1.locator('[data-metric="leak_rate"]')).to_have_text("0.100 [0.050, 0.150] n=20")
    v2 = page.locator('#version-table tr[data-version="tutor-v2"]')
    expect(v2.locator('[data-metric="leak_rate"]')).to_have_text("0.600 [0.500, 0.700] n=20")
    v3 = page.locator('#version-table tr[data-version="tutor-v3"]')
    expect(v3.locator('[data-metric="leak_rate"]')).to_have_text("–")
    # The gate verdicts stored with each evaluation (cells: status, serving, λ, 5 metrics, gate).
    expect(v1.locator("td").nth(GATE_CELL)).to_have_text("passed")
    expect(v2.locator("td").nth(GATE_CELL)).to_have_text("failed")
    expect(v3.locator("td").nth(GATE_CELL)).to_have_text("–")
    expect(v1.locator(".badge").first).to_have_text("candidate")

    # The scatter: one point per evaluated version at (leak rate, solve gain), with its CIs.
    chart = page.evaluate(
        """() => {
          const chart = window.tutorRetraining.charts.tradeoff;
          return {
            type: chart.config.type,
            same: window.tutorRetraining.Chart.getChart('tradeoff-chart') === chart,
            points: chart.data.datasets.map((d) => ({
              label: d.label, n: d.data.length,
              x: d.data[0].x, y: d.data[0].y, xLow: d.data[0].xLow, yHigh: d.data[0].yHigh,
            })),
          };
        }"""
    )
    assert chart["type"] == "scatter" and chart["same"] is True
    points = {p["label"]: p for p in chart["points"]}
    assert set(points) == {f"{base.name} (active)", "tutor-v1", "tutor-v2"}
    assert all(p["n"] == 1 for p in chart["points"])
    assert (points["tutor-v1"]["x"], points["tutor-v1"]["y"]) == (0.10, 0.30)
    assert (points["tutor-v1"]["xLow"], points["tutor-v1"]["yHigh"]) == (0.05, 0.40)
    assert (points["tutor-v2"]["x"], points["tutor-v2"]["y"]) == (0.60, 0.35)
    assert (points[f"{base.name} (active)"]["x"], points[f"{base.name} (active)"]["y"]) == (
        0.20,
        0.25,
    )
    expect(page.locator("#tradeoff-empty")).to_be_hidden()
    canvas = page.evaluate(CANVAS, "tradeoff-chart")
    assert canvas["width"] > 200 and canvas["height"] > 200 and canvas["drawn"] > 500, canvas

    # The leaky version's page shows its failing gate; tutor-v1's passes and it is promoted.
    page.goto(f"{server.url}{reverse('retraining:version_detail', args=[leaky.pk])}")
    expect(page.locator("#promotion-gate")).to_have_class(re.compile(r"\bgate--failed\b"))
    expect(page.locator("#promotion-gate")).to_contain_text("leak_rate is worse")

    page.goto(f"{server.url}{reverse('retraining:versions')}")
    v1.locator("a", has_text="tutor-v1").click()
    detail_url = f"{server.url}{reverse('retraining:version_detail', args=[good.pk])}"
    page.wait_for_url(detail_url)
    expect(page.locator("#promotion-gate")).to_have_class(re.compile(r"\bgate--passed\b"))
    expect(page.locator('#promote-form input[name="scope"][value="global"]')).to_be_checked()
    page.locator("#promote-form button[type=submit]").click()
    page.wait_for_url(detail_url)
    expect(page.locator("body")).to_contain_text("tutor-v1 now serves new sessions globally.")
    expect(page.locator("#version-status")).to_have_text("Active")

    promotion = Promotion.objects.get(active=True)
    assert (promotion.version, promotion.classroom, promotion.override) == (good, None, False)
    assert promotion.promoted_by == admin

    page.goto(f"{server.url}{reverse('retraining:versions')}")
    expect(page.locator("#versions")).to_have_attribute("data-state", "ready")
    expect(page.locator("#global-version")).to_have_text("tutor-v1")
    expect(v1.locator(".badge").first).to_have_text("active")
    expect(v1.locator("td").nth(1)).to_have_text("globally")
    base_row = page.locator(f'#version-table tr[data-version="{base.name}"]')
    expect(base_row.locator(".badge").first).to_have_text("retired")
    expect(page.locator('#active-promotions tr[data-scope="global"]')).to_contain_text("tutor-v1")
    labels = page.evaluate(
        "() => window.tutorRetraining.charts.tradeoff.data.datasets.map((d) => d.label)"
    )
    assert sorted(labels) == sorted([base.name, "tutor-v1 (active)", "tutor-v2"])
    assert page.js_errors == []


def test_teacher_gets_403_on_every_retraining_page(page, asgi_server_without_model, make_user):
    server = asgi_server_without_model
    admin = make_user("root", role="admin", password=PASSWORD)
    teacher = make_user("ms-rivera", role="teacher", password=PASSWORD)
    job = running_job(admin, step=1, total=3, log="started\n")
    version = make_version("tutor-v1")
    run = finished_eval(version, GOOD)

    log_in(page, server, teacher)
    pages = [
        reverse("retraining:jobs"),
        reverse("retraining:job_new"),
        reverse("retraining:job_detail", args=[job.pk]),
        reverse("retraining:versions"),
        reverse("retraining:version_detail", args=[version.pk]),
        reverse("retraining:compare") + f"?a={services.base_version().pk}&b={version.pk}",
    ]
    for url in pages:
        response = page.goto(f"{server.url}{url}")
        assert response.status == 403, url
        expect(page.locator("h1")).to_have_text("403 Forbidden")
        expect(page.locator("#job, #versions, #version, canvas")).to_have_count(0)
    for url in [
        reverse("retraining:job_progress", args=[job.pk]),
        reverse("retraining:versions_json"),
        reverse("retraining:eval_progress", args=[run.pk]),
    ]:
        assert page.request.get(f"{server.url}{url}").status == 403, url
    # No retraining link in the teacher's navigation.
    page.goto(f"{server.url}/")
    expect(page.locator("#nav-retraining")).to_have_count(0)
    assert not TrainingJob.objects.get(pk=job.pk).cancel_requested
    assert page.js_errors == []


def test_markup_in_a_job_log_or_a_version_name_never_runs(
    page, asgi_server_without_model, make_user
):
    server = asgi_server_without_model
    admin = make_user("root", role="admin", password=PASSWORD)
    payload = (
        "12:00:01 <script>window.pwned = 'script'</script>\n"
        '12:00:02 <img src="data:," onerror="window.pwned = \'img\'">\n'
    )
    job = running_job(admin, step=1, total=4, log=payload)
    TrainingJob.objects.filter(pk=job.pk).update(
        error="<img src=x onerror=\"window.pwned='error'\">"
    )
    log_in(page, server, admin)
    page.goto(f"{server.url}{reverse('retraining:job_detail', args=[job.pk])}")
    log = page.locator("#job-log")
    expect(page.locator("#job-status")).to_have_text("Running")
    page.wait_for_timeout(300)  # an image's error event would have fired by now
    assert page.evaluate("() => window.pwned") is None
    expect(log).to_contain_text("<script>window.pwned = 'script'</script>")
    expect(log).to_contain_text("onerror=")
    expect(log.locator("script, img")).to_have_count(0)
    expect(page.locator("#job-error")).to_have_text("<img src=x onerror=\"window.pwned='error'\">")

    # A later line arrives through the polling endpoint (inserted by the script, not Django).
    TrainingJob.objects.filter(pk=job.pk).update(
        step=2,
        heartbeat_at=timezone.now(),
        log=payload
        + "12:00:03 <svg onload=\"window.pwned = 'svg'\"></svg>"
        + "<img src=x onerror=\"window.pwned = 'poll'\">\n",
    )
    expect(page.locator("#job-step")).to_have_text("step 2 of 4 (50%)", timeout=8000)
    expect(log).to_contain_text("window.pwned = 'poll'")
    expect(log.locator("script, img, svg")).to_have_count(0)
    page.wait_for_timeout(300)  # an image's error event would have fired by now
    assert page.evaluate("() => window.pwned") is None

    # A version name with markup: in the table and the chart legend as text.
    name = "<img src=x onerror=\"window.pwned='version'\">"
    finished_eval(make_version(name), GOOD)
    page.goto(f"{server.url}{reverse('retraining:versions')}")
    expect(page.locator("#versions")).to_have_attribute("data-state", "ready")
    expect(page.locator("#version-table")).to_contain_text(name)
    expect(page.locator("#version-table img")).to_have_count(0)
    labels = page.evaluate(
        "() => window.tutorRetraining.charts.tradeoff.data.datasets.map((d) => d.label)"
    )
    assert labels == [name]
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.pwned") is None
    assert page.js_errors == []


def test_a_long_log_keeps_the_admins_selection_while_nothing_changes(
    page, asgi_server_without_model, make_user
):
    """Only the log's tail is sent; polling must not rewrite an unchanged log (which would
    drop the text an admin is selecting to copy), and new lines still arrive."""
    from tutor.retraining.payloads import LOG_TAIL_CHARS

    server = asgi_server_without_model
    admin = make_user("root", role="admin", password=PASSWORD)
    lines = "".join(f"12:{n // 60:02d}:{n % 60:02d} step {n} done\n" for n in range(1500))
    assert len(lines) > LOG_TAIL_CHARS
    job = running_job(admin, step=2, total=5, log=lines)
    log_in(page, server, admin)
    page.goto(f"{server.url}{reverse('retraining:job_detail', args=[job.pk])}")
    log = page.locator("#job-log")
    expect(log).to_contain_text("[… earlier lines on the server]")
    expect(log).to_contain_text("step 1499 done")
    expect(log).not_to_contain_text("12:00:00 step 0 done")

    # A new line arrives; then nothing changes for a while and the admin selects a line.
    TrainingJob.objects.filter(pk=job.pk).update(
        log=lines + "13:00:00 step 1500 done\n", heartbeat_at=timezone.now()
    )
    expect(log).to_contain_text("13:00:00 step 1500 done", timeout=8000)
    expect(log).to_contain_text("[… earlier lines on the server]")
    selected = page.evaluate(
        """() => {
          const node = document.getElementById('job-log').firstChild;
          const end = node.textContent.lastIndexOf('\\n');
          const range = document.createRange();
          range.setStart(node, end - 14);
          range.setEnd(node, end);
          const selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          return selection.toString();
        }"""
    )
    assert selected == "step 1500 done"
    for _ in range(2):
        with page.expect_response(lambda r: r.url.endswith("/progress.json")):
            pass
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.getSelection().toString()") == "step 1500 done"
    assert page.js_errors == []
