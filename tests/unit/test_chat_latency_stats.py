"""The chat latency benchmark's statistics: rounds per concurrency and the ratios' intervals."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.chat_latency import (
    Batch,
    Reply,
    print_table,
    ratio_intervals,
    rounds_for,
    summarize,
)

pytestmark = pytest.mark.unit


def batch(kind: str, rnd: int, ttfts: list[float], tokens_per_reply: int = 10) -> Batch:
    replies = [Reply(ttft_ms=t, end_ms=t + 100, completion_tokens=tokens_per_reply) for t in ttfts]
    return Batch(kind, len(ttfts), rnd, wall_s=1.0, replies=replies)


def test_small_concurrency_gets_more_rounds_until_the_reply_count():
    args = argparse.Namespace(rounds=2, min_replies=16)
    assert [rounds_for(args, n) for n in (1, 8, 32)] == [16, 2, 2]


def test_intervals_bracket_the_ratio_and_separate_a_real_difference():
    platform = [batch("platform", r, [110 + r, 112 + r]) for r in range(1, 9)]
    direct = [batch("direct", r, [100 + r, 101 + r]) for r in range(1, 9)]
    intervals = ratio_intervals(platform, direct, resamples=500)
    low, high = intervals["ttft_median_ratio"]
    assert 1.0 < low <= 111.5 / 101.5 <= high < 1.2
    assert intervals["throughput_ratio"] == (1.0, 1.0)


def test_noisy_rounds_give_a_wide_interval():
    platform = [batch("platform", r, [100 if r % 2 else 400]) for r in range(1, 9)]
    direct = [batch("direct", r, [400 if r % 2 else 100]) for r in range(1, 9)]
    low, high = ratio_intervals(platform, direct, resamples=500)["ttft_median_ratio"]
    assert low < 0.5 and high > 2


def test_no_interval_from_a_single_round():
    intervals = ratio_intervals([batch("platform", 1, [1.0])], [batch("direct", 1, [1.0])], 100)
    assert intervals == {"ttft_median_ratio": None, "throughput_ratio": None}


def test_failed_replies_miss_the_goal_whatever_the_ratios_of_the_rest():
    # Failed replies have no TTFT, so the medians of the rest can look good.
    platform = [batch("platform", 1, [100.0, 100.0])]
    platform[0].replies.append(Reply(ttft_ms=None, end_ms=5.0, error="model_failed"))
    direct = [batch("direct", 1, [100.0, 100.0, 100.0])]
    verdict = print_table(3, summarize(platform), summarize(direct), {})
    assert verdict["ttft_overhead"] == 0 and not verdict["ttft_goal_met"]
    assert not verdict["throughput_goal_met"]
    clean = print_table(
        2, summarize([batch("platform", 1, [100.0, 100.0])]), summarize(direct[:1]), {}
    )
    assert clean["ttft_goal_met"]
