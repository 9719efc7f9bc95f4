"""Makes the Chat page look as it does in use, for docs/screenshots/chat.png: the real app start-up,
the starter model loaded, real replies (two chats, then a coding question answered twice so that
◀ 2/2 ▶ shows). Run it under the screenshot tool on a fresh home:

    /work/shared/tools/screenshot.sh docs/screenshots/chat.png 40 -- \\
        env EMBER_HOME=$(mktemp -d) .venv/bin/python docs/screenshots/chat_screenshot.py

EMBER_THEME=dark (or light) picks the theme: docs/screenshots/chat-dark.png is the same run in dark.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.application import run_window  # noqa: E402

TURNS = [
    ("", "Give me three things to do in Lisbon in one day.", 90),
    ("", "Write a haiku about autumn.", 40),
    ("You are a helpful coding assistant. Show code in fenced blocks.",
     "How do I reverse a list in Python? Show a short example.", 110),
]


def drive(window) -> None:
    window.resize(1380, 860)
    window.move(0, 0)
    window.welcome.dismiss()  # the welcome has its own screenshot
    models, chat, replies = window.runtime, window.chat, window.replies
    todo = list(TURNS)
    state = {"loading": False, "regenerated": False}

    def load(entries) -> None:
        if not state["loading"]:
            state["loading"] = True
            models.load(next(e for e in entries if e.source == "starter"), context_length=2048)

    def next_turn(*_args) -> None:
        if replies.generating:
            return
        if todo:
            system, prompt, tokens = todo.pop(0)
            chat.new_session()
            chat.update_settings(system_prompt=system,
                                 sampling={"max_tokens": tokens, "temperature": 0.3, "seed": 11})
            chat.select(chat.session_id)  # show the settings just written
            replies.send(prompt)
        elif not state["regenerated"]:
            state["regenerated"] = True
            last = window.chat_page.message_model.rowCount() - 1
            replies.regenerate(window.chat_page.message_model.item_at(last).id)
        else:
            window.chat_page.select_message(window.chat_page.message_model.rowCount() - 1)
            window.chat_page.composer.prompt.setPlainText("Can you explain what [::-1] does?")

    window.library.library_changed.connect(load)
    models.loaded.connect(next_turn)
    replies.generating_changed.connect(lambda on: on or next_turn())


if __name__ == "__main__":
    sys.exit(run_window(on_window=drive))
