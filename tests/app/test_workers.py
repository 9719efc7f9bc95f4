"""The generic worker: generator items become progress, the return value the result, errors typed
EmberErrors; every signal arrives on the UI thread; closing cancels and waits."""

from __future__ import annotations

import threading

from app.workers import Worker, WorkerRunner
from engine.errors import EmberError, InvalidInput
from engine.jobs import CancelToken


def counting(n):
    yield from range(n)
    return "done"


def run_counting(qtbot, runner: WorkerRunner, long: bool):
    worker = Worker(counting, 3)
    seen, threads, order = [], set(), []
    worker.progress.connect(lambda value: (seen.append(value), threads.add(threading.current_thread())))
    worker.result.connect(lambda _value: order.append("result"))
    worker.finished.connect(lambda: order.append("finished"))
    with qtbot.waitSignal(worker.finished):
        runner.start(worker, long=long)
    return seen, threads, order


def test_generator_progress_result_finished_on_the_ui_thread(qtbot, tmp_path):
    runner = WorkerRunner(tmp_path / "ember.log")
    for long in (False, True):
        seen, threads, order = run_counting(qtbot, runner, long)
        assert seen == [0, 1, 2] and order == ["result", "finished"]
        assert threads == {threading.main_thread()}  # lambdas too: the worker re-emits on the UI thread
    assert runner.shutdown(5)


def test_errors_arrive_typed_and_point_at_the_log(qtbot, tmp_path):
    runner = WorkerRunner(tmp_path / "ember.log")

    def fails_typed():
        raise InvalidInput("bad value", "fix it")

    def fails_bug():
        return 1 / 0

    for fn, message in ((fails_typed, "bad value"), (fails_bug, "ZeroDivisionError")):
        with qtbot.waitSignal(runner.run(fn).error) as blocker:
            pass
        error = blocker.args[0]
        assert isinstance(error, EmberError) and message in error.message
        assert error.log_path == str(tmp_path / "ember.log")
        assert "Traceback" not in error.message and "Traceback" not in error.hint
    assert runner.shutdown(5)


def test_shutdown_cancels_long_jobs_and_waits(qtbot):
    runner = WorkerRunner()
    started = threading.Event()

    def slow(cancel: CancelToken):
        started.set()
        while not cancel.wait(0.01):
            yield "tick"
        return "cancelled"

    cancel = CancelToken()
    worker = Worker(slow, cancel, cancel=cancel)
    runner.start(worker, long=True)
    assert started.wait(5)
    assert runner.busy
    assert runner.shutdown(5)
    assert cancel.cancelled and worker.done.is_set() and not runner.busy
    late = runner.run(counting, 1)  # after shutdown a job never runs
    assert late.cancel.cancelled and late.dropped and not late.done.is_set()
    assert runner.shutdown(5)
