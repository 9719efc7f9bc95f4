"""A guard against a reference-count bug of PySide6 6.12's stable-ABI wheels on CPython < 3.12.

Measured here (PySide6 6.12.0, CPython 3.11.7): every call of a Qt method that returns nothing takes
one reference from `None` that it never gave (`label.setText(...)` 100 times: None's count drops by
100), and emitting a signal with a bool or float argument does the same to `True`/`False`. The
wheels seem to assume that these objects are immortal, as they are from Python 3.12 on (PEP 683).
On 3.11 the count reaches zero after some thousands of calls, and the process aborts with
"Fatal Python error: none_dealloc" (or bool_dealloc): a window that paints, streams or scrolls
would die within minutes.

`protect_singletons()` detects the bug (one void call, one bool emit) and, only then, gives None,
True and False a very large reference count, which is what immortality means in 3.12. It is
imported by every Qt-side package of the app, so the window, the tests and the benchmarks get it
before they use Qt. Where the bug is absent it does nothing.
"""

from __future__ import annotations

import sys

LARGE = 1 << 40  # no process makes a trillion Qt calls


def _leaks() -> bool:
    from PySide6.QtCore import QObject, Signal

    class Probe(QObject):
        flag = Signal(bool)

    probe = Probe()
    before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(4):
        probe.setObjectName("probe")
        probe.flag.emit(True)
    after = sys.getrefcount(None), sys.getrefcount(True)
    return after[0] < before[0] or after[1] < before[1]


def protect_singletons() -> bool:
    """Apply the guard if this PySide6 needs it. Returns True when it was applied."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12) or hasattr(sys, "gettotalrefcount"):
        return False  # immortal singletons already, or a debug build whose object header differs
    if not _leaks():
        return False
    import ctypes

    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += LARGE  # ob_refcnt is the header's first field
    return True


APPLIED = protect_singletons()
