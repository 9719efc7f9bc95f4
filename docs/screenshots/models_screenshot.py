"""Makes the Models page look as it does in use, for docs/screenshots/models*.png: the real app, its
Hub calls answered by the stand-in Hub of the tests on 127.0.0.1 (the SmolLM2 repo with the real
file, and a 7B repo whose files are only listed). Run it under the screenshot tool on a fresh home:

    /work/shared/tools/screenshot.sh docs/screenshots/models.png 25 -- \\
        env EMBER_HOME=$(mktemp -d) .venv/bin/python docs/screenshots/models_screenshot.py discover
    /work/shared/tools/screenshot.sh docs/screenshots/models-downloads.png 25 -- \\
        env EMBER_HOME=$(mktemp -d) .venv/bin/python docs/screenshots/models_screenshot.py downloads
    (and `library` into models-library.png)

`discover`: a search, the 7B repo's card and files with their fit and speed on this machine.
`downloads`: the SmolLM2 file on its way over a slow line (bytes, speed, time left).
`library`: the same file downloaded and verified, in the library beside the starter model.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.application import run_window  # noqa: E402
from engine.paths import starter_model  # noqa: E402
from tests.support.hub_fixtures import SMOL_FILE, SMOL_REPO, populate  # noqa: E402
from tests.support.hub_server import StandInHub  # noqa: E402

SEVEN_B = "TheBloke/Mistral-7B-Instruct-v0.2-GGUF"


def drive(window, view: str, hub: StandInHub) -> None:
    window.resize(1380, 860)
    window.move(0, 0)
    window.nav.setCurrentRow(1)
    page = window.stack.currentWidget()
    c = page.controller
    if view == "discover":
        page.query_edit.setText("instruct")
        c.results_ready.connect(lambda results: page.results_view.selectRow(
            next(i for i, r in enumerate(results) if r.repo_id == SEVEN_B)))
        page.search()
        return
    if view == "downloads":
        hub.faults.rate = 5_000_000  # a slow line, so that the download is on its way in the picture

    def on_detail(detail, choices) -> None:
        c.detail_ready.disconnect(on_detail)  # once: the download's change notice refits the files again
        c.download(next(ch for ch in choices if ch.file.name == SMOL_FILE))
        page.tabs.setCurrentIndex(1 if view == "downloads" else 2)
        page.downloads_view.selectRow(0)

    def on_library(entries) -> None:
        rows = [i for i, e in enumerate(entries) if e.source == "hub"]
        if view == "library" and rows:
            page.library_view.selectRow(rows[0])

    c.detail_ready.connect(on_detail)
    page.library.library_changed.connect(on_library)
    c.show_repo(SMOL_REPO, 4096)


def main() -> int:
    view = sys.argv[1] if len(sys.argv) > 1 else "discover"
    with populate(StandInHub().start(), starter_model()) as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        return run_window(on_window=lambda window: drive(window, view, hub))


if __name__ == "__main__":
    sys.exit(main())
