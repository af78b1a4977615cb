"""The student message intake (tutor.dialogues.intake): one database call at a time, messages
that arrive meanwhile stored together by the next, each handed back once stored. The store
function here is a stand-in; tests/integration/test_consumer.py runs the real one."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tutor.dialogues.intake import StudentMessageIntake

pytestmark = pytest.mark.unit


async def in_thread(function, *args):
    await asyncio.to_thread(function, *args)


class Recorder:
    """Stands in for services.accept_student_message: records what it stored, in which call,
    and can be held (to let other messages arrive meanwhile) or made to fail."""

    def __init__(self) -> None:
        self.stored: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_on: set[str] = set()

    def __call__(self, session, text, client_id):
        self.gate.wait(5)
        if text in self.fail_on:
            raise ValueError(f"cannot store {text}")
        self.stored.append(text)
        return f"turn:{text}"


async def test_a_lone_message_is_stored_at_once():
    recorder = Recorder()
    intake = StudentMessageIntake(asyncio.get_running_loop(), recorder, in_thread)
    assert await intake.accept(None, "hello", None) == "turn:hello"
    await asyncio.sleep(0.05)
    assert intake.calls == 1 and intake.draining is None


async def test_messages_arriving_during_a_call_are_stored_together_in_the_next():
    recorder = Recorder()
    recorder.gate.clear()
    intake = StudentMessageIntake(asyncio.get_running_loop(), recorder, in_thread)
    first = asyncio.create_task(intake.accept(None, "m0", None))
    await asyncio.sleep(0.05)  # the first call is running, held at the gate
    rest = [asyncio.create_task(intake.accept(None, f"m{i}", None)) for i in range(1, 8)]
    await asyncio.sleep(0.05)
    recorder.gate.set()
    results = await asyncio.gather(first, *rest)
    assert results == [f"turn:m{i}" for i in range(8)]
    assert recorder.stored == [f"m{i}" for i in range(8)]  # in arrival order
    assert intake.calls == 2


async def test_each_message_gets_its_own_error_and_the_others_are_stored():
    recorder = Recorder()
    recorder.fail_on = {"bad"}
    intake = StudentMessageIntake(asyncio.get_running_loop(), recorder, in_thread)
    results = await asyncio.gather(
        *(intake.accept(None, text, None) for text in ("a", "bad", "b")), return_exceptions=True
    )
    assert results[0] == "turn:a" and results[2] == "turn:b"
    assert isinstance(results[1], ValueError)
    assert recorder.stored == ["a", "b"]


async def test_a_caller_that_goes_away_does_not_stop_its_message_or_the_others():
    recorder = Recorder()
    recorder.gate.clear()
    intake = StudentMessageIntake(asyncio.get_running_loop(), recorder, in_thread)
    gone = asyncio.create_task(intake.accept(None, "gone", None))
    stays = asyncio.create_task(intake.accept(None, "stays", None))
    await asyncio.sleep(0.05)
    gone.cancel()
    recorder.gate.set()
    assert await stays == "turn:stays"
    assert recorder.stored == ["gone", "stays"]  # stored, though nobody waits for it


async def test_a_failed_call_fails_its_callers_and_the_intake_keeps_working():
    calls = []

    async def broken_then_working(function, *args):
        calls.append(len(args[0]))
        if len(calls) == 1:
            raise RuntimeError("no worker thread")
        await asyncio.to_thread(function, *args)

    recorder = Recorder()
    intake = StudentMessageIntake(asyncio.get_running_loop(), recorder, broken_then_working)
    with pytest.raises(RuntimeError):
        await intake.accept(None, "lost", None)
    assert await intake.accept(None, "next", None) == "turn:next"
    assert recorder.stored == ["next"]


async def test_batches_are_capped():
    recorder = Recorder()
    recorder.gate.clear()
    intake = StudentMessageIntake(asyncio.get_running_loop(), recorder, in_thread, max_batch=3)
    tasks = [asyncio.create_task(intake.accept(None, f"m{i}", None)) for i in range(7)]
    await asyncio.sleep(0.05)
    recorder.gate.set()
    await asyncio.gather(*tasks)
    assert intake.calls == 3  # 3 + 3 + 1: the first call took all that were waiting, up to 3
