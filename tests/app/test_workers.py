"""The generic worker: generator items become progress, the return value the result, errors EmberErrors."""

from __future__ import annotations

from app.workers import Worker, WorkerPools
from engine.errors import EmberError, InvalidInput


def counting(n, cancel=None):
    yield from range(n)
    return "done"


def test_generator_progress_and_result(qtbot):
    pools = WorkerPools()
    worker = Worker(counting, 3)
    seen = []
    worker.signals.progress.connect(seen.append)
    with qtbot.waitSignal(worker.signals.result) as result, qtbot.waitSignal(worker.signals.finished):
        pools.start(worker, long=True)
    assert seen == [0, 1, 2] and result.args == ["done"]
    assert pools.wait(5000)


def test_errors_arrive_typed(qtbot):
    pools = WorkerPools()

    def fails_typed():
        raise InvalidInput("bad value", "fix it")

    def fails_bug():
        return 1 / 0

    for fn, message in ((fails_typed, "bad value"), (fails_bug, "ZeroDivisionError")):
        worker = Worker(fn)
        with qtbot.waitSignal(worker.signals.error) as blocker:
            pools.start(worker)
        assert isinstance(blocker.args[0], EmberError) and message in blocker.args[0].message
    assert pools.wait(5000)
