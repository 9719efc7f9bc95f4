"""The chat's own settings: its documents, adapter, system prompt (with presets), sampling, context length.

The panel edits values and emits them (debounced); the page saves them through the controller.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.views.chat_adapter_box import ChatAdapterBox
from app.views.chat_documents_box import ChatDocumentsBox
from app.views.widgets import named
from engine.runtime.sampling import Sampling

SAVE_DEBOUNCE_MS = 300
DEFAULT_CONTEXT = 4096


class SessionSettings(QScrollArea):
    changed = Signal(dict)  # {"system_prompt", "sampling", "context_length", "adapter_path", "adapter_scale"}
    save_preset_requested = Signal(str, str)  # name, system prompt

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        named(self, "sessionSettings", "Chat settings")
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        body = QWidget()
        self.setWidget(body)
        self._loading = False
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 8, 8, 8)

        self.documents = ChatDocumentsBox()
        layout.addWidget(self.documents)
        self.adapter = ChatAdapterBox()
        layout.addWidget(self.adapter)

        prompt_box = QGroupBox("System prompt")
        prompt_layout = QVBoxLayout(prompt_box)
        presets_row = QHBoxLayout()
        self.preset_combo = named(QComboBox(), "presetCombo", "System prompt preset")
        self.save_preset_button = named(QPushButton("Save as…"), "savePresetButton", "Save the prompt as a preset")
        presets_row.addWidget(self.preset_combo, 1)
        presets_row.addWidget(self.save_preset_button)
        self.system_edit = named(QPlainTextEdit(), "systemPromptEdit", "System prompt")
        self.system_edit.setPlaceholderText("How the model should behave in this chat")
        self.system_edit.setTabChangesFocus(True)
        self.system_edit.setMinimumHeight(90)
        prompt_layout.addLayout(presets_row)
        prompt_layout.addWidget(self.system_edit)
        layout.addWidget(prompt_box, 1)

        sampling_box = QGroupBox("Sampling")
        form = QFormLayout(sampling_box)
        d = Sampling()
        self.temperature = self._double("temperatureSpin", "Temperature", 0, 5, 0.05, d.temperature)
        self.top_p = self._double("topPSpin", "Top-p", 0.01, 1, 0.01, d.top_p)
        self.top_k = self._int("topKSpin", "Top-k", 0, 1000, d.top_k)
        self.min_p = self._double("minPSpin", "Min-p", 0, 0.99, 0.01, d.min_p)
        self.repeat = self._double("repeatPenaltySpin", "Repeat penalty", 0.5, 2.0, 0.01, d.repeat_penalty)
        self.seed = self._int("seedSpin", "Seed", -1, 2**31 - 1, -1)
        self.seed.setSpecialValueText("random")
        self.max_tokens = self._int("maxTokensSpin", "Max tokens", 1, 32768, d.max_tokens)
        for label, widget in (("Temperature", self.temperature), ("Top-p", self.top_p), ("Top-k", self.top_k),
                              ("Min-p", self.min_p), ("Repeat penalty", self.repeat), ("Seed", self.seed),
                              ("Max tokens", self.max_tokens)):
            form.addRow(label, widget)
        layout.addWidget(sampling_box)

        context_box = QGroupBox("Context")
        context_form = QFormLayout(context_box)
        self.context = self._int("contextLengthSpin", "Context length", 256, 262144, DEFAULT_CONTEXT)
        self.context.setSingleStep(512)
        self.context.setSuffix(" tokens")
        context_form.addRow("Length", self.context)
        note = QLabel("Used when the model is loaded; the budget never goes past what the model was loaded with.")
        note.setWordWrap(True)
        context_form.addRow(note)
        layout.addWidget(context_box)

        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DEBOUNCE_MS)
        self._save_timer.timeout.connect(self._emit)
        self.system_edit.textChanged.connect(self._changed)
        for spin in (self.temperature, self.top_p, self.top_k, self.min_p, self.repeat, self.seed, self.max_tokens,
                     self.context):
            spin.valueChanged.connect(self._changed)
        self.adapter.changed.connect(self._changed)
        self.preset_combo.activated.connect(self._apply_preset)
        self.save_preset_button.clicked.connect(self._ask_preset_name)

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

    # --- presets ------------------------------------------------------------------------------
    def set_presets(self, presets) -> None:
        self.preset_combo.clear()
        self.preset_combo.addItem("Presets…", None)
        for preset in presets:
            self.preset_combo.addItem(preset.name + ("" if preset.builtin else "  (yours)"), preset)

    def _apply_preset(self, index: int) -> None:
        preset = self.preset_combo.itemData(index)
        if preset is not None:
            self.system_edit.setPlainText(preset.system_prompt)
        self.preset_combo.setCurrentIndex(0)

    def _ask_preset_name(self) -> None:
        dialog = QInputDialog(self)
        dialog.setObjectName("presetNameDialog")
        dialog.setWindowTitle("Save preset")
        dialog.setLabelText("Name of the preset:")
        dialog.textValueSelected.connect(lambda name: self.save_preset_requested.emit(
            name, self.system_edit.toPlainText()))
        dialog.open()

    # --- values -------------------------------------------------------------------------------
    def show_session(self, session, default_context: int | None = None) -> None:
        """Show a chat's settings (None: the defaults, disabled)."""
        self._save_timer.stop()
        self._loading = True
        self.setEnabled(session is not None)
        sampling = Sampling.from_dict(session.sampling if session else {})
        self.system_edit.setPlainText(session.system_prompt if session else "")
        self.temperature.setValue(sampling.temperature)
        self.top_p.setValue(sampling.top_p)
        self.top_k.setValue(sampling.top_k)
        self.min_p.setValue(sampling.min_p)
        self.repeat.setValue(sampling.repeat_penalty)
        self.seed.setValue(sampling.seed if sampling.seed is not None else -1)
        self.max_tokens.setValue(sampling.max_tokens)
        context = session.context_length if session and session.context_length else None
        self.context.setValue(context or default_context or DEFAULT_CONTEXT)
        self.adapter.show_choice(session.adapter_path if session else None, session.adapter_scale if session else 1.0)
        self._loading = False

    def sampling(self) -> dict:
        seed = self.seed.value()
        return Sampling(temperature=self.temperature.value(), top_p=self.top_p.value(), top_k=self.top_k.value(),
                        min_p=self.min_p.value(), repeat_penalty=self.repeat.value(),
                        max_tokens=self.max_tokens.value(), seed=None if seed < 0 else seed).to_dict()

    def values(self) -> dict:
        return {"system_prompt": self.system_edit.toPlainText(), "sampling": self.sampling(),
                "context_length": self.context.value(), **self.adapter.values()}

    def _changed(self) -> None:
        if not self._loading:
            self._save_timer.start()

    def _emit(self) -> None:
        self.changed.emit(self.values())

    def flush(self) -> None:
        """Save pending edits now (before sending, switching chats, or closing the window)."""
        if self._save_timer.isActive():
            self._save_timer.stop()
            self._emit()
