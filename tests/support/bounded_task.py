"""A task that runs a bounded check (pedagogy.bounded), for a worker process to import (-I)."""

from celery import shared_task

from pedagogy.grading import check_answer


@shared_task(name="tests.bounded_check")
def bounded_check(answer: str, reference: str) -> bool:
    """Whether ``answer`` matches ``reference``, checked in the bounded pool (an expression
    that only math-verify reads, so the pool is really used)."""
    return bool(check_answer(answer, reference).correct)
