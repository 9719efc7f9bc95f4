"""`ember <command>`: the engine from a terminal, without Qt.

Exit codes: 0 ok, 1 error (one line, or {"error", "hint"} with --json), 2 usage, 130 Ctrl+C.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from engine import __version__
from engine.commands.output import EXIT_INTERRUPTED, EXIT_USAGE, report_error
from engine.errors import EmberError

# Each module defines register(subparsers); its parser sets `func(args) -> int`.
COMMAND_MODULES = [
    "engine.commands.inspect_cmd",
    "engine.commands.chat_cmd",
    "engine.commands.serve_cmd",
    "engine.commands.hub_cmd",
    "engine.commands.rag_cmd",
    "engine.commands.bench_cmd",
    "engine.commands.finetune_cmd",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors exit 2 with one line
        self.print_usage(sys.stderr)
        sys.stderr.write(f"ember: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ember", description="Ember: language models on your own machine.")
    parser.add_argument("--version", action="version", version=f"ember {__version__}")
    parser.add_argument("--debug", action="store_true", help="log more")
    subparsers = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command group not built yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except EmberError as error:
        return report_error(error, getattr(args, "json", False))
    except KeyboardInterrupt:
        sys.stderr.write("ember: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug of ours: the traceback goes to the log, the user gets one line
        log_path = _log_unexpected(exc)
        error = EmberError(f"Unexpected error: {type(exc).__name__}: {exc}", f"Details are in {log_path}.")
        return report_error(error, getattr(args, "json", False))


def _log_unexpected(exc: BaseException) -> str:
    import traceback

    from engine.paths import EmberPaths

    path = EmberPaths.from_env().logs / "cli.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write("".join(traceback.format_exception(exc)))
    except OSError:
        return "(the log could not be written)"
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
