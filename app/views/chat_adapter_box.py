"""The chat's LoRA adapter: which one (or none) answers in this chat, and how strongly.

The choice is saved with the chat like its other settings; the reply controller puts it on the loaded
model before the next turn, in place (no reload), so trying another strength costs one prompt.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel

from app.views.widgets import named

NO_ADAPTER = "None (the model as it is)"
MAX_SCALE = 4.0  # the store refuses more (engine.store.chats.MAX_ADAPTER_SCALE)


class AdapterCombo(QComboBox):
    """A combo box that says when it is about to open, so its list is read fresh (a new adapter shows)."""

    opening = Signal()

    def showPopup(self) -> None:  # noqa: N802 (Qt's name)
        self.opening.emit()
        super().showPopup()


class ChatAdapterBox(QGroupBox):
    changed = Signal()  # the user picked another adapter or strength
    adapters_wanted = Signal()  # the list is about to show: the page hands it fresh adapters

    def __init__(self, parent=None) -> None:
        super().__init__("Adapter", parent)
        self.setObjectName("chatAdapterBox")
        form = QFormLayout(self)
        self.combo = named(AdapterCombo(), "adapterCombo", "LoRA adapter for this chat",
                           "A fine-tuned adapter (Fine-tune page) that changes how the model answers in this chat")
        self.combo.addItem(NO_ADAPTER, None)
        self.scale = named(QDoubleSpinBox(), "adapterScaleSpin", "Adapter strength",
                           "1 is the strength it was trained at; 0 turns it off; above 1 exaggerates it")
        self.scale.setRange(0.0, MAX_SCALE)
        self.scale.setSingleStep(0.1)
        self.scale.setDecimals(2)
        self.scale.setValue(1.0)
        self.note = named(QLabel(""), "adapterNoteLabel", "About the adapter")
        self.note.setWordWrap(True)
        form.addRow("Use", self.combo)
        form.addRow("Strength", self.scale)
        form.addRow(self.note)
        self._adapters: dict[str, object] = {}  # gguf path -> AdapterRecord
        self._model_path: str | None = None
        self.combo.opening.connect(self.adapters_wanted)
        self.combo.activated.connect(self._picked)
        self.scale.valueChanged.connect(lambda _value: self.changed.emit())
        self._update_note()

    # --- what there is to choose ----------------------------------------------------------------
    def set_adapters(self, adapters, model_path: str | None) -> None:
        """List these adapters (AdapterRecord); those trained on another model than `model_path` say so."""
        chosen = self.adapter_path()
        self._adapters = {str(a.gguf): a for a in adapters}
        self._model_path = model_path
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(NO_ADAPTER, None)
        for path, adapter in self._adapters.items():
            base = _base_path(adapter)
            other = model_path and base and not _same_file(base, model_path)
            label = adapter.name + (f"  (for {Path(base).name})" if other else "")
            self.combo.addItem(label, path)
            self.combo.setItemData(self.combo.count() - 1, _describe(adapter), Qt.ItemDataRole.ToolTipRole)
        self._select(chosen)
        self.combo.blockSignals(False)
        self._update_note()

    # --- the chat's choice ----------------------------------------------------------------------
    def show_choice(self, adapter_path: str | None, scale: float) -> None:
        """Show a chat's adapter (without emitting `changed`)."""
        self.combo.blockSignals(True)
        self.scale.blockSignals(True)
        self._select(adapter_path)
        self.scale.setValue(scale if scale is not None else 1.0)
        self.scale.blockSignals(False)
        self.combo.blockSignals(False)
        self._update_note()

    def adapter_path(self) -> str | None:
        return self.combo.currentData()

    def values(self) -> dict:
        return {"adapter_path": self.adapter_path(), "adapter_scale": self.scale.value()}

    def _select(self, path: str | None) -> None:
        index = self.combo.findData(path) if path else 0
        if path and index < 0:  # the chat's adapter is no longer in the folder: keep it, marked
            self.combo.addItem(f"{Path(path).parent.name} (missing)", path)
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(max(index, 0))

    def _picked(self, _index: int) -> None:
        self._update_note()
        self.changed.emit()

    def _update_note(self) -> None:
        path = self.adapter_path()
        self.scale.setEnabled(path is not None)
        if path is None:
            self.note.setText("Train one on the Fine-tune page to teach the model your documents.")
            return
        adapter = self._adapters.get(path)
        if adapter is None:
            self.note.setText(f"{path} is not in the adapters folder any more: the next reply will say so. "
                              "Pick another one or none.")
            return
        base = _base_path(adapter)
        if base and self._model_path and not _same_file(base, self._model_path):
            self.note.setText(f"Trained on {Path(base).name}, not on the loaded model: load that model to use it.")
        else:
            self.note.setText("Applied from the next reply, without reloading the model.")


def _same_file(a: str, b: str) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def _base_path(adapter) -> str | None:
    return (adapter.record.get("base_model") or {}).get("path")


def _describe(adapter) -> str:
    record = adapter.record
    lines = [f"Adapter {adapter.name}"]
    base = _base_path(adapter)
    if base:
        lines.append(f"Base model: {Path(base).name}")
    if record.get("mode"):
        lines.append(f"Data: {record['mode']}")
    if record.get("steps"):
        lines.append(f"Steps: {record['steps']}")
    losses = [f"{name} {record[key]:.3f}" for key, name in (("train_loss", "training loss"), ("eval_loss", "held-out loss"))
              if isinstance(record.get(key), (int, float))]
    if losses:
        lines.append(", ".join(losses))
    return "\n".join(lines)
