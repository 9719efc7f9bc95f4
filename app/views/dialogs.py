"""The Chat page's dialogs. None of them blocks the window: each is opened with `open()`/`show()` and
answers through signals."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.models.message_model import STATUS_WORDS, DisplayMessage
from app.views.budget_bar import describe_budget
from app.views.widgets import named
from engine.chat.budget import ContextBudget


def provenance_rows(item: DisplayMessage) -> list[tuple[str, str]]:
    """What the details dialog shows, as (label, value) rows."""
    m, p, s = item.message, item.message.provenance, item.message.stats
    rows = [("Status", "complete" if m.status == "complete" else STATUS_WORDS.get(m.status, m.status))]
    if item.sibling_count > 1:
        rows.append(("Version", f"{item.sibling_index} of {item.sibling_count}"))
    if m.role == "assistant":
        rows += [("Model file", p.model_name or "unknown"),
                 ("SHA-256", p.model_sha256 or "not computed (the reply was written before the file was checked)"),
                 ("Quantization", p.quantization or "unknown"),
                 ("Adapter", f"{p.adapter_path} at strength {p.adapter_scale or 1.0:g}" if p.adapter_path
                  else "none (the model as it is)"),
                 ("Template hash", p.template_hash or "none (built-in format)"),
                 ("Seed", str(s.seed if s and s.seed is not None else p.seed if p.seed is not None else "random")),
                 ("Sampling", json.dumps(p.sampling or {}, sort_keys=True))]
    if s is not None:
        rows += [("Time to first token", f"{s.ttft_s:.3f} s" if s.ttft_s is not None else "-"),
                 ("Speed", f"{s.tokens_per_s:.1f} tokens/s" if s.tokens_per_s else "-"),
                 ("Reply tokens", str(s.completion_tokens)),
                 ("Prompt tokens", f"{s.prompt_tokens} ({s.cached_tokens} reused from the cache)"),
                 ("Stop reason", s.stop_reason)]
    if m.error:
        rows.append(("Error", m.error))
    return rows


class ProvenanceDialog(QDialog):
    def __init__(self, item: DisplayMessage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("provenanceDialog")
        self.setWindowTitle("Reply details")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.rows = provenance_rows(item)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        for label, value in self.rows:
            field = QLabel(value)
            field.setObjectName(f"provenance{label.replace(' ', '').replace('-', '')}")
            field.setAccessibleName(label)
            field.setWordWrap(True)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                          | Qt.TextInteractionFlag.TextSelectableByKeyboard)
            form.addRow(f"{label}:", field)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = named(QPushButton("Copy all"), "copyProvenanceButton", "Copy the details")
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self.copy_all)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.resize(560, self.sizeHint().height())

    def text(self) -> str:
        return "\n".join(f"{label}: {value}" for label, value in self.rows)

    def copy_all(self) -> None:
        QGuiApplication.clipboard().setText(self.text())


def overflow_box(budget: ContextBudget, parent: QWidget) -> QMessageBox:
    """Asks before anything is cut. Buttons: dropOldestButton, cancelSendButton. Opened, not exec'd."""
    box = QMessageBox(QMessageBox.Icon.Warning, "The chat no longer fits", "", parent=parent)
    box.setObjectName("overflowDialog")
    box.setText(f"This chat needs {budget.needed:,} tokens, but the model's context holds "
                f"{budget.context_length:,}.")
    box.setInformativeText(
        "Drop the oldest turns for this reply? They stay in the chat; only the model stops seeing them. "
        f"Your system prompt is kept.\n\n{describe_budget(budget)}.")
    drop = box.addButton("Drop oldest turns", QMessageBox.ButtonRole.AcceptRole)
    drop.setObjectName("dropOldestButton")
    cancel = box.addButton("Don't send", QMessageBox.ButtonRole.RejectRole)
    cancel.setObjectName("cancelSendButton")
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    return box
