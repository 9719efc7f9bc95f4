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


def human_size(num_bytes: float) -> str:
    value = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
