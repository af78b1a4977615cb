"""Knowledge tracing for a class: Bayesian Knowledge Tracing fitted per skill on the class's
attempts in time order (:mod:`pedagogy.knowledge_tracing`; weak priors keep thin skills
sensible). A session's attempts count for each skill of its problem.

Reads only what :class:`tutor.dashboards.queries.ClassQueries` loaded; adds no query.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

from django.core.cache import cache

from pedagogy.knowledge_tracing import BKTParams, fit_bkt, mastery_trajectories

from .queries import ClassQueries

FIT_CACHE_SECONDS = 24 * 3600


@dataclass
class SkillSequences:
    """One skill's attempts, per student in time order (parallel lists)."""

    students: list[int] = field(default_factory=list)
    outcomes: list[list[bool]] = field(default_factory=list)
    times: list[list[float]] = field(default_factory=list)


def fitted_params(outcomes: list[list[bool]]) -> BKTParams:
    """BKT fitted to one skill's outcome sequences. A fit depends only on the sequences, so it
    is cached under their digest: the same attempts always give the same parameters."""
    digest = hashlib.sha1(usedforsecurity=False)
    for sequence in outcomes:
        digest.update(bytes(sequence))
        digest.update(b"|")
    key = f"dashboards:bkt:v1:{digest.hexdigest()}"
    fitted = cache.get(key)
    if fitted is None:
        fitted = fit_bkt(outcomes).params
        cache.set(key, fitted, FIT_CACHE_SECONDS)
    return fitted


class ClassMastery:
    """Per skill: the enrolled students' attempt sequences, the fitted parameters, and each
    student's P(mastered) after each attempt. Each property is computed once."""

    def __init__(self, data: ClassQueries) -> None:
        self.data = data

    @cached_property
    def sequences(self) -> dict[str, SkillSequences]:
        """skill -> each enrolled student's attempts on it, in time order."""
        by_skill: dict[str, SkillSequences] = {}
        enrolled = self.data.roster
        current: dict[str, int] = {}  # skill -> student of its last row (rows come by student)
        for student, problem, correct, ts in self.data.attempts:
            if student not in enrolled:
                continue
            for skill in self.data.skills_of(problem):
                seqs = by_skill.get(skill)
                if seqs is None:
                    seqs = by_skill[skill] = SkillSequences()
                if current.get(skill) != student:
                    current[skill] = student
                    seqs.students.append(student)
                    seqs.outcomes.append([])
                    seqs.times.append([])
                seqs.outcomes[-1].append(correct)
                seqs.times[-1].append(ts)
        return dict(sorted(by_skill.items()))

    @cached_property
    def params(self) -> dict[str, BKTParams]:
        """skill -> its fitted BKT parameters."""
        return {skill: fitted_params(seqs.outcomes) for skill, seqs in self.sequences.items()}

    @cached_property
    def trajectories(self) -> dict[str, list[list[float]]]:
        """skill -> per student (as in ``sequences``) P(mastered) after each attempt."""
        return {
            skill: mastery_trajectories(self.params[skill], seqs.outcomes)
            for skill, seqs in self.sequences.items()
        }
