"""Makes the source viewer look as it does when a citation is followed, for docs/screenshots/source-viewer.png:
the real window, and over it the viewer on page 2 of a three-page PDF written here with fpdf2, the
cited chunk's lines highlighted. Run it under the screenshot tool on a fresh home:

    /work/shared/tools/screenshot.sh docs/screenshots/source-viewer.png 12 -- \\
        env EMBER_HOME=$(mktemp -d) .venv/bin/python docs/screenshots/source_viewer_screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtWidgets import QApplication  # noqa: E402

from app.application import run_window  # noqa: E402
from app.controllers.source_controller import SourceController  # noqa: E402
from app.views.source_viewer import open_source  # noqa: E402
from engine.store.chat_documents_repo import MessageSource  # noqa: E402

PAGES = [
    ("1. Installing the grinder", [
        "Unpack the grinder and remove every piece of tape and foam from the hopper and the burr chamber. "
        "Place it on a dry, level surface at least ten centimetres from the wall, so that air can reach the vent.",
        "Plug it into an earthed socket. The status light blinks twice when the grinder is ready.",
    ]),
    ("2. Cleaning the burrs", [
        "Coffee oils build up on the burrs and slowly change the taste of every cup. Clean them once a month, "
        "or every two weeks if you grind oily, dark roasts.",
        "Before you start, unplug the grinder and empty the hopper. Turn the upper burr anticlockwise until it "
        "lifts out, then brush both burrs with the supplied brush. Never wash the burrs in water: dry them with "
        "a cloth and let them air for an hour before you put them back.",
        "Put the upper burr back by turning it clockwise until it clicks, then set the grind size again; the "
        "marks on the collar show the size you used before.",
        "If the grinder still sounds rough after cleaning, see section 4.",
    ]),
    ("3. Grind sizes", [
        "Fine settings (1-5) suit espresso, medium settings (6-14) suit filter coffee, and coarse settings "
        "(15-20) suit a French press.",
    ]),
]
CITED = PAGES[1][1][1]


def write_manual(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_margins(22, 22)
    for title, paragraphs in PAGES:
        pdf.add_page()
        pdf.set_font("helvetica", "B", size=16)
        pdf.multi_cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        pdf.set_font("helvetica", size=12)
        for text in paragraphs:
            pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(5)
    pdf.output(str(path))
    return path


def drive(window) -> None:
    window.resize(1380, 860)
    window.move(0, 0)
    manual = write_manual(Path(tempfile.mkdtemp(prefix="ember-shot-")) / "grinder-manual.pdf")
    source = MessageSource(rank=1, number=2, chunk_id=None, collection_id=None, path=str(manual), kind="pdf",
                           page_start=2, page_end=2, line_start=None, line_end=None,
                           heading_path=("Grinder manual", "2. Cleaning the burrs"), text=CITED)
    controller = SourceController(window.runner, window.services.paths.logs, window)
    QApplication.instance().aboutToQuit.connect(controller.close)  # stops the document child
    viewer = open_source(controller, source, window)
    viewer.resize(820, 820)
    viewer.move(280, 20)


def main() -> int:
    return run_window(on_window=drive)


if __name__ == "__main__":
    sys.exit(main())
