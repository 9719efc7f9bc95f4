"""The chat's own settings: system prompt (with presets), sampling, context length, GPU layers, export."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.views.widgets import named
from engine.chat.presets import list_presets, save_preset
from engine.runtime.sampling import Sampling


class SessionSettings(QWidget):
    def __init__(self, chat, parent=None) -> None:
        super().__init__(parent)
        self.chat = chat
        self._loading = False
        layout = QVBoxLayout(self)

        prompt_box = QGroupBox("System prompt")
        prompt_layout = QVBoxLayout(prompt_box)
        presets_row = QHBoxLayout()
        self.preset_combo = named(QComboBox(), "presetCombo", "System prompt preset")
        self.save_preset_button = named(QPushButton("Save…"), "savePresetButton", "Save as preset")
        presets_row.addWidget(self.preset_combo, 1)
        presets_row.addWidget(self.save_preset_button)
        self.system_edit = named(QPlainTextEdit(), "systemPromptEdit", "System prompt")
        self.system_edit.setPlaceholderText("How the model should behave in this chat")
        prompt_layout.addLayout(presets_row)
        prompt_layout.addWidget(self.system_edit)
        layout.addWidget(prompt_box, 1)

        sampling_box = QGroupBox("Sampling")
        form = QFormLayout(sampling_box)
        defaults = Sampling()
        self.temperature = self._double("temperatureSpin", "Temperature", 0, 5, 0.05, defaults.temperature)
        self.top_p = self._double("topPSpin", "Top-p", 0.01, 1, 0.01, defaults.top_p)
        self.min_p = self._double("minPSpin", "Min-p", 0, 0.99, 0.01, defaults.min_p)
        self.repeat = self._double("repeatPenaltySpin", "Repeat penalty", 0.5, 2.0, 0.01, defaults.repeat_penalty)
        self.top_k = self._int("topKSpin", "Top-k", 0, 1000, defaults.top_k)
        self.max_tokens = self._int("maxTokensSpin", "Max tokens", 1, 32768, defaults.max_tokens)
        self.seed = self._int("seedSpin", "Seed", -1, 2**31 - 1, -1)
        self.seed.setSpecialValueText("random")
        for label, widget in (("Temperature", self.temperature), ("Top-p", self.top_p), ("Top-k", self.top_k),
                              ("Min-p", self.min_p), ("Repeat penalty", self.repeat), ("Max tokens", self.max_tokens),
                              ("Seed", self.seed)):
            form.addRow(label, widget)
        layout.addWidget(sampling_box)

        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        self.context = self._int("contextLengthSpin", "Context length", 256, 262144, 4096)
        self.context.setSingleStep(1024)
        self.gpu_auto = named(QCheckBox("auto"), "gpuLayersAuto", "GPU layers automatic")
        self.gpu_auto.setChecked(True)
        self.gpu_layers = self._int("gpuLayersSpin", "GPU layers", 0, 999, 0)
        self.gpu_layers.setEnabled(False)
        gpu_row = QHBoxLayout()
        gpu_row.addWidget(self.gpu_auto)
        gpu_row.addWidget(self.gpu_layers)
        model_form.addRow("Context length", self.context)
        model_form.addRow("GPU layers", gpu_row)
        note = QLabel("These apply when the model is (re)loaded.")
        note.setWordWrap(True)
        model_form.addRow(note)
        layout.addWidget(model_box)

        export_row = QHBoxLayout()
        self.export_button = named(QPushButton("Export…"), "exportButton", "Export chat", "Ctrl+E")
        self.import_button = named(QPushButton("Import…"), "importButton", "Import chat")
        export_row.addWidget(self.export_button)
        export_row.addWidget(self.import_button)
        layout.addLayout(export_row)

        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(300)
        self._save_timer.timeout.connect(self._save)
        self.system_edit.textChanged.connect(self._changed)
        for spin in (self.temperature, self.top_p, self.min_p, self.repeat, self.top_k, self.max_tokens, self.seed,
                     self.context):
            spin.valueChanged.connect(self._changed)
        self.gpu_auto.toggled.connect(lambda on: self.gpu_layers.setEnabled(not on))
        self.preset_combo.activated.connect(self._apply_preset)
        self.save_preset_button.clicked.connect(self._save_preset)
        self.export_button.clicked.connect(self.export_dialog)
        self.import_button.clicked.connect(self.import_dialog)
        self._fill_presets()

    def _double(self, name, label, low, high, step, value) -> QDoubleSpinBox:
        spin = named(QDoubleSpinBox(), name, label)
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setDecimals(2)
        spin.setValue(value)
        return spin

    def _int(self, name, label, low, high, value) -> QSpinBox:
        spin = named(QSpinBox(), name, label)
        spin.setRange(low, high)
        spin.setValue(value)
        return spin

    def _fill_presets(self) -> None:
        self.preset_combo.clear()
        self.preset_combo.addItem("Presets…", None)
        for preset in list_presets(self.chat.services.conn):
            self.preset_combo.addItem(preset.name + ("" if preset.builtin else " (yours)"), preset)

    def _apply_preset(self, index: int) -> None:
        preset = self.preset_combo.itemData(index)
        if preset is not None:
            self.system_edit.setPlainText(preset.system_prompt)
        self.preset_combo.setCurrentIndex(0)

    def _save_preset(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Preset name:")
        if ok:
            try:
                save_preset(self.chat.services.conn, name, self.system_edit.toPlainText())
            except Exception as error:  # InvalidInput: shown by the window
                self.chat.error.emit(error)
            self._fill_presets()

    def show_session(self, session) -> None:
        """Show a chat's settings (None: defaults, disabled)."""
        self._loading = True
        self.setEnabled(session is not None)
        sampling = Sampling.from_dict(session.sampling if session else {})
        self.system_edit.setPlainText(session.system_prompt if session else "")
        self.temperature.setValue(sampling.temperature)
        self.top_p.setValue(sampling.top_p)
        self.top_k.setValue(sampling.top_k)
        self.min_p.setValue(sampling.min_p)
        self.repeat.setValue(sampling.repeat_penalty)
        self.max_tokens.setValue(sampling.max_tokens)
        self.seed.setValue(sampling.seed if sampling.seed is not None else -1)
        if session and session.context_length:
            self.context.setValue(session.context_length)
        self._loading = False

    def sampling(self) -> dict:
        seed = self.seed.value()
        return Sampling(temperature=self.temperature.value(), top_p=self.top_p.value(), top_k=self.top_k.value(),
                        min_p=self.min_p.value(), repeat_penalty=self.repeat.value(),
                        max_tokens=self.max_tokens.value(), seed=None if seed < 0 else seed).to_dict()

    def load_options(self) -> dict:
        return {"context_length": self.context.value(),
                "gpu_layers": "auto" if self.gpu_auto.isChecked() else self.gpu_layers.value()}

    def _changed(self) -> None:
        if not self._loading:
            self._save_timer.start()

    def _save(self) -> None:
        self.chat.update_settings(system_prompt=self.system_edit.toPlainText(), sampling=self.sampling(),
                                  context_length=self.context.value())
        self.chat.request_budget("")

    def flush(self) -> None:
        """Save pending edits now (before sending, or when the window closes)."""
        if self._save_timer.isActive():
            self._save_timer.stop()
            self._save()

    def export_dialog(self) -> None:
        session = self.chat.session()
        if session is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export chat", f"{session.title[:40]}.md",
                                              "Markdown (*.md);;Ember chat JSON (*.json)")
        if path:
            self.chat.export(path)

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import chat", "", "Ember chat JSON (*.json)")
        if path:
            self.chat.import_file(path)
