"""Makes the Documents page for docs/screenshots/documents.png: a collection made through the page's
controller, a folder of real documents added (a PDF guide, notes in Markdown, a Word-like HTML page,
some source code, one damaged PDF), indexed by the MiniLM model that Ember's own converter writes.
EMBER_SHOT=indexing shoots while the folder is being indexed; EMBER_SHOT=chunks shows how the guide
was cut.

    /work/shared/tools/screenshot.sh docs/screenshots/documents.png 40 -- \\
        env EMBER_HOME=$(mktemp -d) .venv/bin/python docs/screenshots/documents_screenshot.py
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
from tests.support.embedding_fixtures import minilm_model_dir  # noqa: E402

GUIDE = [
    "Lisbon travel guide. The city spreads over seven hills above the Tagus river.",
    "Getting around. Tram 28 climbs from Martim Moniz through the Alfama district, past the cathedral, "
    "to Graça. Buy a Viva Viagem card at any metro station; a day pass costs 6.80 euros.",
    "Food. Pastel de nata is a custard tart first baked by the monks of the Jerónimos monastery in Belém.",
    "Day trips. Sintra is 40 minutes by train from Rossio station; its palaces open at 9:30.",
]
NOTES = {
    "trip-notes.md": "# Trip notes\n\n## Flights\n\nThe flight lands at 09:40 on Friday; the hotel lets us in "
                     "from 14:00.\n\n## Budget\n\nWe set aside 60 euros a day each for food and transport.\n",
    "packing.md": "# Packing\n\n- walking shoes for the hills\n- a light rain jacket\n- adapters (type F)\n",
    "restaurants.html": "<html><body><h1>Restaurants</h1><p>Cervejaria Ramiro serves seafood until midnight."
                        "</p><p>Book Taberna da Rua das Flores a day ahead.</p></body></html>",
    "budget.py": "DAILY_EUROS = 60\n\n\ndef total(days: int, people: int) -> int:\n"
                 "    return DAILY_EUROS * days * people\n",
    "phrases.txt": "Obrigado / obrigada: thank you.\nQuanto custa? How much is it?\nA conta, por favor: the bill.\n",
}


def prepare(home: Path) -> tuple[Path, Path]:
    """Write the documents and the embedding model; returns (folder, model)."""
    docs = Path(tempfile.mkdtemp(prefix="ember-shot-")) / "Lisbon trip"
    docs.mkdir()
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=13)
    for text in GUIDE:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(docs / "lisbon-guide.pdf"))
    for name, text in NOTES.items():
        (docs / name).write_text(text, encoding="utf-8")
    (docs / "scanned-receipt.pdf").write_bytes(b"%PDF-1.4 a scan that was cut off while copying")
    if os.environ.get("EMBER_SHOT") == "indexing":
        for n in range(40):
            (docs / f"diary-{n:02d}.md").write_text(
                f"# Day {n}\n\n" + "\n\n".join(f"Walked to viewpoint {p} and wrote this down." for p in range(200)),
                encoding="utf-8")
    model = home / "models" / "local" / "all-MiniLM-L6-v2.gguf"
    model.parent.mkdir(parents=True, exist_ok=True)
    for _ in convert_bert(minilm_model_dir(), model, out_type="f16", name="all-MiniLM-L6-v2"):
        pass
    return docs, model


def drive(window, docs: Path, model: Path) -> None:
    window.resize(1380, 860)
    window.move(0, 0)
    window.nav.setCurrentRow(2)
    page = window.stack.currentWidget()
    controller = page.controller
    shot = os.environ.get("EMBER_SHOT", "")

    def make() -> None:
        collection_id = controller.create("Lisbon trip", str(model))
        controller.add_paths(collection_id, [str(docs)])

    def show_chunks() -> None:
        rows = page.documents_model.rows()
        guide = next(r for r in rows if r.document.path.endswith("lisbon-guide.pdf"))
        page.documents.selectRow(page.documents_model.row_of(guide.document.id))
        page.tabs.setCurrentWidget(page.preview)
        page.preview.list.setCurrentRow(1)

    if shot == "chunks":  # once the table shows the indexed files
        controller.index_finished.connect(lambda *_: QTimer.singleShot(800, show_chunks))
    QTimer.singleShot(500, make)


if __name__ == "__main__":
    home = Path(os.environ["EMBER_HOME"])
    folder, embedding_model = prepare(home)
    sys.exit(run_window(on_window=lambda window: drive(window, folder, embedding_model)))
