"""Imported by the check pool's forkserver (:data:`pedagogy.bounded.PRELOAD`) to warm it up.

math-verify builds its parsers (sympy's LaTeX grammar, caches) on first use, which takes over a
second: a worker that did that inside a student's time limit would report a plain answer as
too costly to check. Run here once, in the forkserver, every worker forked from it starts warm.
"""

from .grading import check_answer_now

check_answer_now("\\frac{1}{2} + x", "x + 0.5")
check_answer_now("banana", "37.4")
