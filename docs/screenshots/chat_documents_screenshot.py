"""Makes a chat that answers from documents, for docs/screenshots/chat-documents.png (the cited reply)
and, with EMBER_SHOT=inspector, docs/screenshots/retrieval-inspector.png. It writes a few real
documents (a PDF, notes in Markdown), indexes them with the MiniLM model converted by Ember's own
converter, loads the starter model, ticks the collection in the chat and asks.

    /work/shared/tools/screenshot.sh docs/screenshots/chat-documents.png 45 -- \\
        env EMBER_HOME=$(mktemp -d) .venv/bin/python docs/screenshots/chat_documents_screenshot.py
    /work/shared/tools/screenshot.sh docs/screenshots/retrieval-inspector.png 45 -- \\
        env EMBER_SHOT=inspector EMBER_HOME=$(mktemp -d) .venv/bin/python docs/screenshots/chat_documents_screenshot.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtCore import QTimer  # noqa: E402

from app.application import run_window  # noqa: E402
from engine.gguf.convert_bert import convert_bert  # noqa: E402
from engine.paths import EmberPaths  # noqa: E402
from engine.rag.indexer import find_files, index_collection  # noqa: E402
from engine.rag.parser import DocumentParser  # noqa: E402
from engine.rag.tokens import HostTokenCounter  # noqa: E402
from engine.runtime.supervisor import HostSettings, RuntimeHost  # noqa: E402
from engine.store.db import connect  # noqa: E402
from engine.store.documents_repo import DocumentsRepository  # noqa: E402
from tests.support.embedding_fixtures import minilm_model_dir  # noqa: E402

GUIDE = [
    "Lisbon travel guide. The city spreads over seven hills above the Tagus river.",
    "Getting around. Tram 28 climbs from Martim Moniz through the Alfama district, past the cathedral, "
    "to Graça. Buy a Viva Viagem card at any metro station; a day pass costs 6.80 euros.",
    "Food. Pastel de nata is a custard tart first baked by the monks of the Jerónimos monastery in Belém.",
]
NOTES = ("# Trip notes\n\n## Flights\n\nThe flight lands at 09:40 on Friday; the hotel lets us in from 14:00.\n\n"
         "## Budget\n\nWe set aside 60 euros a day each for food and transport.\n")
QUESTION = "How do I get through the Alfama district, and what does a day pass cost?"


def prepare(home: Path) -> int:
    """Write the documents and index them; returns the collection's id."""
    work = Path(tempfile.mkdtemp(prefix="ember-shot-"))
    docs = work / "Lisbon trip"
    docs.mkdir()
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=13)
    for text in GUIDE:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(docs / "lisbon-guide.pdf"))
    (docs / "trip-notes.md").write_text(NOTES, encoding="utf-8")
    model = home / "models" / "all-MiniLM-L6-v2.gguf"
    model.parent.mkdir(parents=True, exist_ok=True)
    for _ in convert_bert(minilm_model_dir(), model, out_type="f16"):
        pass
    paths = EmberPaths(home).ensure()
    conn = connect(paths.db)
    repo = DocumentsRepository(conn)
    collection = repo.create_collection("Lisbon trip", embedding_model_path=str(model))
    repo.add_source(collection.id, str(docs), "folder")
    host = RuntimeHost(HostSettings(model_path=str(model), context_length=512, gpu_layers=0, role="embedding"),
                       log_dir=paths.logs)
    try:
        client = host.start_blocking().client()
        with DocumentParser(log_dir=paths.logs) as parser:
            for _ in index_collection(repo, collection.id, find_files([docs]), parser.parse, client.embed,
                                      HostTokenCounter(client)):
                pass
    finally:
        host.stop()
        conn.close()
    return collection.id


def drive(window, collection_id: int) -> None:
    window.resize(1380, 860)
    window.move(0, 0)
    models, chat, replies = window.runtime, window.chat, window.replies
    state = {"loading": False, "asked": False}

    def load(entries) -> None:
        if not state["loading"]:
            state["loading"] = True
            models.load(next(e for e in entries if e.source == "starter"), context_length=2048)

    def ask(*_args) -> None:
        if state["asked"]:
            return
        state["asked"] = True
        chat.new_session()
        chat.update_settings(sampling={"max_tokens": 80, "temperature": 0.2, "seed": 4})
        chat.set_chat_documents([collection_id], "retrieve", 4)
        chat.select(chat.session_id)
        replies.send(QUESTION)

    def answered(on: bool) -> None:
        if on:
            return
        page = window.chat_page
        last = page.message_model.rowCount() - 1
        page.select_message(last)
        if os.environ.get("EMBER_SHOT") == "inspector":
            QTimer.singleShot(300, lambda: page.inspect_retrieval(page.message_model.item_at(last).id))

    window.library.library_changed.connect(load)
    models.loaded.connect(ask)
    replies.generating_changed.connect(answered)


if __name__ == "__main__":
    home = Path(os.environ["EMBER_HOME"])
    collection = prepare(home)
    sys.exit(run_window(on_window=lambda window: drive(window, collection)))
