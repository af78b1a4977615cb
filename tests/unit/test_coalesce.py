import pytest

from inference.coalesce import DeltaCoalescer

pytestmark = pytest.mark.unit


def test_first_delta_goes_at_once_then_gathered_per_interval():
    c = DeltaCoalescer(interval=0.05)
    assert c.push("a", now=0.0) == "a"
    assert c.push("b", now=0.01) is None
    assert c.push("c", now=0.04) is None
    assert c.push("d", now=0.06) == "bcd"
    assert c.push("e", now=0.07) is None
    assert c.flush() == "e"
    assert c.flush() == ""


def test_empty_deltas_send_nothing():
    c = DeltaCoalescer(interval=0.05)
    assert c.push("", now=0.0) is None
    assert c.push("x", now=0.0) == "x"


def test_zero_interval_sends_every_delta():
    c = DeltaCoalescer(interval=0.0)
    assert [c.push(t, now=0.0) for t in "abc"] == ["a", "b", "c"]
