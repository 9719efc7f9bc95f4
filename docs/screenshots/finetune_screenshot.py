"""Makes the Fine-tune page for docs/screenshots/finetune-training.png (the loss chart after training),
with EMBER_SHOT=adapter docs/screenshots/finetune-adapter.png (the adapter and its self-test), and with
EMBER_SHOT=evaluate docs/screenshots/finetune-evaluate.png (base and adapter side by side).
It reads a document with an invented fact, takes reviewed question/answer pairs about it, plans,
trains 24 steps of LoRA on the CPU with the starter model, exports and tests the adapter.

    /work/shared/tools/screenshot.sh docs/screenshots/finetune-training.png 240 -- \\
        env EMBER_HOME=$(mktemp -d) .venv/bin/python docs/screenshots/finetune_screenshot.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtCore import QTimer  # noqa: E402

from app.application import run_window  # noqa: E402
from tests.support.finetune_fixtures import FACT_DOCUMENT, FACT_PAIRS, PARAPHRASE  # noqa: E402


def drive(window) -> None:
    window.resize(1380, 860)
    window.move(0, 0)
    docs = Path(tempfile.mkdtemp(prefix="ember-shot-")) / "Bridges"
    docs.mkdir()
    (docs / "velkaran.md").write_text(FACT_DOCUMENT, encoding="utf-8")
    window.nav.setCurrentRow(3)
    page = window.stack.currentWidget()
    c = page.controller
    c.threads = os.cpu_count() or 2

    def read() -> None:
        page.data.add_paths([str(docs)])
        page.data.read_button.click()

    def pairs(_report) -> None:
        page.data.add_pairs(FACT_PAIRS, "reviewed")
        page.data.probes.setPlainText(PARAPHRASE)
        QTimer.singleShot(1500, page.data.preview_button.click)

    def plan(_dataset) -> None:
        page.tabs.setCurrentIndex(1)
        page.preset.setCurrentIndex(0)
        page.rank.setValue(8)
        page.steps.setValue(24)
        page.seq_len.setValue(96)
        page.learning_rate.setValue(0.002)
        page.name.setText("Velkaran bridge")
        QTimer.singleShot(1500, page.plan_button.click)

    def train(_plan) -> None:
        page.tabs.setCurrentIndex(2)
        QTimer.singleShot(1500, page.train_button.click)

    def tested(*_args) -> None:
        shot = os.environ.get("EMBER_SHOT")
        if shot == "evaluate":
            page.tabs.setCurrentIndex(4)
            QTimer.singleShot(500, page.evaluation.run_button.click)
        elif shot != "adapter":
            page.tabs.setCurrentIndex(2)

    c.passages_ready.connect(pairs)
    c.dataset_ready.connect(plan)
    c.plan_ready.connect(train)
    c.tested.connect(tested)
    QTimer.singleShot(1500, read)


if __name__ == "__main__":
    sys.exit(run_window(on_window=drive))
