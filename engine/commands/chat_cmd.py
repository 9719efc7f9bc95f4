"""`ember chat --model PATH PROMPT` (or `--endpoint URL --remote-model NAME`): stream one reply to
stdout. Writes nothing to ember.db."""

from __future__ import annotations

import signal
import sys

from engine.commands.model_args import add_model_arguments, add_remote_arguments, chat_host
from engine.commands.output import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, print_json
from engine.jobs import CancelToken
from engine.runtime.sampling import Sampling


def register(subparsers) -> None:
    parser = subparsers.add_parser("chat", help="chat with a GGUF model from the terminal")
    add_model_arguments(parser, required=False)
    add_remote_arguments(parser)
    parser.add_argument("--system", default="", help="system prompt")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("prompt", help="what to say")
    parser.set_defaults(func=run)


def run(args) -> int:
    sampling = Sampling(temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens)
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": args.prompt})
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    host = chat_host(args)
    try:
        for _ in host.start(cancel):
            pass
        if host.notice and not args.json:
            sys.stderr.write(f"note: {host.notice}\n")
        parts: list[str] = []
        stats = None
        for event in host.client().stream_chat(messages, sampling, cancel):
            if event.stats is not None:
                stats = event.stats
            else:
                parts.append(event.text)
                if not args.json:
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
    finally:
        signal.signal(signal.SIGINT, previous)
        host.stop()
    if stats is None:  # cancelled while loading
        return EXIT_INTERRUPTED
    if args.json:
        print_json({"text": "".join(parts), "prompt_tokens": stats.prompt_tokens,
                    "completion_tokens": stats.completion_tokens, "ttft_s": stats.ttft_s,
                    "tokens_per_s": stats.tokens_per_s, "stop_reason": stats.stop_reason,
                    "error": stats.error, "template": host.template, "notice": host.notice})
    else:
        sys.stdout.write("\n")
        if stats.error:
            sys.stderr.write(f"ember: {stats.error}\n")
    if stats.stop_reason == "cancelled":
        return EXIT_INTERRUPTED
    return EXIT_ERROR if stats.stop_reason == "error" else EXIT_OK
