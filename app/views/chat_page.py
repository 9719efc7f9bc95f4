"""The Chat page: chats on the left, the conversation in the middle, the chat's settings on the right.

The page only lays out widgets, reads Qt models and calls the ChatController / ModelController.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.controllers.chat_controller import ChatController
from app.controllers.model_controller import ModelController
from app.models.message_model import MessageModel
from app.models.session_list_model import SessionIdRole, SessionListModel
from app.views.budget_bar import BudgetBar, describe_budget
from app.views.message_delegate import MessageDelegate
from app.views.session_settings import SessionSettings
from app.views.widgets import named
from engine.errors import EmberError

CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)```", re.S)


class PromptEdit(QPlainTextEdit):
    """Enter or Ctrl+Enter sends; Shift+Enter inserts a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class ChatPage(QWidget):
    status_message = Signal(str)
    error_shown = Signal(object)

    def __init__(self, chat: ChatController, models: ModelController, parent=None) -> None:
        super().__init__(parent)
        self.chat, self.models = chat, models
        self.setObjectName("chatPage")
        self.setAcceptDrops(True)
        self._deleted_session: int | None = None
        self._build()
        self._connect()
        self.refresh_models()
        self.refresh_sessions()
        sessions = self.chat.sessions()
        self.chat.select(sessions[0].id if sessions else None)

    # --- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setObjectName("chatSplitter")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        self.search_edit = named(QLineEdit(), "chatSearch", "Search chats")
        self.search_edit.setPlaceholderText("Search all chats (Ctrl+F)")
        self.search_edit.setClearButtonEnabled(True)
        self.new_button = named(QPushButton("New chat"), "newChatButton", "New chat", "Ctrl+N")
        self.sessions_model = SessionListModel(self)
        self.session_list = named(QListView(), "sessionList", "Chats")
        self.session_list.setModel(self.sessions_model)
        self.session_list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        row = QHBoxLayout()
        self.rename_button = named(QPushButton("Rename"), "renameChatButton", "Rename chat")
        self.delete_button = named(QPushButton("Delete"), "deleteChatButton", "Delete chat")
        row.addWidget(self.rename_button)
        row.addWidget(self.delete_button)
        self.undo_button = named(QPushButton("Undo delete"), "undoDeleteButton", "Undo delete")
        self.undo_button.hide()
        for widget in (self.search_edit, self.new_button, self.session_list):
            left_layout.addWidget(widget)
        left_layout.addLayout(row)
        left_layout.addWidget(self.undo_button)

        center = QWidget()
        center_layout = QVBoxLayout(center)
        model_row = QHBoxLayout()
        self.model_combo = named(QComboBox(), "modelCombo", "Model")
        self.model_combo.setMinimumContentsLength(24)
        self.open_button = named(QPushButton("Open GGUF…"), "openModelButton", "Open a GGUF file",
                                 "Add a GGUF file you already have to the library (or drop it on the window)")
        self.load_button = named(QPushButton("Load"), "loadModelButton", "Load model")
        self.unload_button = named(QPushButton("Unload"), "unloadModelButton", "Unload model")
        self.load_progress = named(QProgressBar(), "loadProgress", "Model loading progress")
        self.load_progress.setRange(0, 0)
        self.load_progress.setMaximumWidth(140)
        self.load_progress.hide()
        self.model_label = named(QLabel("No model loaded"), "modelStatusLabel", "Model status")
        self.model_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the window
        for widget in (self.model_combo, self.open_button, self.load_button, self.unload_button, self.load_progress):
            model_row.addWidget(widget)
        model_row.addWidget(self.model_label, 1)
        center_layout.addLayout(model_row)

        self.message_model = MessageModel(self)
        self.message_view = named(QListView(), "messageView", "Conversation")
        self.message_view.setModel(self.message_model)
        self.message_view.setItemDelegate(MessageDelegate(self.message_view))
        self.message_view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.message_view.setResizeMode(QListView.ResizeMode.Adjust)
        self.message_view.setLayoutMode(QListView.LayoutMode.Batched)
        self.message_view.setBatchSize(40)
        self.message_view.setWordWrap(True)
        self.message_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.empty_label = named(QLabel(), "emptyChatLabel", "Hint")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        center_layout.addWidget(self.message_view, 1)
        center_layout.addWidget(self.empty_label)

        actions = QHBoxLayout()
        self.prev_branch_button = named(QPushButton("◀"), "previousBranchButton", "Previous version")
        self.branch_label = named(QLabel(""), "branchLabel", "Version")
        self.next_branch_button = named(QPushButton("▶"), "nextBranchButton", "Next version")
        self.copy_button = named(QPushButton("Copy"), "copyMessageButton", "Copy message")
        self.copy_code_button = named(QPushButton("Copy code"), "copyCodeButton", "Copy the code blocks")
        self.edit_button = named(QPushButton("Edit && resend"), "editMessageButton", "Edit and resend")
        self.regenerate_button = named(QPushButton("Regenerate"), "regenerateButton", "Regenerate reply")
        self.delete_message_button = named(QPushButton("Delete"), "deleteMessageButton", "Delete message")
        self.details_button = named(QPushButton("Details"), "provenanceButton", "Reply details and provenance")
        for widget in (self.prev_branch_button, self.branch_label, self.next_branch_button, self.copy_button,
                       self.copy_code_button, self.edit_button, self.regenerate_button, self.delete_message_button,
                       self.details_button):
            actions.addWidget(widget)
        for button in (self.prev_branch_button, self.next_branch_button):
            button.setFixedWidth(32)
        actions.addStretch(1)
        center_layout.addLayout(actions)

        self.budget_bar = BudgetBar()
        self.budget_label = named(QLabel(describe_budget(None)), "contextBudgetLabel", "Context budget")
        self.budget_label.setWordWrap(True)
        self.budget_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        center_layout.addWidget(self.budget_bar)
        center_layout.addWidget(self.budget_label)
        composer = QHBoxLayout()
        self.prompt_edit = named(PromptEdit(), "promptEdit", "Message")
        self.prompt_edit.setPlaceholderText("Message the model — Enter sends, Shift+Enter adds a line")
        self.prompt_edit.setMaximumHeight(110)
        self.send_button = named(QPushButton("Send"), "sendButton", "Send", "Enter or Ctrl+Enter")
        self.stop_button = named(QPushButton("Stop"), "stopButton", "Stop", "Esc")
        self.stop_button.setEnabled(False)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        composer.addWidget(self.prompt_edit, 1)
        composer.addLayout(buttons)
        center_layout.addLayout(composer)

        self.settings = SessionSettings(self.chat)
        self.settings.setMaximumWidth(340)
        left.setMaximumWidth(280)
        for widget in (left, center, self.settings):
            splitter.addWidget(widget)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 700, 300])
        self.setTabOrder(self.search_edit, self.session_list)
        self.setTabOrder(self.session_list, self.prompt_edit)
        self.setTabOrder(self.prompt_edit, self.send_button)

        self._budget_timer = QTimer(self)
        self._budget_timer.setSingleShot(True)
        self._budget_timer.setInterval(400)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(200)

    def _connect(self) -> None:
        c = self.chat
        self.new_button.clicked.connect(c.new_session)
        self.session_list.selectionModel().currentChanged.connect(self._on_session_clicked)
        self.rename_button.clicked.connect(self.rename_current)
        self.delete_button.clicked.connect(self.delete_current)
        self.undo_button.clicked.connect(self.undo_delete)
        self.search_edit.textChanged.connect(lambda _: self._search_timer.start())
        self._search_timer.timeout.connect(self.refresh_sessions)
        self.load_button.clicked.connect(self.load_selected_model)
        self.open_button.clicked.connect(self.open_model_dialog)
        self.unload_button.clicked.connect(self.models.unload)
        self.send_button.clicked.connect(self.send)
        self.prompt_edit.submitted.connect(self.send)
        self.stop_button.clicked.connect(c.stop)
        self.prompt_edit.textChanged.connect(lambda: self._budget_timer.start())
        self._budget_timer.timeout.connect(lambda: c.request_budget(self.prompt_edit.toPlainText()))
        self.prev_branch_button.clicked.connect(lambda: self._switch(-1))
        self.next_branch_button.clicked.connect(lambda: self._switch(+1))
        self.copy_button.clicked.connect(self.copy_selected)
        self.copy_code_button.clicked.connect(self.copy_code)
        self.edit_button.clicked.connect(self.edit_selected)
        self.regenerate_button.clicked.connect(self.regenerate)
        self.delete_message_button.clicked.connect(self.delete_selected)
        self.details_button.clicked.connect(self.show_details)
        self.message_view.selectionModel().currentChanged.connect(lambda *_: self._update_actions())

        c.sessions_changed.connect(self.refresh_sessions)
        c.session_changed.connect(self._on_session_changed)
        c.branch_loaded.connect(self._on_branch)
        c.text_arrived.connect(self._on_text)
        c.generating_changed.connect(self._on_generating)
        c.budget_changed.connect(self._on_budget)
        c.overflow.connect(self._on_overflow)
        c.error.connect(self.error_shown)
        m = self.models
        m.loading.connect(self._on_loading)
        m.progress.connect(lambda p: self.model_label.setText(p.message))
        m.loaded.connect(self._on_loaded)
        m.unloaded.connect(self._on_unloaded)
        m.failed.connect(self._on_load_failed)

    # --- sessions -----------------------------------------------------------------------------
    def refresh_sessions(self) -> None:
        query = self.search_edit.text().strip()
        sessions = self.chat.sessions()
        snippets = {}
        if query:
            hits = self.chat.search(query)
            for hit in hits:
                snippets.setdefault(hit.session_id, hit.snippet)
            sessions = [s for s in sessions if s.id in snippets]
        self.sessions_model.set_sessions(sessions, snippets)
        row = self.sessions_model.row_of(self.chat.session_id) if self.chat.session_id is not None else -1
        if row >= 0:
            self.session_list.selectionModel().setCurrentIndex(
                self.sessions_model.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def _on_session_clicked(self, current, _previous) -> None:
        session_id = current.data(SessionIdRole) if current.isValid() else None
        if session_id is not None and session_id != self.chat.session_id:
            self.chat.select(session_id)

    def _on_session_changed(self, session) -> None:
        self.settings.show_session(session)
        self.refresh_sessions()

    def rename_current(self) -> None:
        session = self.chat.session()
        if session is None:
            return
        title, ok = QInputDialog.getText(self, "Rename chat", "Name:", text=session.title)
        if ok:
            self.chat.rename(session.id, title)

    def delete_current(self) -> None:
        session = self.chat.session()
        if session is None:
            return
        self._deleted_session = session.id
        self.chat.delete(session.id)
        self.undo_button.setText(f"Undo delete of “{session.title[:30]}”")
        self.undo_button.show()
        QTimer.singleShot(15000, self.undo_button.hide)
        sessions = self.chat.sessions()
        if sessions:
            self.chat.select(sessions[0].id)

    def undo_delete(self) -> None:
        if self._deleted_session is not None:
            self.chat.restore(self._deleted_session)
            self._deleted_session = None
        self.undo_button.hide()

    def focus_search(self) -> None:
        self.search_edit.setFocus()
        self.search_edit.selectAll()

    # --- models -------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        entries = self.chat.services.library.scan()
        current = self.model_combo.currentData()
        self.model_combo.clear()
        for entry in entries:
            label = entry.name if entry.info else f"{entry.name} (unusable: {entry.error})"
            if entry.source == "starter":
                label += " — starter"
            self.model_combo.addItem(label, entry)
        if current is not None:
            for i in range(self.model_combo.count()):
                if self.model_combo.itemData(i).path == current.path:
                    self.model_combo.setCurrentIndex(i)

    def add_model_entry(self, entry) -> None:
        self.refresh_models()
        for i in range(self.model_combo.count()):
            if self.model_combo.itemData(i).path == entry.path:
                self.model_combo.setCurrentIndex(i)

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a GGUF model", "", "GGUF models (*.gguf)")
        if path:
            self.add_model_file(path)

    def add_model_file(self, path: str) -> None:
        """Add a GGUF the user has (Open… or drag and drop) and select it; a bad file is refused with why."""
        try:
            entry = self.chat.services.library.add_file(Path(path))
        except EmberError as error:
            self.error_shown.emit(error)
            return
        self.add_model_entry(entry)

    def dragEnterEvent(self, event) -> None:
        if any(url.toLocalFile().lower().endswith(".gguf") for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if url.toLocalFile().lower().endswith(".gguf"):
                self.add_model_file(url.toLocalFile())

    def load_selected_model(self) -> None:
        entry = self.model_combo.currentData()
        if entry is None:
            return
        self.models.load(entry, **self.settings.load_options())

    def _on_loading(self, name: str) -> None:
        self.load_progress.show()
        self.load_button.setEnabled(False)
        self.model_label.setText(f"Loading {name}…")

    def _on_loaded(self, host) -> None:
        self.load_progress.hide()
        self.load_button.setEnabled(True)
        info = host.info
        text = f"{self.chat.services.model.entry.name} · ctx {info.get('n_ctx')} · template {info.get('template')}"
        self.model_label.setText(text)
        if host.notice:
            self.status_message.emit(host.notice)
        self.chat.request_budget(self.prompt_edit.toPlainText())
        self._update_actions()

    def _on_unloaded(self) -> None:
        self.load_progress.hide()
        self.load_button.setEnabled(True)
        self.model_label.setText("No model loaded")
        self.budget_bar.set_budget(None)
        self.budget_label.setText(describe_budget(None))
        self._update_actions()

    def _on_load_failed(self, error) -> None:
        self._on_unloaded()
        self.error_shown.emit(error)

    # --- conversation -------------------------------------------------------------------------
    def _on_branch(self, items) -> None:
        self.message_model.set_messages(items)
        if items:
            self.message_view.scrollToBottom()
        has_session = self.chat.session_id is not None
        self.empty_label.setVisible(not items)
        self.empty_label.setText("Type a message below to start." if has_session else "Press “New chat” to begin.")
        self._update_actions()

    def _on_text(self, message_id: int, text: str) -> None:
        bar = self.message_view.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        self.message_model.append_text(message_id, text)
        if at_bottom:
            self.message_view.scrollToBottom()

    def _on_generating(self, generating: bool) -> None:
        self.send_button.setEnabled(not generating)
        self.stop_button.setEnabled(generating)
        self._update_actions()
        if not generating:
            self.chat.request_budget(self.prompt_edit.toPlainText())

    def _on_budget(self, budget) -> None:
        self.budget_bar.set_budget(budget)
        self.budget_label.setText(describe_budget(budget))

    def _on_overflow(self, budget) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "The chat no longer fits",
                          f"{describe_budget(budget)}.\n\nDrop the oldest turns for this reply? "
                          "They stay in the chat; only the model stops seeing them. Your system prompt is kept.",
                          parent=self)
        box.setObjectName("overflowDialog")
        drop = box.addButton("Drop oldest turns", QMessageBox.ButtonRole.AcceptRole)
        drop.setObjectName("dropOldestButton")
        box.addButton(QMessageBox.StandardButton.Cancel).setObjectName("cancelSendButton")
        box.exec()
        if box.clickedButton() is drop:
            self.chat.confirm_drop_oldest()

    def send(self) -> None:
        text = self.prompt_edit.toPlainText()
        if not text.strip() or self.chat.generating:
            return
        if not self.chat.services.model.ready:
            self.chat.error.emit(EmberError("No model is loaded.", "Pick a model above and press Load."))
            return
        self.settings.flush()
        self.prompt_edit.clear()
        self.chat.send(text)

    def selected(self):
        index = self.message_view.currentIndex()
        return self.message_model.item_at(index.row()) if index.isValid() else None

    def _update_actions(self) -> None:
        item = self.selected()
        idle = not self.chat.generating
        ready = self.chat.services.model.ready
        for button in (self.copy_button, self.details_button):
            button.setEnabled(item is not None)
        self.copy_code_button.setEnabled(item is not None and bool(CODE_BLOCK.search(item.message.content)))
        self.edit_button.setEnabled(idle and ready and item is not None and item.message.role == "user")
        self.regenerate_button.setEnabled(idle and ready and item is not None)
        self.delete_message_button.setEnabled(idle and item is not None)
        many = item is not None and item.sibling_count > 1
        self.prev_branch_button.setEnabled(idle and many)
        self.next_branch_button.setEnabled(idle and many)
        self.branch_label.setText(f"{item.sibling_index}/{item.sibling_count}" if many else "")

    def select_message(self, row: int) -> None:
        self.message_view.setCurrentIndex(self.message_model.index(row))

    def _switch(self, step: int) -> None:
        item = self.selected()
        if item is None:
            return
        row = self.message_view.currentIndex().row()
        self.chat.switch_branch(item.id, step)
        self.select_message(min(row, self.message_model.rowCount() - 1))

    def copy_selected(self) -> None:
        item = self.selected()
        if item:
            QGuiApplication.clipboard().setText(item.message.content)
            self.status_message.emit("Copied the message.")

    def copy_code(self) -> None:
        item = self.selected()
        blocks = CODE_BLOCK.findall(item.message.content) if item else []
        if blocks:
            QGuiApplication.clipboard().setText("\n".join(b.rstrip("\n") for b in blocks))
            self.status_message.emit(f"Copied {len(blocks)} code block(s).")

    def edit_selected(self) -> None:
        item = self.selected()
        if item is None or item.message.role != "user":
            return
        text, ok = QInputDialog.getMultiLineText(self, "Edit and resend", "Your message:", item.message.content)
        if ok and text.strip():
            self.settings.flush()
            self.chat.edit(item.id, text)

    def regenerate(self) -> None:
        item = self.selected()
        if item is None:
            items = self.message_model.items()
            item = items[-1] if items else None
        if item is not None:
            self.settings.flush()
            self.chat.regenerate(item.id)

    def delete_selected(self) -> None:
        item = self.selected()
        if item is None:
            return
        answer = QMessageBox.question(self, "Delete message", "Delete this message and the replies under it?")
        if answer == QMessageBox.StandardButton.Yes:
            self.chat.delete_message(item.id)

    def show_details(self) -> None:
        item = self.selected()
        if item is None:
            return
        m, p, s = item.message, item.message.provenance, item.message.stats
        lines = [f"Status: {m.status}"]
        if m.role == "assistant":
            lines += [f"Model: {p.model_name or '-'}", f"SHA-256: {p.model_sha256 or 'not computed yet'}",
                      f"Quantization: {p.quantization or '-'}", f"Template hash: {p.template_hash or '-'}",
                      f"Seed: {p.seed if p.seed is not None else '-'}", f"Sampling: {p.sampling or {}}"]
        if s:
            lines += [f"Prompt tokens: {s.prompt_tokens} ({s.cached_tokens} from cache)",
                      f"Reply tokens: {s.completion_tokens}", f"Stop reason: {s.stop_reason}"]
        if m.error:
            lines.append(f"Error: {m.error}")
        box = QMessageBox(QMessageBox.Icon.Information, "Reply details", "\n".join(lines), parent=self)
        box.setObjectName("provenanceDialog")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.exec()
