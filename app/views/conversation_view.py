"""The conversation: a QListView over the MessageModel (long chats stay smooth: rows are painted by a
delegate from cached documents, laid out in batches), and the bar of actions on the selected message.

The view follows the bottom while a reply streams, unless the user scrolled up to read.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QStyleOptionViewItem,
    QToolButton,
    QWidget,
)

from app.models.message_model import DisplayMessage, MessageModel, MessageRole
from app.views.message_delegate import MessageDelegate
from app.views.widgets import named

FOLLOW_SLACK = 24  # px from the bottom that still counts as "at the bottom"


class ConversationView(QListView):
    def __init__(self, model: MessageModel, parent=None) -> None:
        super().__init__(parent)
        named(self, "messageView", "Conversation")
        self.setModel(model)
        self.message_delegate = MessageDelegate(self)
        self.setItemDelegate(self.message_delegate)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(60)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setMouseTracking(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setSpacing(0)
        self.verticalScrollBar().setSingleStep(30)
        self._follow = True
        self._heights: dict[int, int] = {}
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range)
        bar.valueChanged.connect(self._on_scrolled)
        model.modelReset.connect(self._on_reset)
        model.dataChanged.connect(self._on_data_changed)
        model.rowsInserted.connect(lambda *_: self._follow and self.scrollToBottom())

    def _on_reset(self) -> None:
        self.message_delegate.forget()
        self._heights.clear()
        self._follow = True

    def _on_range(self, _low: int, high: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(high)

    def _on_scrolled(self, value: int) -> None:
        self._follow = value >= self.verticalScrollBar().maximum() - FOLLOW_SLACK

    def _on_data_changed(self, top: QModelIndex, bottom: QModelIndex, _roles=()) -> None:
        """A row that grew (a new line streamed in) is laid out again; text on the same line only repaints."""
        for row in range(top.row(), bottom.row() + 1):
            index = self.model().index(row, 0)
            item: DisplayMessage = index.data(MessageRole)
            option = QStyleOptionViewItem()
            self.initViewItemOption(option)
            height = self.message_delegate.sizeHint(option, index).height()
            if self._heights.get(item.id) != height:
                self._heights[item.id] = height
                self.message_delegate.sizeHintChanged.emit(index)

    def follow_bottom(self) -> None:
        self._follow = True
        self.scrollToBottom()

    def scroll_to_message(self, row: int) -> None:
        if row >= 0:
            self._follow = False
            index = self.model().index(row, 0)
            self.setCurrentIndex(index)
            self.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtTop)


class MessageActions(QWidget):
    """Actions on the selected message, for the keyboard and screen readers (and a context menu)."""

    triggered = Signal(str)  # copy, copy_code, edit, regenerate, delete, details, sources, previous, next

    ACTIONS = [  # name, label, objectName, accessible name, shortcut
        ("previous", "◀", "previousBranchButton", "Previous version", "Alt+Left"),
        ("next", "▶", "nextBranchButton", "Next version", "Alt+Right"),
        ("copy", "Copy", "copyMessageButton", "Copy message", "Ctrl+Shift+C"),
        ("copy_code", "Copy code", "copyCodeButton", "Copy the code blocks", None),
        ("edit", "Edit", "editMessageButton", "Edit and send again", None),
        ("regenerate", "Regenerate", "regenerateButton", "Regenerate reply", "Ctrl+R"),
        ("delete", "Delete", "deleteMessageButton", "Delete message and the replies under it", None),
        ("details", "Details", "provenanceButton", "Reply details and provenance", "Ctrl+I"),
        ("sources", "Sources", "sourcesButton", "The reply's sources and why they were chosen", "Ctrl+Shift+I"),
    ]

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("messageActions")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 0, 12, 0)
        layout.setSpacing(2)
        self.buttons: dict[str, QToolButton] = {}
        self.menu_actions: dict[str, QAction] = {}
        self.branch_label = named(QLabel(""), "branchLabel", "Version")
        for name, text, object_name, accessible, shortcut in self.ACTIONS:
            tip = f"{accessible} ({shortcut})" if shortcut else accessible
            button = named(QToolButton(), object_name, accessible, tip)
            button.setText(text)
            button.setAutoRaise(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.clicked.connect(lambda _=False, n=name: self.triggered.emit(n))
            self.buttons[name] = button
            layout.addWidget(button)
            if name == "previous":
                layout.addWidget(self.branch_label)
            action = QAction(accessible, self)
            action.setObjectName(f"{name}Action")
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
                action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
                self.addAction(action)
            action.triggered.connect(lambda _=False, n=name: self.triggered.emit(n))
            self.menu_actions[name] = action
        layout.addStretch(1)

    def set_state(self, item: DisplayMessage | None, idle: bool, ready: bool, has_code: bool) -> None:
        m = item.message if item else None
        enabled = {
            "copy": m is not None and bool(m.content),
            "copy_code": m is not None and has_code,
            "edit": idle and ready and m is not None and m.role == "user",
            "regenerate": idle and ready and m is not None,
            "delete": idle and m is not None,
            "details": m is not None,
            "sources": m is not None and m.role == "assistant" and bool(item.sources),
            "previous": idle and item is not None and item.sibling_count > 1,
            "next": idle and item is not None and item.sibling_count > 1,
        }
        for name, on in enabled.items():
            self.buttons[name].setEnabled(on)
            self.menu_actions[name].setEnabled(on)
        many = item is not None and item.sibling_count > 1
        self.branch_label.setText(f"{item.sibling_index}/{item.sibling_count}" if many else "")
        self.branch_label.setAccessibleDescription(
            f"version {item.sibling_index} of {item.sibling_count}" if many else "one version")

    def context_menu(self, parent: QWidget) -> QMenu:
        menu = QMenu(parent)
        menu.setObjectName("messageMenu")
        for name, *_ in self.ACTIONS:
            menu.addAction(self.menu_actions[name])
        return menu
