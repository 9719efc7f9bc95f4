"""docs/testing-ember.md cannot rot: its example is the example test file, and every objectName and signal
named in the docs' tables exists in the code."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QObject

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "testing-ember.md"
EXAMPLE = ROOT / "tests" / "kit" / "test_example_from_docs.py"


def table_cells(text: str, header: str, column: int) -> list[str]:
    """The cells of `column` in every Markdown table whose first header cell is `header`."""
    cells, inside = [], False
    for line in text.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if parts is None:
            inside = False
        elif parts[0] == header:
            inside = True
        elif inside and not set(parts[0]) <= {"-"}:
            cells.append(parts[column])
    return cells


def code_text() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "app").rglob("*.py")))


def test_the_example_in_the_doc_is_the_example_test_file():
    block = re.search(r"## An example\n.*?```python\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    assert block.group(1) == EXAMPLE.read_text()


def test_every_object_name_in_the_docs_exists_in_the_code(ember_window):
    window = ember_window
    for row in range(window.nav.count()):
        window.nav.setCurrentRow(row)  # builds every page
    live = {o.objectName() for o in window.findChildren(QObject)}
    code = code_text()
    listed = {name for doc in sorted((ROOT / "docs").glob("*.md"))
              for cell in table_cells(doc.read_text(), "objectName", 0)
              for name in re.findall(r"`([a-z][A-Za-z0-9]+)`", cell)}
    assert len(listed) > 150
    missing = sorted(n for n in listed if n not in live and f'"{n}"' not in code)
    assert missing == []


def test_every_signal_in_the_doc_exists_in_the_code():
    declared = set(re.findall(r"^\s+(\w+) = Signal\(", code_text(), re.M))
    listed = {name for cell in table_cells(DOC.read_text(), "on", 1)
              for name in re.findall(r"`([a-z_]\w*)[`(]", cell)}
    assert len(listed) > 30
    assert sorted(listed - declared) == []
