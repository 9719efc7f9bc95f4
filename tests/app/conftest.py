"""A window on the test's own EMBER_HOME, without a model; and a few seeded chats."""

from __future__ import annotations

import pytest

from app.testing.helpers import close_window, open_window
from app.views.main_window import MainWindow
from engine.jobs import GenerationStats
from engine.store.chats import ChatRepository, Provenance
from engine.store.db import Transaction

PROVENANCE = Provenance(model_name="SmolLM2-135M-Instruct.Q4_1.gguf", model_sha256="ab" * 32, quantization="Q4_1",
                        template_hash="t123", sampling={"temperature": 0.7, "max_tokens": 64}, seed=42)
CODE_REPLY = "Use a list comprehension:\n\n```python\nsquares = [n * n for n in numbers]\n```\n\nThat is all."


@pytest.fixture
def make_window(qtbot, ember_home):
    opened = []

    def make() -> MainWindow:
        window = open_window(ember_home)
        qtbot.addWidget(window)
        opened.append(window)
        return window

    yield make
    for window in opened:
        close_window(window)


@pytest.fixture
def window(make_window):
    return make_window()


def seed_branching_chat(repo: ChatRepository, title: str = "Squares") -> int:
    """user → (reply A | reply B with code, shown) → user → reply (stopped)."""
    session = repo.create_session(title, system_prompt="Be brief.")
    user = repo.add_message(session.id, None, "user", "How do I square numbers?")
    repo.add_message(session.id, user.id, "assistant", "Multiply each by itself.", provenance=PROVENANCE,
                     stats=GenerationStats("stop", completion_tokens=5, ttft_s=0.05, tokens_per_s=40.0))
    code = repo.add_message(session.id, user.id, "assistant", CODE_REPLY, provenance=PROVENANCE,
                            stats=GenerationStats("stop", completion_tokens=20, ttft_s=0.07, tokens_per_s=41.5, seed=42))
    follow = repo.add_message(session.id, code.id, "user", "And the even ones?")
    repo.add_message(session.id, follow.id, "assistant", "Add a condition", status="cancelled", provenance=PROVENANCE,
                     stats=GenerationStats("cancelled", completion_tokens=3))
    return session.id


def seed_long_chat(repo: ChatRepository, messages: int = 1000, title: str = "Long chat") -> int:
    """A chat of `messages` messages (alternating; some Markdown and code), written in one transaction."""
    session = repo.create_session(title)
    conn, parent = repo.conn, None
    with Transaction(conn):
        for i in range(messages):
            role = "user" if i % 2 == 0 else "assistant"
            text = (f"Question {i}: how does part {i} work?" if role == "user" else
                    f"Part **{i}** works like this:\n\n- first\n- second\n\n```python\nprint({i})\n```\n"
                    if i % 10 == 1 else f"Answer {i}: it is fine. " * (1 + i % 4))
            cur = conn.execute(
                "INSERT INTO messages (session_id, parent_id, role, content, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'complete', ?, ?)", (session.id, parent, role, text, i, i))
            parent = cur.lastrowid
        conn.execute("UPDATE sessions SET current_leaf_id = ? WHERE id = ?", (parent, session.id))
    return session.id
