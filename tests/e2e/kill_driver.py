"""Runs the real app (app.application.run_window, lock and recovery included) and drives it from the
inside: loads the starter model, starts a long reply and prints `STREAMING <message id> <host pid>` once
text arrives. The test then SIGKILLs this process in the middle of the reply."""

from __future__ import annotations

import sys

from app.application import run_window


def drive(window) -> None:
    models, chat, replies = window.runtime, window.chat, window.replies
    models.threads = 1
    state = {"loading": False, "printed": False}

    def load(entries) -> None:
        starter = next(e for e in entries if e.source == "starter")
        if not state["loading"]:
            state["loading"] = True
            models.load(starter, context_length=4096, gpu_layers=0)

    def send(_host) -> None:
        chat.new_session()
        chat.update_settings(sampling={"max_tokens": 3000, "temperature": 0.8, "seed": 1})
        replies.send("Write a very long story about a lighthouse keeper and her cat.")

    def streaming(message_id: int, _text: str) -> None:
        if not state["printed"]:
            state["printed"] = True
            print(f"STREAMING {message_id} {window.services.chat_model.host.pid}", flush=True)

    window.library.library_changed.connect(load)
    models.loaded.connect(send)
    models.failed.connect(lambda error: print(f"FAILED {error}", flush=True))
    replies.error.connect(lambda error: print(f"FAILED {error}", flush=True))
    replies.text_arrived.connect(streaming)


if __name__ == "__main__":
    sys.exit(run_window(on_window=drive))
