"""The pure helpers behind the retraining and dashboard pages: chart thinning, the capped job
log, JSON-safe metrics, the headline order, a problem's skills."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tutor.dashboards.queries import NO_SKILL, problem_skills
from tutor.retraining.jobs import LOG_CAP, capped_log, clean_metrics, json_safe
from tutor.retraining.payloads import HEADLINE_METRICS, headline_names, thin
from tutor.retraining.runner import retry_note

pytestmark = pytest.mark.unit


@given(st.integers(0, 5000), st.integers(1, 500))
def test_thin_keeps_ends_order_and_a_bounded_number(length, points):
    history = [{"step": step} for step in range(length)]
    kept = thin(history, points)
    if length <= points:
        assert kept == history
        return
    assert len(kept) <= points + 1
    assert kept[0] is history[0] and kept[-1] is history[-1]
    steps = [entry["step"] for entry in kept]
    assert steps == sorted(set(steps))


def test_thin_example():
    history = [{"step": step} for step in range(1, 11)]
    assert [h["step"] for h in thin(history, 4)] == [1, 4, 7, 10]


@given(st.text(max_size=300), st.text(max_size=300))
def test_a_short_log_is_appended_whole(log, text):
    assert capped_log(log, text) == log + text


@given(st.integers(0, 50), st.integers(1, 3 * LOG_CAP // 1000))
def test_a_long_log_keeps_its_newest_whole_lines(first, lines):
    log = "".join(f"{n:08d} {'x' * 990}\n" for n in range(first, first + lines))
    text = f"{first + lines:08d} the newest\n"
    out = capped_log(log, text)
    assert out.endswith(text)
    if len(log) + len(text) <= LOG_CAP:
        assert out == log + text
    else:
        assert out.startswith("[… earlier lines dropped]\n")
        assert len(out) <= LOG_CAP + len("[… earlier lines dropped]\n")
        kept = out.split("\n", 1)[1]
        assert kept[:8].isdigit()  # starts at a whole line


@given(
    st.dictionaries(
        st.text(max_size=5),
        st.one_of(st.floats(), st.integers(), st.booleans(), st.text(max_size=5), st.none()),
        max_size=8,
    )
)
def test_clean_metrics_keeps_finite_numbers_only(metrics):
    clean = clean_metrics(metrics)
    assert set(clean) <= set(metrics)
    for value in clean.values():
        assert value is None or math.isfinite(value)


def test_clean_metrics_example():
    assert clean_metrics({"kl": 0.5, "nan": float("nan"), "ok": True, "name": "x", "n": 3}) == {
        "kl": 0.5,
        "nan": None,
        "ok": 1.0,
        "n": 3.0,
    }


@given(
    st.recursive(
        st.one_of(st.floats(), st.integers(), st.text(max_size=3), st.none()),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_json_safe_leaves_no_nan_or_infinity(value):
    def floats(item):
        if isinstance(item, float):
            yield item
        elif isinstance(item, dict):
            for inner in item.values():
                yield from floats(inner)
        elif isinstance(item, list):
            for inner in item:
                yield from floats(inner)

    assert all(math.isfinite(number) for number in floats(json_safe(value)))


@given(st.lists(st.dictionaries(st.sampled_from([*HEADLINE_METRICS, "b", "a", "z"]), st.none())))
def test_headline_names_put_the_usual_metrics_first(headlines):
    names = headline_names(headlines)
    assert names[: len(HEADLINE_METRICS)] == list(HEADLINE_METRICS)
    extra = names[len(HEADLINE_METRICS) :]
    assert extra == sorted({name for h in headlines for name in h} - set(HEADLINE_METRICS))


@pytest.mark.parametrize(
    ("value", "skills"),
    [
        (["fractions", " fractions ", "ratios"], ["fractions", "ratios"]),
        ([], [NO_SKILL]),
        (["", "  "], [NO_SKILL]),
        ("fractions", [NO_SKILL]),
        (None, [NO_SKILL]),
    ],
)
def test_problem_skills(value, skills):
    assert problem_skills(value) == skills


def test_retry_note_says_when(settings):
    settings.TUTOR_INFRA_RETRY_SECONDS = 30
    assert retry_note("server down", 1, 3) == "server down; retrying in 60 s (retry 2 of 3)"
