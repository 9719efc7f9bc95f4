"""Breaking a blocked network read from another thread: what every cancel of a stream does."""

from __future__ import annotations

import socket


def shut_down(sock: socket.socket | None) -> None:
    """Shut a socket down in both directions, so a read blocked on it returns at once (cancel).

    Closing is not enough: a read blocked in another thread keeps the file descriptor alive."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed, or never connected
