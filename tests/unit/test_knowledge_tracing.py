"""Bayesian Knowledge Tracing: the forward update, the EM fit and degenerate inputs."""

import itertools
import math

import pytest

from pedagogy.knowledge_tracing import (
    DEFAULT_PARAMS,
    MAX_GUESS,
    MAX_SLIP,
    BKTParams,
    fit_bkt,
    mastery_trajectories,
    mastery_trajectory,
    predict_correct,
    simulate,
    update,
)

pytestmark = pytest.mark.unit

PARAMS = BKTParams(p_init=0.3, p_learn=0.15, p_guess=0.2, p_slip=0.1)


def test_forward_update_matches_hand_computed_values():
    # Correct: P(L|right) = 0.3*0.9 / (0.3*0.9 + 0.7*0.2) = 0.27/0.41, then learning.
    after_right = 0.27 / 0.41
    after_right += (1 - after_right) * 0.15
    assert after_right == pytest.approx(0.7097561, abs=1e-7)
    # Incorrect next: P(L|wrong) = p*0.1 / (p*0.1 + (1-p)*0.8), then learning.
    p = after_right
    after_wrong = p * 0.1 / (p * 0.1 + (1 - p) * 0.8)
    after_wrong += (1 - after_wrong) * 0.15
    assert after_wrong == pytest.approx(0.3489944, abs=1e-7)

    assert update(PARAMS, 0.3, True) == pytest.approx(after_right)
    assert mastery_trajectory(PARAMS, [True, False]) == pytest.approx([after_right, after_wrong])


def test_trajectory_rises_with_correct_answers_and_predicts_correctness():
    trajectory = mastery_trajectory(PARAMS, [True] * 6)
    assert all(b > a for a, b in itertools.pairwise(trajectory))
    assert trajectory[-1] > 0.99
    assert predict_correct(PARAMS, 0.0) == pytest.approx(0.2)
    assert predict_correct(PARAMS, 1.0) == pytest.approx(0.9)
    # Without learning, wrong answers only lower the estimate.
    no_learning = BKTParams(0.5, 0.0, 0.2, 0.1)
    falling = mastery_trajectory(no_learning, [False] * 4)
    assert all(b < a for a, b in zip([0.5, *falling], falling, strict=False))


def test_no_attempts():
    assert mastery_trajectory(PARAMS, []) == []
    result = fit_bkt([])
    assert result.params == DEFAULT_PARAMS
    assert (result.n_sequences, result.n_attempts) == (0, 0)
    # Empty sequences are ignored, not counted as students.
    assert fit_bkt([[], []]).params == DEFAULT_PARAMS


@pytest.mark.parametrize(
    "true",
    [
        BKTParams(p_init=0.25, p_learn=0.2, p_guess=0.15, p_slip=0.1),
        BKTParams(p_init=0.5, p_learn=0.05, p_guess=0.25, p_slip=0.2),
    ],
)
def test_fit_recovers_the_parameters_of_simulated_data(true):
    sequences = simulate(true, n_students=1000, n_attempts=20, seed=7)
    result = fit_bkt(sequences)
    fitted = result.params
    assert fitted.p_init == pytest.approx(true.p_init, abs=0.05)
    assert fitted.p_learn == pytest.approx(true.p_learn, abs=0.04)
    assert fitted.p_guess == pytest.approx(true.p_guess, abs=0.04)
    assert fitted.p_slip == pytest.approx(true.p_slip, abs=0.03)
    assert result.n_attempts == 20_000
    # The fit is at least as likely as the truth (it maximises the posterior, near the MLE).
    truth = fit_bkt(sequences, prior=true, max_iter=1)
    assert result.log_likelihood >= truth.log_likelihood - 1.0


def test_fit_is_deterministic_and_bounded():
    sequences = simulate(PARAMS, n_students=50, n_attempts=10, seed=3)
    assert fit_bkt(sequences) == fit_bkt(sequences)
    # All wrong: guessing would explain nothing, slip is capped for identifiability.
    wrong = fit_bkt([[False] * 8] * 10).params
    assert wrong.p_slip < MAX_SLIP and wrong.p_guess < MAX_GUESS
    assert mastery_trajectory(wrong, [False] * 8)[-1] < 0.2


def test_all_correct_is_finite_and_confident():
    result = fit_bkt([[True] * 10] * 20)
    params = result.params
    for value in (params.p_init, params.p_learn, params.p_guess, params.p_slip):
        assert 0 < value < 1 and math.isfinite(value)
    assert params.p_guess < MAX_GUESS and params.p_slip < MAX_SLIP
    assert mastery_trajectory(params, [True] * 10)[-1] > 0.95
    # One attempt by one student: the prior keeps the estimate away from the extremes.
    thin = fit_bkt([[True]]).params
    assert 0.05 < thin.p_init < 0.95


def test_vectorised_trajectories_match_the_scalar_update():
    sequences = [*simulate(PARAMS, n_students=30, n_attempts=9, seed=5), [], [True]]
    sequences[3] = sequences[3][:4]
    many = mastery_trajectories(PARAMS, sequences)
    assert [len(t) for t in many] == [len(s) for s in sequences]
    for trajectory, outcomes in zip(many, sequences, strict=True):
        assert trajectory == pytest.approx(mastery_trajectory(PARAMS, outcomes), abs=1e-12)
    assert mastery_trajectories(PARAMS, []) == []
    assert mastery_trajectories(PARAMS, [[]]) == [[]]
