"""`ember serve --model PATH [--embedding-model PATH]`: the models served to other programs over
Ember's OpenAI-compatible API (the same gateway as the app's Server panel)."""

from __future__ import annotations

import signal
import sys

from engine.commands.model_args import add_model_arguments, host_settings, logs_dir
from engine.commands.output import EXIT_OK
from engine.errors import InvalidInput
from engine.jobs import CancelToken
from engine.runtime.registry import HostRegistry, LoadedModel
from engine.runtime.supervisor import HostSettings, RuntimeHost
from engine.server.gateway import Gateway, GatewaySettings, is_loopback, new_api_key, public_name

EMBEDDING_CONTEXT = 512


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="serve GGUF models over an OpenAI-compatible HTTP API")
    add_model_arguments(parser)
    parser.add_argument("--embedding-model", default=None, metavar="PATH",
                        help="also serve this GGUF embedding model at /v1/embeddings")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--api-key", default=None, help="key clients must send as a bearer token (made up if not given)")
    parser.set_defaults(func=run)


def run(args) -> int:
    if not is_loopback(args.host) and not args.api_key:
        raise InvalidInput(f"Serving on {args.host} makes the model reachable from other machines.",
                           "Give --api-key KEY so that only clients with the key can use it.")
    if not 0 <= args.port <= 65535:
        raise InvalidInput(f"--port {args.port} is not a port number.", "Use 1-65535 (0 picks a free one).")
    settings = GatewaySettings(port=args.port, api_key=args.api_key or new_api_key(), address=args.host).checked()
    registry = HostRegistry()
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    signal.signal(signal.SIGTERM, lambda *_: cancel.cancel())
    gateway = None
    try:
        hosts = [("chat", RuntimeHost(host_settings(args), log_dir=logs_dir()), args.model)]
        if args.embedding_model:
            hosts.append(("embedding", RuntimeHost(HostSettings(model_path=args.embedding_model,
                                                                context_length=EMBEDDING_CONTEXT, gpu_layers=0,
                                                                threads=args.threads, role="embedding"),
                                                   log_dir=logs_dir()), args.embedding_model))
        for role, host, path in hosts:
            registry.put(LoadedModel(role, host, path))
            for progress in host.start(cancel):
                sys.stderr.write(f"\r{progress.message}")
            sys.stderr.write("\n")
            if cancel.cancelled:
                return 130
        gateway = Gateway(registry, settings)
        try:
            gateway.start()
        except OSError as exc:
            raise InvalidInput(f"Port {args.port} on {args.host} cannot be used: {exc.strerror or exc}.",
                               "Pick another port with --port (0 picks a free one).") from exc
        shown_host = f"[{args.host}]" if ":" in args.host else args.host
        sys.stdout.write(f"Serving at http://{shown_host}:{gateway.port}/v1\n")
        for role, _host, _path in hosts:
            sys.stdout.write(f"  {role} model: {public_name(registry.get(role))}\n")
        if not args.api_key:
            sys.stdout.write(f"  API key:  {settings.api_key}\n")
        sys.stdout.write("Press Ctrl+C to stop.\n")
        sys.stdout.flush()
        while all(h.alive for _r, h, _p in hosts) and not cancel.wait(0.5):
            pass
        for _role, host, _path in hosts:
            if not host.alive and not cancel.cancelled:
                host.raise_death()
    finally:
        signal.signal(signal.SIGINT, previous)
        if gateway is not None:
            gateway.stop()
        for role in ("chat", "embedding"):
            loaded = registry.take(role)
            if loaded is not None:
                loaded.host.stop()
    return EXIT_OK
