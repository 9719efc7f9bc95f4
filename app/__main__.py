"""`ember`: with no command it opens the window; with a command it runs the CLI without importing Qt.

Two calls are not for users: `ember --child MODULE ...` runs one of Ember's child processes (in the
bundle, where there is no `python -m`; see engine/child_command.py), and `ember --self-test` checks a
build end to end (app/self_test.py).
"""

from __future__ import annotations

import sys

from engine.child_command import CHILD_FLAG, forget_bundle_library_path, run_child

SELF_TEST_FLAG = "--self-test"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    forget_bundle_library_path()
    if argv[:1] == [CHILD_FLAG]:
        return run_child(argv[1:])
    if argv[:1] == [SELF_TEST_FLAG]:
        from app.self_test import main as self_test_main

        return self_test_main(argv[1:])
    wants_window = not argv or all(arg in ("--debug",) for arg in argv)
    if not wants_window:
        from engine.cli import main as cli_main

        return cli_main(argv)
    from app.application import run_window

    return run_window(debug="--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())
