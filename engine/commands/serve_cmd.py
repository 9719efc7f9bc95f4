"""`ember serve --model PATH`: the runtime host started on purpose, an OpenAI-compatible API for other programs."""

from __future__ import annotations

import ipaddress
import secrets
import signal
import sys

from engine.commands.model_args import add_model_arguments, host_settings, logs_dir
from engine.commands.output import EXIT_OK
from engine.errors import InvalidInput
from engine.jobs import CancelToken
from engine.runtime.supervisor import RuntimeHost


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="serve a GGUF model over an OpenAI-compatible HTTP API")
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--api-key", default=None, help="bearer token clients must send (made up if not given)")
    parser.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    if not is_loopback(args.host) and not args.api_key:
        raise InvalidInput(f"Serving on {args.host} makes the model reachable from other machines.",
                           "Give --api-key KEY so that only clients with the key can use it.")
    if not 0 <= args.port <= 65535:
        raise InvalidInput(f"--port {args.port} is not a port number.", "Use 1-65535 (0 picks a free one).")
    api_key = args.api_key or secrets.token_urlsafe(24)
    host = RuntimeHost(host_settings(args, host=args.host, port=args.port, api_key=api_key), log_dir=logs_dir())
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    signal.signal(signal.SIGTERM, lambda *_: cancel.cancel())
    try:
        for progress in host.start(cancel):
            sys.stderr.write(f"\r{progress.message}")
        sys.stderr.write("\n")
        if cancel.cancelled:
            return 130
        shown_host = f"[{args.host}]" if ":" in args.host else args.host
        sys.stdout.write(f"Serving {args.model}\n  base URL: http://{shown_host}:{host.port}/v1\n")
        if not args.api_key:
            sys.stdout.write(f"  API key:  {api_key}\n")
        sys.stdout.write("Press Ctrl+C to stop.\n")
        sys.stdout.flush()
        while host.alive and not cancel.wait(0.5):
            pass
        if not host.alive and not cancel.cancelled:
            host.raise_death()
    finally:
        signal.signal(signal.SIGINT, previous)
        host.stop()
    return EXIT_OK
