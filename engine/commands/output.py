"""How CLI commands speak: plain text for people, one JSON object with --json, typed errors as one line."""

from __future__ import annotations

import json
import sys

from engine.errors import EmberError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def print_json(value) -> None:
    """stdout holds only this JSON when --json is given."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def report_error(error: EmberError, as_json: bool) -> int:
    if as_json:
        print_json(error.to_dict())
    else:
        sys.stderr.write(f"ember: {error.message}\n")
        if error.hint:
            sys.stderr.write(f"hint: {error.hint}\n")
    return EXIT_ERROR


