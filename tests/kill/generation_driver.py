"""The app's chat path without the window: take the home (lock, recovery, replies left streaming marked
interrupted), load the chat model, and send turns one after another in one chat, each reply saved while
it streams. Prints `HOST <pid>` once the model runs, `TURN <message id>` when a reply starts and
`DONE <message id> <status>` when it ends. The kill test SIGKILLs it at random points.

    python -m tests.kill.generation_driver MODEL.gguf --turns N --max-tokens M
"""

from __future__ import annotations

import argparse
import sys

from app.application import open_home
from engine.chat.conversation import ModelIdentity
from engine.chat.turn import assemble_turn
from engine.paths import EmberPaths
from engine.runtime.registry import LoadedModel
from engine.runtime.supervisor import HostSettings, RuntimeHost

PROMPTS = ["Tell a long story about a lighthouse keeper and her cat.",
           "Describe, step by step, how bread is baked in a village oven.",
           "Write a long letter from a sailor to his sister about the sea."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--turns", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    lock, services = open_home(EmberPaths.from_env())
    try:
        host = RuntimeHost(HostSettings(model_path=args.model, context_length=1024, gpu_layers=0, threads=1),
                           log_dir=services.paths.logs)
        host.start_blocking()
        services.hosts.put(LoadedModel("chat", host, args.model))
        print(f"HOST {host.pid}", flush=True)
        session = services.chats.create_session(sampling={"max_tokens": args.max_tokens, "temperature": 0.8,
                                                          "seed": 7})
        identity = ModelIdentity(name=host.settings.model_path)
        for turn in range(args.turns):
            prompt = PROMPTS[turn % len(PROMPTS)]
            request = services.conversation.request_send(session.id, prompt, 1024)
            assembled = assemble_turn(host.client(), request, drop_oldest=True)
            pending = services.conversation.prepare_send(session.id, prompt, identity)
            print(f"TURN {pending.assistant_message_id}", flush=True)
            for _ in services.conversation.stream_reply(pending, host.client(), assembled.messages):
                pass
            status = services.chats.get_message(pending.assistant_message_id).status
            print(f"DONE {pending.assistant_message_id} {status}", flush=True)
    finally:
        services.close()
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
