"""Makes the Server panel for docs/screenshots/server.png: the starter model loaded, the server on,
and a few requests from another program (the official openai client, streamed and not, and one with
a wrong key) in its list.

    /work/shared/tools/screenshot.sh docs/screenshots/server.png 30 -- \\
        env EMBER_HOME=$(mktemp -d) .venv/bin/python docs/screenshots/server_screenshot.py
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.application import run_window  # noqa: E402


def other_program(base_url: str, key: str, model: str) -> None:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
    for question in ("Name three rivers in Europe.", "What is a bridge for?"):
        client.chat.completions.create(model=model, max_tokens=40, temperature=0.3,
                                       messages=[{"role": "user", "content": question}])
    for _ in client.chat.completions.create(model=model, max_tokens=30, stream=True,
                                            messages=[{"role": "user", "content": "Say hello in French."}]):
        pass
    try:
        openai.OpenAI(base_url=base_url, api_key="ember-wrong-key-from-a-guess", max_retries=0).models.list()
    except openai.AuthenticationError:
        pass


def drive(window) -> None:
    window.resize(1380, 860)
    window.move(0, 0)
    state = {"loading": False}

    def load(entries) -> None:
        if not state["loading"]:
            state["loading"] = True
            window.runtime.load(next(e for e in entries if e.source == "starter"), context_length=2048)

    def serve(_model) -> None:
        window.nav.setCurrentRow(4)
        page = window.stack.currentWidget()
        page.controller.start()
        models = page.controller.models()
        threading.Thread(target=other_program, daemon=True,
                         args=(f"http://127.0.0.1:{page.controller.gateway.port}/v1", page.controller.settings.api_key,
                               models[0]["id"])).start()

    window.library.library_changed.connect(load)
    window.runtime.loaded.connect(serve)


if __name__ == "__main__":
    sys.exit(run_window(on_window=drive))
