"""RowsTableModel, the Models page's one table adapter, passes qtmodeltester and updates rows by key."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt

from app.models.rows_table_model import Column, ProgressRole, RowRole, RowsTableModel


@dataclass(frozen=True)
class Item:
    key: str
    size: int


def test_rows_table_model(qtmodeltester, qtbot):
    model = RowsTableModel([Column("Name", lambda i: i.key),
                            Column("Size", lambda i: f"{i.size} B", True, fraction=lambda i: i.size / 10)],
                           key=lambda i: i.key)
    model.set_rows([Item("a", 1), Item("b", 2)])
    qtmodeltester.check(model)
    assert model.headerData(1, Qt.Orientation.Horizontal) == "Size"
    assert model.index(1, 1).data() == "2 B"
    assert model.index(0, 0).data(RowRole) == Item("a", 1)
    assert model.index(1, 1).data(ProgressRole) == 0.2 and model.index(1, 0).data(ProgressRole) is None
    with qtbot.waitSignal(model.dataChanged) as changed:
        assert model.update_row(Item("b", 5))
    assert changed.args[0].row() == 1 and model.index(1, 1).data() == "5 B"
    assert not model.update_row(Item("zzz", 1))
    assert model.row_of("b") == 1 and model.row_of("zzz") == -1
    qtmodeltester.check(model)
