"""The list of chats: search over every message (Ctrl+F), New chat (Ctrl+N), rename in place (F2),
delete with Undo, export (Ctrl+E) and import."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGridLayout,
    QLineEdit,
    QListView,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QVBoxLayout,
    QWidget,
)

from app.models.session_list_model import HitMessageRole, SessionIdRole, SessionListModel, SubtitleRole
from app.views.message_bar import MessageBar
from app.views.widgets import named

SEARCH_DEBOUNCE_MS = 200
UNDO_SECONDS = 20


class SessionDelegate(QStyledItemDelegate):
    """Two lines per chat: its name, and when it was used (or the search snippet)."""

    def sizeHint(self, option, index) -> QSize:
        return QSize(120, option.fontMetrics.height() * 2 + 14)

    def paint(self, painter, option, index) -> None:
        painter.save()
        style = option.widget.style() if option.widget else None
        if style is not None:
            option.text = ""
            style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, option.widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        color = option.palette.color(role)
        rect = QRectF(option.rect).adjusted(10, 6, -8, -6)
        line = option.fontMetrics.height()
        bold = painter.font()
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(color)
        title = painter.fontMetrics().elidedText(index.data() or "", Qt.TextElideMode.ElideRight, int(rect.width()))
        painter.drawText(QRectF(rect.left(), rect.top(), rect.width(), line), Qt.AlignmentFlag.AlignVCenter, title)
        painter.setFont(option.font)
        color.setAlpha(170)
        painter.setPen(color)
        subtitle = option.fontMetrics.elidedText(index.data(SubtitleRole) or "", Qt.TextElideMode.ElideRight,
                                                 int(rect.width()))
        painter.drawText(QRectF(rect.left(), rect.top() + line, rect.width(), line), Qt.AlignmentFlag.AlignVCenter,
                         subtitle)
        painter.restore()


class SessionPane(QWidget):
    session_chosen = Signal(int, object)  # session id, message id of a search hit (or None)
    new_requested = Signal()
    search_changed = Signal(str)
    delete_requested = Signal(int)
    undo_requested = Signal(int)
    export_requested = Signal(str)
    import_requested = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("sessionPane")
        self.current_id: int | None = None
        self._deleted_id: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        self.search = named(QLineEdit(), "chatSearch", "Search chats", "Search every message of every chat (Ctrl+F)")
        self.search.setPlaceholderText("Search chats (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.new_button = named(QPushButton("New chat"), "newChatButton", "New chat", "New chat (Ctrl+N)")
        self.model = SessionListModel(self)
        self.list = named(QListView(), "sessionList", "Chats")
        self.list.setModel(self.model)
        self.list.setItemDelegate(SessionDelegate(self.list))
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed
                                  | QAbstractItemView.EditTrigger.DoubleClicked)
        self.list.setUniformItemSizes(True)
        self.rename_button = named(QPushButton("Rename"), "renameChatButton", "Rename chat", "Rename chat (F2)")
        self.delete_button = named(QPushButton("Delete"), "deleteChatButton", "Delete chat")
        self.export_button = named(QPushButton("Export…"), "exportButton", "Export chat",
                                   "Export this chat to Markdown or JSON (Ctrl+E)")
        self.import_button = named(QPushButton("Import…"), "importButton", "Import chat", "Import a chat exported as JSON")
        self.undo_bar = MessageBar("undo", self)
        self.undo_button = self.undo_bar.add_button("Undo", "undoDeleteButton", "Undo delete")
        layout.addWidget(self.search)
        layout.addWidget(self.new_button)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.undo_bar)
        grid = QGridLayout()
        for i, button in enumerate((self.rename_button, self.delete_button, self.export_button, self.import_button)):
            grid.addWidget(button, i // 2, i % 2)
        layout.addLayout(grid)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(lambda: self.search_changed.emit(self.search.text()))
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.setInterval(UNDO_SECONDS * 1000)
        self._undo_timer.timeout.connect(self.undo_bar.hide)
        self.search.textChanged.connect(self._search_timer.start)
        self.new_button.clicked.connect(self.new_requested)
        self.list.clicked.connect(self._on_clicked)
        self.list.activated.connect(self._on_clicked)
        self.list.selectionModel().currentChanged.connect(lambda current, _prev: self._on_clicked(current))
        self.rename_button.clicked.connect(self.rename_current)
        self.delete_button.clicked.connect(self.delete_current)
        self.undo_button.clicked.connect(self._undo)
        self.export_button.clicked.connect(lambda: self.export_dialog())
        self.import_button.clicked.connect(self.import_dialog)
        self.setTabOrder(self.search, self.new_button)
        self.setTabOrder(self.new_button, self.list)

    def show_rows(self, rows) -> None:
        self.model.set_rows(rows)
        self.mark_current(self.current_id)

    def mark_current(self, session_id: int | None) -> None:
        self.current_id = session_id
        row = self.model.row_of(session_id)
        selection = self.list.selectionModel()
        selection.blockSignals(True)
        if row >= 0:
            self.list.setCurrentIndex(self.model.index(row))
        else:
            self.list.clearSelection()
        selection.blockSignals(False)
        self.list.viewport().update()
        for button in (self.rename_button, self.delete_button, self.export_button):
            button.setEnabled(session_id is not None)

    def _on_clicked(self, index) -> None:
        if index.isValid():
            session_id, hit = index.data(SessionIdRole), index.data(HitMessageRole)
            if session_id != self.current_id or hit is not None:
                self.session_chosen.emit(session_id, hit)

    def delete_current(self) -> None:
        if self.current_id is not None:
            self.delete_requested.emit(self.current_id)

    def rename_current(self) -> None:
        row = self.model.row_of(self.current_id)
        if row >= 0:
            self.list.edit(self.model.index(row))

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def offer_undo(self, session_id: int, title: str) -> None:
        self._deleted_id = session_id
        self.undo_bar.show_message(f"Deleted “{title[:40]}”.", "")
        self._undo_timer.start()

    def _undo(self) -> None:
        self.undo_bar.hide()
        if self._deleted_id is not None:
            self.undo_requested.emit(self._deleted_id)
            self._deleted_id = None

    def export_dialog(self) -> None:
        if self.current_id is None:
            return
        session = self.model.session_at(self.model.row_of(self.current_id))
        name = "".join(c for c in (session.title if session else "chat") if c.isalnum() or c in " -_")[:40]
        dialog = QFileDialog(self, "Export chat", f"{name.strip() or 'chat'}.md",
                             "Markdown (*.md);;Ember chat, all versions (*.json)")
        dialog.setObjectName("exportDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("md")
        dialog.fileSelected.connect(self.export_requested)
        dialog.open()

    def import_dialog(self) -> None:
        dialog = QFileDialog(self, "Import chat", "", "Ember chat (*.json)")
        dialog.setObjectName("importDialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.import_requested)
        dialog.open()
