import json
from collections import Counter

import pytest

from training.curriculum import SelfEvolvingCurriculum

pytestmark = pytest.mark.unit


def test_td0_update_by_hand():
    cur = SelfEvolvingCurriculum(["easy", "hard"], alpha=0.5)
    rewards = cur.update({"easy": [1.0, -1.0, 0.5, -0.5], "hard": []})
    assert rewards == {"easy": 0.75}
    assert cur.values == {"easy": 0.375, "hard": 0.0}  # 0 + 0.5 * (0.75 - 0)
    cur.update_from_batch(["easy", "hard", "hard"], [0.0, 2.0, -1.0])
    assert cur.values["easy"] == pytest.approx(0.375 + 0.5 * (0.0 - 0.375))
    assert cur.values["hard"] == pytest.approx(0.5 * 1.5)
    assert cur.counts == {"easy": 2, "hard": 1}


def test_disabled_is_uniform_whatever_the_values():
    cur = SelfEvolvingCurriculum(["a", "b", "c", "d"], enabled=False, seed=1)
    cur.update({"a": [5.0]})
    assert cur.probabilities() == {c: 0.25 for c in "abcd"}
    counts = Counter(cur.sample_categories(4000))
    assert all(900 < counts[c] < 1100 for c in "abcd")


def test_softmax_prefers_high_value_arms_and_temperature_sharpens():
    cur = SelfEvolvingCurriculum(["low", "high"], alpha=1.0, temperature=0.5, seed=0)
    cur.update({"low": [0.1], "high": [0.9]})
    probs = cur.probabilities()
    assert probs["high"] == pytest.approx(1 / (1 + pow(2.718281828459045, -1.6)), rel=1e-6)
    assert probs["high"] > 0.8
    cold = SelfEvolvingCurriculum(["low", "high"], alpha=1.0, temperature=0.05)
    cold.update({"low": [0.1], "high": [0.9]})
    assert cold.probabilities()["high"] > 0.999
    counts = Counter(cur.sample_categories(2000))
    assert counts["high"] > 3 * counts["low"]


def test_seeded_sampling_is_deterministic():
    pools = {"a": list(range(10)), "b": list(range(100, 110)), "empty": []}
    one = SelfEvolvingCurriculum(["a", "b", "empty"], seed=7)
    two = SelfEvolvingCurriculum(["a", "b", "empty"], seed=7)
    batch = one.sample(pools, 8)
    assert batch == two.sample(pools, 8)
    assert all(p < 10 or 100 <= p < 110 for p in batch)  # the empty category is never drawn
    a_items = [p for p in batch if p < 10]
    assert len(a_items) == len(set(a_items))  # no repeats within a category in a batch
    assert SelfEvolvingCurriculum(["a", "b"], seed=8).sample(pools, 8) != batch


def test_state_round_trip_continues_the_same_stream():
    cur = SelfEvolvingCurriculum(["a", "b", "c"], alpha=0.3, temperature=0.7, seed=3)
    cur.update({"a": [0.4, -0.2], "c": [1.0]})
    cur.sample_categories(5)
    state = json.loads(json.dumps(cur.state_dict()))
    resumed = SelfEvolvingCurriculum.from_state(state)
    assert resumed.values == cur.values and resumed.counts == cur.counts
    assert resumed.probabilities() == cur.probabilities()
    assert resumed.sample_categories(20) == cur.sample_categories(20)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        SelfEvolvingCurriculum([])
    with pytest.raises(ValueError):
        SelfEvolvingCurriculum(["a"], alpha=0.0)
    with pytest.raises(KeyError):
        SelfEvolvingCurriculum(["a"]).update({"zzz": [1.0]})
