"""One owner of the library: one Qt model for every page, jobs one at a time, a change notice on edits."""

from __future__ import annotations

import threading

from engine.library.library import Library
from tests.support.gguf_files import write_tiny_model


def test_the_chat_picker_and_the_models_page_share_one_library_model(window, qtbot):
    qtbot.waitUntil(lambda: window.stack.widget(1).objectName() == "modelsPage", timeout=20000)
    models_page = window.stack.widget(1)
    picker = window.chat_page.model_bar.combo.model()  # the library, then the remote servers' models
    assert picker.sourceModels()[0] is window.library.model
    assert picker.sourceModels()[1] is window.runtime.remote_models
    assert models_page.library_view.model() is window.library.model


def test_library_jobs_never_overlap_and_an_added_file_survives_every_scan(window, qtbot, tmp_path, monkeypatch):
    running, overlaps = [], []
    real_scan = Library.scan

    def watched_scan(self, *args, **kwargs):
        if running:
            overlaps.append(threading.current_thread().name)
        running.append(1)
        try:
            return real_scan(self, *args, **kwargs)
        finally:
            running.pop()

    monkeypatch.setattr(Library, "scan", watched_scan)
    path = write_tiny_model(tmp_path / "mine.Q8_0.gguf")
    changes = []
    window.controllers.notices.changed.connect(changes.append)
    library = window.library
    for _ in range(3):
        library.scan()
    library.add_file(str(path))
    for _ in range(3):
        library.scan()
    qtbot.waitUntil(lambda: not library._running and not library._jobs, timeout=20000)
    assert overlaps == []
    assert any(e.path == str(path.resolve()) for e in library.entries)
    assert library.model.row_of(str(path.resolve())) >= 0
    assert any(c.library for c in changes)  # the edit was announced; plain scans are not edits
    assert sum(1 for c in changes if c.library) == 1
