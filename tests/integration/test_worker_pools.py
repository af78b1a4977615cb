"""Tasks in the pool children of a real prefork worker (the workers scripts/start.sh and compose
run) can run bounded checks: a pool child is a daemonic process, and the checking pool
(pedagogy.bounded) starts processes of its own."""

import pytest

from tests.conftest import purge_queues
from tests.support.bounded_task import bounded_check
from tests.support.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_prefork_pool_child_runs_checks_in_the_bounded_pool(tmp_path):
    from tutor.celery import app

    queue = app.conf.task_default_queue
    purge_queues(queue)
    worker = WorkerProcess(
        [queue], tmp_path / "worker.log", include=["tests.support.bounded_task"], pool="prefork"
    )
    try:
        worker.wait_ready(60)
        # An answer only math-verify reads: the check runs in the pool's processes.
        # A connection of its own: an earlier test of the session may have closed the app's
        # producer pool.
        with app.connection_for_write() as connection:
            right = bounded_check.apply_async(
                (r"\sqrt{36}", "6"), queue=queue, connection=connection
            )
            wrong = bounded_check.apply_async(
                (r"\sqrt{35}", "6"), queue=queue, connection=connection
            )
        assert right.get(timeout=90) is True, worker.log_tail()
        assert wrong.get(timeout=90) is False, worker.log_tail()
    finally:
        worker.stop()
    assert "daemonic processes are not allowed" not in worker.log_tail(chars=1_000_000)
