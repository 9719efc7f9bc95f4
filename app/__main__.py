"""`ember`: with no command it opens the window; with a command it runs the CLI without importing Qt."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    wants_window = not argv or all(arg in ("--debug",) for arg in argv)
    if not wants_window:
        from engine.cli import main as cli_main

        return cli_main(argv)
    from app.application import run_window

    return run_window(debug="--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())
