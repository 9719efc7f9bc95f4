"""The Chat page: chats on the left; the model, the conversation and the composer in the middle; the
chat's settings (and its documents) on the right. The page lays widgets out and connects them to the
controllers; a click on a citation opens its passage, and from there the document or the inspector."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QLabel, QMessageBox, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from app.controllers.chat_controller import ChatController
from app.controllers.library_controller import LibraryController
from app.controllers.reply_controller import ReplyController
from app.controllers.runtime_controller import RuntimeController
from app.controllers.source_controller import SourceController
from app.models.message_model import MessageModel
from app.views.announcer import Announcer, reply_announcement
from app.views.citation_popup import CitationPopup
from app.views.composer import Composer
from app.views.conversation_view import ConversationView, MessageActions
from app.views.dialogs import ProvenanceDialog, overflow_box
from app.views.message_layout import build_document
from app.views.model_bar import ModelBar
from app.views.retrieval_inspector import RetrievalInspector
from app.views.session_pane import SessionPane
from app.views.session_settings import SessionSettings
from app.views.source_viewer import open_source
from app.views.widgets import named
from engine.errors import EmberError
from engine.remote.host import is_remote


class ChatPage(QWidget):
    status_message = Signal(str)
    error_shown = Signal(object)  # EmberError

    def __init__(self, chat: ChatController, replies: ReplyController, runtime: RuntimeController,
                 library: LibraryController, parent=None, *, sources: SourceController | None = None):
        super().__init__(parent)
        self.chat, self.replies, self.runtime, self.library = chat, replies, runtime, library
        self.sources = sources  # draws the cited page (None: the system viewer opens the file)
        self.setObjectName("chatPage")
        self.overflow_dialog = None
        self.details_dialog = None
        self._send_when_loaded: str | None = None  # a message typed before any model was loaded
        self._build()
        self._connect()
        self.settings.set_presets(chat.presets())
        sessions = chat.sessions()
        chat.select(sessions[0].id if sessions else None)

    # --- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("chatSplitter")
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self.sessions = SessionPane()
        center = QWidget()
        self.center_layout = center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(0, 0, 0, 0)
        center_layout.setSpacing(2)
        self.model_bar = ModelBar(self.library.model, self.runtime.remote_models)
        self.message_model = MessageModel(self)
        self.announcer = Announcer(self)
        self._reply_id: int | None = None  # the reply streaming now, announced when it ends
        self.view = ConversationView(self.message_model)
        self.empty_label = named(QLabel(), "emptyChatLabel", "Hint")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_label)
        self.stack.addWidget(self.view)
        self.actions_bar = MessageActions(self)
        self.composer = Composer()
        for widget, stretch in ((self.model_bar, 0), (self.stack, 1), (self.actions_bar, 0), (self.composer, 0)):
            center_layout.addWidget(widget, stretch)
        self.settings = SessionSettings()
        for widget in (self.sessions, center, self.settings):
            self.splitter.addWidget(widget)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([240, 760, 300])
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setAcceptDrops(True)
        self._tab_order()

    def show_welcome(self, panel: QWidget) -> None:
        """The first start's welcome, under the model picker (app/views/welcome_panel.py)."""
        self.center_layout.insertWidget(1, panel)

    def _tab_order(self) -> None:
        """Left to right, top to bottom: chats, the model, the conversation, the composer, the settings."""
        s, b, c, st = self.sessions, self.model_bar, self.composer, self.settings
        chain = [s.search, s.new_button, s.list, s.rename_button, s.delete_button, s.export_button, s.import_button,
                 b.combo, b.open_button, b.gpu_layers, b.load_button, self.view,
                 *self.actions_bar.buttons.values(), c.prompt, c.send_button, c.stop_button, c.cancel_edit_button,
                 st.documents.list, st.documents.best, st.documents.k, st.documents.whole,
                 st.preset_combo, st.save_preset_button, st.system_edit, st.temperature, st.top_p, st.top_k, st.min_p,
                 st.repeat, st.seed, st.max_tokens, st.context]
        for first, second in pairwise(chain):
            QWidget.setTabOrder(first, second)

    # --- drag and drop a GGUF file onto the page ------------------------------------------------
    def _dropped_models(self, event) -> list[str]:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        return [u.toLocalFile() for u in urls if u.isLocalFile() and u.toLocalFile().lower().endswith(".gguf")]

    def dragEnterEvent(self, event) -> None:
        if self._dropped_models(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for path in self._dropped_models(event):
            self.library.open_file(path)
        event.acceptProposedAction()

    def _connect(self) -> None:
        c, r, m, s = self.chat, self.replies, self.runtime, self.sessions
        s.session_chosen.connect(self._choose_session)
        s.new_requested.connect(self.new_chat)
        s.search_changed.connect(c.set_search)
        s.delete_requested.connect(c.delete)
        s.undo_requested.connect(c.restore)
        s.export_requested.connect(c.export)
        s.import_requested.connect(c.import_file)
        s.model.rename_requested.connect(c.rename)
        c.sessions_listed.connect(s.show_rows)
        c.session_changed.connect(self._on_session)
        c.deleted.connect(s.offer_undo)
        c.branch_loaded.connect(self._on_branch)
        c.focus_message.connect(lambda mid: self.view.scroll_to_message(self.message_model.row_of(mid)))
        c.notice.connect(self.status_message)
        c.error.connect(self.error_shown)
        c.documents_changed.connect(lambda choices, used: self.settings.documents.show_documents(
            choices, used, self.replies.context_length()))
        self.settings.documents.changed.connect(c.set_chat_documents)

        b = self.model_bar
        b.load_requested.connect(self._load)
        b.unload_requested.connect(self._unload)
        b.cancel_requested.connect(m.cancel_load)
        b.open_requested.connect(self.library.open_file)
        self.library.library_changed.connect(lambda _entries: b.library_changed(b.loaded_path
                                                                                or self._session_model_path()))
        self.library.opened.connect(lambda entry: b.select_path(entry.path))
        self.library.failed.connect(self.error_shown)
        self.library.progress.connect(lambda p: p.message and self.status_message.emit(p.message))
        m.loading.connect(self._on_loading)
        m.progress.connect(self._on_model_progress)
        m.loaded.connect(self._on_loaded)
        m.unloaded.connect(self._on_unloaded)
        m.failed.connect(self.error_shown)
        m.failed.connect(self._forget_waiting_message)

        self.composer.send_requested.connect(self._send)
        self.composer.stop_requested.connect(r.stop)
        self.composer.draft_changed.connect(r.request_budget)
        r.generating_changed.connect(self._on_generating)
        r.turn_started.connect(self._on_turn_started)
        r.reply_finished.connect(self._announce_reply)
        r.text_arrived.connect(self.message_model.append_text)
        r.budget_changed.connect(self.composer.show_budget)
        r.overflow.connect(self._ask_overflow)
        r.host_lost.connect(m.host_lost)
        r.error.connect(self.error_shown)
        r.notice.connect(self.status_message)
        r.activity.connect(self.status_message)

        self.settings.changed.connect(self._save_settings)
        self.settings.adapter.adapters_wanted.connect(self.list_adapters)
        self.runtime.loaded.connect(lambda _model: self.list_adapters())
        self.settings.save_preset_requested.connect(self._save_preset)
        self.view.message_delegate.copy_code.connect(lambda code: self._copy(code, "Copied the code."))
        self.view.message_delegate.branch_step.connect(c.switch_branch)
        self.view.message_delegate.citation_clicked.connect(self.open_citation)
        self.view.selectionModel().currentChanged.connect(lambda *_: self.update_actions())
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.actions_bar.triggered.connect(self.act)

    # --- sessions -----------------------------------------------------------------------------
    def _session_model_path(self) -> str | None:
        session = self.chat.session()
        return session.model_path if session else None

    def _choose_session(self, session_id: int, hit_message_id) -> None:
        self.settings.flush()
        self.chat.select(session_id, hit_message_id)
        if self.chat.session_id != session_id:  # refused (a reply is streaming): the list shows the chat still open
            QTimer.singleShot(0, self, lambda: self.sessions.mark_current(self.chat.session_id))

    def new_chat(self) -> None:
        self.settings.flush()
        self.chat.new_session()
        self.composer.prompt.setFocus()

    def _on_session(self, session) -> None:
        self.sessions.mark_current(session.id if session else None)
        model = self.runtime.chat_model
        self.list_adapters()
        self.settings.show_session(session, model.context_length if model else None)
        self.composer.cancel_edit()
        if session is not None and session.model_path:
            self.model_bar.select_path(session.model_path)
        self.replies.request_budget(self.composer.prompt.toPlainText())

    def list_adapters(self) -> None:
        """The Adapter box's list, read again (the Fine-tune page may have made one since)."""
        model = self.runtime.chat_model
        self.settings.adapter.set_adapters(self.chat.adapters(), model.path if model else None)

    def _save_settings(self, values: dict) -> None:
        self.chat.update_settings(**values)
        self.replies.request_budget(self.composer.prompt.toPlainText())

    def _save_preset(self, name: str, prompt: str) -> None:
        if self.chat.save_preset(name, prompt) is not None:
            self.settings.set_presets(self.chat.presets())

    # --- the model ----------------------------------------------------------------------------
    def _load(self, entry, gpu_layers) -> None:
        """Load with the bar's GPU layers ("auto" there means: as the Settings page says); a remote
        server's model is checked and used from there."""
        gpu_layers = None if gpu_layers == "auto" else gpu_layers
        self.settings.flush()
        if is_remote(entry.path):
            self.runtime.load_remote(entry, context_length=self.settings.context.value())
            self.chat.update_settings(model_path=entry.path)
            return
        self.runtime.load(entry, context_length=self.settings.context.value(), gpu_layers=gpu_layers)
        self.chat.update_settings(model_path=entry.path)

    def _unload(self) -> None:
        self.replies.stop()
        self.runtime.unload()

    def _on_loading(self, entry) -> None:
        """A load started here or elsewhere (the Models page): show it in the picker."""
        if self.model_bar.models.row_of(entry.path) < 0:
            self.library.scan()  # a file the picker has not listed yet (just downloaded)
        self.model_bar.select_path(entry.path)
        self.model_bar.show_loading(entry.name)

    def _on_model_progress(self, progress) -> None:
        if self.model_bar.loading:
            self.model_bar.show_progress(progress.message)
        elif progress.message:
            self.status_message.emit(progress.message)

    def _on_loaded(self, loaded) -> None:
        """`loaded`: the LoadedModel (its file and its process)."""
        host, entry = loaded.host, loaded
        info = host.info
        template = {"gguf": "the model's own chat template"}.get(info.get("template"),
                                                                 f"the built-in format {info.get('template')}")
        self.model_bar.show_loaded(entry.path, f"Loaded · context {info.get('n_ctx')}")
        self.model_bar.status.setToolTip(f"{entry.path}\nContext {info.get('n_ctx')} tokens, {template}, "
                                         f"loaded in {info.get('load_s', 0):.1f} s")
        if host.notice:
            self.status_message.emit(host.notice)
        self.replies.request_budget(self.composer.prompt.toPlainText())
        self.update_actions()
        if self._send_when_loaded is not None:
            text, self._send_when_loaded = self._send_when_loaded, None
            self.replies.send(text)

    def _on_unloaded(self) -> None:
        self.model_bar.show_unloaded()
        self.composer.show_budget(None)
        self.update_actions()

    # --- the conversation ---------------------------------------------------------------------
    def _on_branch(self, items) -> None:
        self.message_model.set_messages(items)
        has_session = self.chat.session_id is not None
        self.stack.setCurrentWidget(self.view if items else self.empty_label)
        self.empty_label.setText("Type a message below to start." if has_session
                                 else "No chat yet. Press “New chat” (Ctrl+N) or just type a message below.")
        self.update_actions()

    def _on_turn_started(self, reply_id: int) -> None:
        self._reply_id = reply_id
        self.composer.sent()
        self.view.follow_bottom()

    def _announce_reply(self, stats) -> None:
        """Screen readers hear a reply once it has finished, not each frame of its streaming."""
        row = self.message_model.row_of(self._reply_id)
        item = self.message_model.item_at(row) if row >= 0 else None
        text = item.message.content if item is not None else ""
        self.announcer.announce(self.view, reply_announcement(text, stats.stop_reason, stats.error))

    def _on_generating(self, generating: bool) -> None:
        self.composer.set_generating(generating)
        self.update_actions()
        if not generating:
            self.replies.request_budget(self.composer.prompt.toPlainText())

    def _send(self, text: str) -> None:
        self.settings.flush()
        if self.runtime.chat_model is None and self.composer.editing_id is None and text.strip():
            if self._load_then_send(text):
                return
        if self.composer.editing_id is not None:
            self.replies.edit(self.composer.editing_id, text)
        else:
            self.replies.send(text)

    def _load_then_send(self, text: str) -> bool:
        """Send with no model loaded: load the one in the picker first, then send (True if so)."""
        entry = self.model_bar.entry()
        if entry is None or (entry.info is None and not is_remote(entry.path)):
            return False
        self._send_when_loaded = text
        if not self.model_bar.loading:
            self._load(entry, self.model_bar.gpu_setting())
        self.status_message.emit(f"Loading {entry.name}; your message goes as soon as it is ready.")
        return True

    def _forget_waiting_message(self, _error=None) -> None:
        self._send_when_loaded = None  # the load failed: the text stays in the composer

    def _ask_overflow(self, budget) -> None:
        box = overflow_box(budget, self)
        box.buttonClicked.connect(lambda button: self.replies.answer_overflow(
            button.objectName() == "dropOldestButton"))
        box.rejected.connect(lambda: self.replies.answer_overflow(False))
        self.overflow_dialog = box
        box.open()

    def selected(self):
        index = self.view.currentIndex()
        return self.message_model.item_at(index.row()) if index.isValid() else None

    def select_message(self, row: int) -> None:
        self.view.setCurrentIndex(self.message_model.index(row))

    def update_actions(self) -> None:
        item = self.selected()
        content = item.message.content if item is not None else ""
        has_code = ("```" in content or "\n    " in content) and bool(
            build_document(item, 600, self.font()).code_blocks)
        self.actions_bar.set_state(item, not self.replies.generating, self.runtime.chat_model is not None, has_code)

    def _context_menu(self, pos) -> None:
        if self.view.indexAt(pos).isValid():
            self.view.setCurrentIndex(self.view.indexAt(pos))
            self.actions_bar.context_menu(self).popup(self.view.viewport().mapToGlobal(pos))

    def act(self, name: str) -> None:
        """Run one of the message actions on the selected message (or the last one)."""
        item = self.selected() or self.message_model.item_at(self.message_model.rowCount() - 1)
        if item is None:
            return
        if name == "copy":
            self._copy(item.message.content, "Copied the message.")
        elif name == "copy_code":
            blocks = build_document(item, 600, self.font()).code_blocks
            self._copy("\n\n".join(b.text for b in blocks), f"Copied {len(blocks)} code block(s).")
        elif name == "edit" and item.role == "user":
            self.composer.start_edit(item.id, item.message.content)
        elif name == "regenerate":
            self.replies.regenerate(item.id)
        elif name == "delete":
            self._confirm_delete(item)
        elif name == "details":
            self.details_dialog = ProvenanceDialog(item, self)
            self.details_dialog.show()
        elif name == "sources":
            self.inspect_retrieval(item.id)
        elif name in ("previous", "next"):
            row = self.message_model.row_of(item.id)
            self.chat.switch_branch(item.id, -1 if name == "previous" else 1)
            self.select_message(min(row, self.message_model.rowCount() - 1))

    # --- sources ------------------------------------------------------------------------------------
    def open_citation(self, message_id: int, number: int) -> None:
        """A click on [n] in a reply: the passage and where it is, with a way to open it."""
        item = self.message_model.item_at(self.message_model.row_of(message_id))
        source = next((s for s in item.sources if s.number == number), None) if item else None
        if source is None:
            return
        popup = CitationPopup(source, self)
        popup.open_requested.connect(self.open_source)
        popup.inspect_requested.connect(lambda: (popup.accept(), self.inspect_retrieval(message_id)))
        popup.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.citation_popup = popup
        popup.open()

    def inspect_retrieval(self, message_id: int) -> None:
        retrieval = self.chat.documents.retrieval(message_id)
        if retrieval is None:
            self.status_message.emit("This reply did not use documents.")
            return
        inspector = RetrievalInspector(retrieval, self)
        inspector.open_requested.connect(self.open_source)
        inspector.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.inspector = inspector
        inspector.show()

    def open_source(self, source) -> None:
        """Open a cited document at its passage: the page drawn with the passage marked, or the file at
        its lines (the viewer says so when the file is gone or changed)."""
        if self.sources is not None:
            self.source_viewer = open_source(self.sources, source, self)
            return
        if not Path(source.path).is_file():
            self.error_shown.emit(EmberError(f"{Path(source.path).name} is not there any more ({source.path}).",
                                             "The passage the reply was given is still shown in the citation."))
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(source.path))

    def _confirm_delete(self, item) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, "Delete message",
                          "Delete this message and every reply under it? This cannot be undone.", parent=self)
        box.setObjectName("deleteMessageDialog")
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        delete.setObjectName("confirmDeleteMessageButton")
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda button: button is delete and self.chat.delete_message(item.id))
        box.open()

    def _copy(self, text: str, notice: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.status_message.emit(notice)

    def focus_search(self) -> None:
        self.sessions.focus_search()
