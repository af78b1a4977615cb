"""Bayesian Knowledge Tracing (Corbett & Anderson, 1995): the standard four-parameter model.

Per skill, a student is in one of two hidden states, *not mastered* or *mastered*. They start
mastered with probability ``p_init``; after each practice opportunity an unmastered student
becomes mastered with probability ``p_learn`` (no forgetting). A mastered student answers
correctly unless they slip (``p_slip``); an unmastered one only by guessing (``p_guess``).

``mastery_trajectory`` runs the forward update for one student's outcomes. ``fit_bkt`` fits the
four parameters to many students' outcome sequences with expectation maximisation (Baum-Welch
for this two-state hidden Markov model), vectorised over students with numpy. Guess and slip are
kept below ``MAX_GUESS`` / ``MAX_SLIP`` (0.3) so that "mastered" stays the state with the higher
chance of a correct answer (the usual identifiability constraint), and weak Beta priors centred
on ``DEFAULT_PARAMS`` (a MAP fit) keep the estimates sensible when a skill has few attempts.

Plain Python and numpy: no Django and no torch, so the dashboards and a training worker share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

MAX_GUESS = 0.3
MAX_SLIP = 0.3
# Keeps every probability strictly inside (0, 1) so that no update divides by zero.
EPS = 1e-4


@dataclass(frozen=True)
class BKTParams:
    p_init: float
    p_learn: float
    p_guess: float
    p_slip: float

    def as_dict(self) -> dict[str, float]:
        return {key: round(value, 4) for key, value in asdict(self).items()}


# Used as the prior mean, as the starting point of EM, and as-is when a skill has no data.
DEFAULT_PARAMS = BKTParams(p_init=0.3, p_learn=0.15, p_guess=0.2, p_slip=0.1)


def _clip(value: float, high: float = 1.0) -> float:
    return float(min(max(value, EPS), high - EPS))


def update(params: BKTParams, p_mastered: float, correct: bool) -> float:
    """One step of the forward update: the probability that the student has mastered the skill
    after observing ``correct`` on an attempt and then having the chance to learn from it."""
    guess, slip = params.p_guess, params.p_slip
    if correct:
        evidence = p_mastered * (1 - slip)
        posterior = evidence / (evidence + (1 - p_mastered) * guess)
    else:
        evidence = p_mastered * slip
        posterior = evidence / (evidence + (1 - p_mastered) * (1 - guess))
    return posterior + (1 - posterior) * params.p_learn


def mastery_trajectory(params: BKTParams, outcomes: Sequence[bool]) -> list[float]:
    """P(mastered) after each attempt in ``outcomes`` (the posterior given the outcomes so far,
    including the learning step that follows each attempt). Empty for no attempts; the prior
    before any attempt is ``params.p_init``."""
    trajectory: list[float] = []
    p = params.p_init
    for correct in outcomes:
        p = update(params, p, bool(correct))
        trajectory.append(p)
    return trajectory


def mastery_trajectories(
    params: BKTParams, sequences: Sequence[Sequence[bool]]
) -> list[list[float]]:
    """``mastery_trajectory`` for many students at once (vectorised over students)."""
    if not sequences or not any(len(seq) for seq in sequences):
        return [[] for _ in sequences]
    obs, mask = _pad([seq if len(seq) else [False] for seq in sequences])
    guess, slip, learn = params.p_guess, params.p_slip, params.p_learn
    p = np.full(obs.shape[1], params.p_init)
    out = np.empty_like(obs)
    for t in range(obs.shape[0]):
        right = obs[t] > 0.5
        evidence = np.where(right, p * (1 - slip), p * slip)
        posterior = evidence / (evidence + np.where(right, (1 - p) * guess, (1 - p) * (1 - guess)))
        p = np.where(mask[t], posterior + (1 - posterior) * learn, p)
        out[t] = p
    return [out[: len(seq), column].tolist() for column, seq in enumerate(sequences)]


def predict_correct(params: BKTParams, p_mastered: float) -> float:
    """Probability of a correct answer on the next attempt."""
    return p_mastered * (1 - params.p_slip) + (1 - p_mastered) * params.p_guess


@dataclass(frozen=True)
class FitResult:
    params: BKTParams
    log_likelihood: float
    iterations: int
    n_sequences: int
    n_attempts: int


def _pad(sequences: Sequence[Sequence[bool]]) -> tuple[np.ndarray, np.ndarray]:
    """Time-major (longest x students) matrix of outcomes, and the mask of real entries."""
    longest = max(len(seq) for seq in sequences)
    obs = np.zeros((longest, len(sequences)), dtype=np.float64)
    mask = np.zeros((longest, len(sequences)), dtype=bool)
    for column, seq in enumerate(sequences):
        obs[: len(seq), column] = np.asarray(seq, dtype=np.float64)
        mask[: len(seq), column] = True
    return obs, mask


def _e_step(params: BKTParams, obs: np.ndarray, mask: np.ndarray):
    """Scaled forward-backward over all sequences at once (time-major arrays, one numpy
    operation per time step over every student). Past a sequence's end the emission is 1 and
    the transition the identity (no learning), so padding changes nothing."""
    length, _n = obs.shape
    p0, learn, guess, slip = params.p_init, params.p_learn, params.p_guess, params.p_slip
    right = obs > 0.5
    # e0/e1[t] = P(outcome at t | not mastered / mastered); learn_t = 0 on padding.
    e0 = np.where(mask, np.where(right, guess, 1 - guess), 1.0)
    e1 = np.where(mask, np.where(right, 1 - slip, slip), 1.0)
    learn_t = learn * mask

    a0 = np.empty_like(e0)
    a1 = np.empty_like(e0)
    scale = np.empty_like(e0)
    j0 = (1 - p0) * e0[0]
    j1 = p0 * e1[0]
    scale[0] = j0 + j1
    a0[0] = j0 / scale[0]
    a1[0] = j1 / scale[0]
    for t in range(1, length):
        moved = a0[t - 1] * learn_t[t]
        j0 = (a0[t - 1] - moved) * e0[t]
        j1 = (a1[t - 1] + moved) * e1[t]
        scale[t] = j0 + j1
        a0[t] = j0 / scale[t]
        a1[t] = j1 / scale[t]

    b0 = np.ones_like(e0)
    b1 = np.ones_like(e0)
    for t in range(length - 2, -1, -1):
        w0 = e0[t + 1] * b0[t + 1] / scale[t + 1]
        w1 = e1[t + 1] * b1[t + 1] / scale[t + 1]
        b0[t] = w0 + learn_t[t + 1] * (w1 - w0)
        b1[t] = w1

    g1 = a1 * b1
    gamma1 = g1 / (a0 * b0 + g1)
    # Expected transitions out of "not mastered" between t and t+1 (live steps only).
    stay = a0[:-1] * (1 - learn_t[1:]) * e0[1:] * b0[1:] / scale[1:]
    learned = a0[:-1] * learn_t[1:] * e1[1:] * b1[1:] / scale[1:]
    live = mask[1:]
    log_likelihood = float(np.log(scale[mask]).sum())
    return gamma1, float(stay[live].sum()), float(learned[live].sum()), log_likelihood


def fit_bkt(
    sequences: Sequence[Sequence[bool]],
    *,
    prior: BKTParams = DEFAULT_PARAMS,
    prior_strength: float = 4.0,
    max_iter: int = 200,
    tol: float = 1e-6,
) -> FitResult:
    """Fit BKT to outcome sequences (one per student, in time order) by MAP-EM.

    ``prior_strength`` is how many pseudo-observations each parameter's Beta prior is worth
    (0 gives the plain maximum-likelihood EM). With no attempts at all the prior is returned.
    """
    sequences = [list(seq) for seq in sequences if len(seq) > 0]
    n_attempts = sum(len(seq) for seq in sequences)
    if not sequences:
        return FitResult(prior, 0.0, 0, 0, 0)
    obs, mask = _pad(sequences)
    correct = obs * mask
    wrong = (1 - obs) * mask
    a = prior_strength  # pseudo-counts, split by the prior mean

    def map_ratio(hits: float, total: float, mean: float) -> float:
        return (hits + a * mean) / (total + a)

    params = prior
    previous = -np.inf
    log_likelihood = previous
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007
        gamma1, stay, learned, log_likelihood = _e_step(params, obs, mask)
        mastered = gamma1 * mask
        not_mastered = (1 - gamma1) * mask
        params = BKTParams(
            p_init=_clip(map_ratio(float(gamma1[0].sum()), len(sequences), prior.p_init)),
            p_learn=_clip(map_ratio(learned, stay + learned, prior.p_learn)),
            p_guess=_clip(
                map_ratio(
                    float((not_mastered * correct).sum()), float(not_mastered.sum()), prior.p_guess
                ),
                MAX_GUESS,
            ),
            p_slip=_clip(
                map_ratio(float((mastered * wrong).sum()), float(mastered.sum()), prior.p_slip),
                MAX_SLIP,
            ),
        )
        if abs(log_likelihood - previous) < tol * max(1.0, abs(log_likelihood)):
            break
        previous = log_likelihood
    return FitResult(params, log_likelihood, iterations, len(sequences), n_attempts)


def simulate(
    params: BKTParams, n_students: int, n_attempts: int, seed: int = 0
) -> list[list[bool]]:
    """Outcome sequences drawn from the BKT model (for tests and benchmarks)."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(n_students):
        mastered = rng.random() < params.p_init
        outcomes = []
        for _ in range(n_attempts):
            p_correct = (1 - params.p_slip) if mastered else params.p_guess
            outcomes.append(bool(rng.random() < p_correct))
            if not mastered and rng.random() < params.p_learn:
                mastered = True
        sequences.append(outcomes)
    return sequences
