"""Every Qt model passes qtmodeltester and gives views and screen readers what they need."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt

from app.models.library_model import EntryRole, LibraryModel, PathRole
from app.models.message_model import DisplayMessage, MessageIdRole, MessageModel, MessageRole
from app.models.session_list_model import (
    HitMessageRole,
    SessionIdRole,
    SessionListModel,
    SessionRow,
    SubtitleRole,
)
from engine.gguf.inspect import ModelInfo
from engine.jobs import GenerationStats
from engine.library.library import LibraryEntry
from engine.store.chats import Message, Session


def message(i: int, role: str = "user", content: str = "hello", status: str = "complete") -> Message:
    return Message(i, 1, i - 1 if i > 1 else None, role, content, status, time.time(),
                   stats=GenerationStats("stop", completion_tokens=3) if role == "assistant" else None)


def test_session_list_model(qtmodeltester, qtbot):
    model = SessionListModel()
    now = time.time()
    model.set_rows([SessionRow(Session(1, "First", now, now)),
                    SessionRow(Session(2, "Second", now - 5000, now - 5000), "a [match] here", 17)])
    qtmodeltester.check(model)
    assert model.rowCount() == 2
    assert model.index(1).data(SessionIdRole) == 2 and model.index(1).data(HitMessageRole) == 17
    assert model.index(1).data(SubtitleRole) == "a «match» here"
    assert model.index(0).data(SubtitleRole) == "just now"
    assert "Chat First" in model.index(0).data(Qt.ItemDataRole.AccessibleTextRole)
    assert model.row_of(2) == 1 and model.row_of(9) == -1
    assert model.flags(model.index(0)) & Qt.ItemFlag.ItemIsEditable
    with qtbot.waitSignal(model.rename_requested) as renamed:
        assert model.setData(model.index(0), "  Renamed  ")
    assert renamed.args == [1, "Renamed"]
    assert not model.setData(model.index(0), "   ")  # an empty name is refused
    model.set_sessions([])
    qtmodeltester.check(model)


def test_message_model_streams_into_one_row_and_updates_only_what_changed(qtmodeltester, qtbot):
    model = MessageModel()
    model.set_messages([DisplayMessage(message(1)), DisplayMessage(message(2, "assistant", ""), 2, 3)])
    qtmodeltester.check(model)
    with qtbot.waitSignal(model.dataChanged) as blocker:
        model.append_text(2, "Hi")
    assert blocker.args[0].row() == 1
    model.append_text(2, " there")
    assert model.index(1).data() == "Hi there" and model.index(1).data(MessageIdRole) == 2
    said = model.index(1).data(Qt.ItemDataRole.AccessibleTextRole)
    assert said.startswith("Assistant") and "version 2 of 3" in said and "Hi there" in said
    assert model.index(1).data(MessageRole).sibling_count == 3

    resets, inserted, removed = [], [], []
    model.modelReset.connect(lambda: resets.append(1))
    model.rowsInserted.connect(lambda _p, first, last: inserted.append((first, last)))
    model.rowsRemoved.connect(lambda _p, first, last: removed.append((first, last)))
    # the same chat, one reply more: one row inserted, no reset
    model.set_messages([DisplayMessage(message(1)), DisplayMessage(message(2, "assistant", "Hi there"), 2, 3),
                        DisplayMessage(message(3))])
    assert inserted == [(2, 2)] and not resets
    # another branch under the first message: the tail is replaced
    model.set_messages([DisplayMessage(message(1)), DisplayMessage(message(9, "assistant", "Other"), 3, 3)])
    assert removed == [(1, 2)] and inserted[-1] == (1, 1) and not resets
    # another chat: a reset
    model.set_messages([DisplayMessage(message(20))])
    assert resets and model.rowCount() == 1
    qtmodeltester.check(model)
    interrupted = DisplayMessage(message(21, "assistant", "part", status="interrupted"))
    model.set_messages([interrupted])
    assert "interrupted" in model.index(0).data(Qt.ItemDataRole.AccessibleTextRole)


def test_library_model(qtmodeltester, smollm2_path):
    info = ModelInfo(path=str(smollm2_path), file_name=smollm2_path.name, file_size=90_000_000,
                     architecture="llama", name="SmolLM2", parameters=135_000_000, quantization="Q4_1",
                     context_length=8192)
    good = LibraryEntry(str(smollm2_path), "starter", info)
    bad = LibraryEntry("/models/broken.gguf", "added", None, error="not a GGUF file")
    model = LibraryModel()
    model.set_entries([good, bad])
    qtmodeltester.check(model)
    assert model.index(0, 0).data() == f"{smollm2_path.name}  (starter)"
    assert model.index(1, 0).data() == "broken.gguf — unusable"
    assert model.index(0, 0).data(EntryRole) is good and model.index(1, 0).data(PathRole) == "/models/broken.gguf"
    assert "135 M parameters" in model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert "not a GGUF file" in model.index(1, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert not model.flags(model.index(1, 0)) & Qt.ItemFlag.ItemIsEnabled  # listed, with the reason, not pickable
    assert model.row_of(str(smollm2_path)) == 0 and model.row_of("nope") == -1


def test_library_model_columns_serve_the_models_page(smollm2_path):
    info = ModelInfo(path=str(smollm2_path), file_name=smollm2_path.name, file_size=90_000_000,
                     architecture="llama", name="SmolLM2", parameters=135_000_000, quantization="Q4_1",
                     context_length=8192)
    model = LibraryModel()
    model.set_entries([LibraryEntry(str(smollm2_path), "starter", info, measured_tps=51.2)])
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    row = {h: model.index(0, c).data() for c, h in enumerate(headers)}
    assert row["Parameters"] == "135 M" and row["Quant"] == "Q4_1" and row["Context"] == "8192"
    assert row["Speed"] == "51 tokens/s (measured)" and row["Source"] == "starter model"


def test_the_budget_text_names_every_segment():
    from app.views.budget_bar import describe_budget
    from engine.chat.budget import ContextBudget

    plain = describe_budget(ContextBudget(4096, 20, 300, 512))
    assert "system 20" in plain and "chat 300" in plain and "reply 512" in plain and "documents" not in plain
    with_docs = describe_budget(ContextBudget(4096, 20, 300, 512, documents_tokens=900, dropped_messages=4))
    assert "documents 900" in with_docs and "free 2,364" in with_docs and "4 oldest messages" in with_docs
