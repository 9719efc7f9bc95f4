"""Read-only tables over RowsTableModel, as the Models and Documents pages show them."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from app.models.rows_table_model import RowsTableModel
from app.views.widgets import named


def table_view(name: str, accessible: str, model: RowsTableModel) -> QTableView:
    """Whole rows selected one at a time, not editable, columns sized to their contents, the last one stretched."""
    view = named(QTableView(), name, accessible)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().hide()
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    view.horizontalHeader().setStretchLastSection(True)
    return view


def set_rows_keeping_selection(view: QTableView, model: RowsTableModel, rows: list) -> None:
    """Replace a table's rows; the row the user had selected stays selected if it is still there."""
    selected = model.row_object(view.currentIndex().row())
    model.set_rows(rows)
    if selected is not None and (row := model.row_of(model.key(selected))) >= 0:
        view.selectRow(row)
