"""The Models page driven as a user would, against the stand-in Hub: search, pick, download, pause,
resume, find it in the library, chat with it."""

from __future__ import annotations

import hashlib

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QPushButton, QTableView

from app.models.rows_table_model import ProgressRole
from app.testing.helpers import close_window, open_window, wait_for_download
from app.views.models_page import DOWNLOAD_COLUMNS, ModelsPage
from engine.hub.sidecar import part_path
from engine.paths import EmberPaths
from engine.store.models_repo import ModelRepository
from tests.e2e.conftest import click, rows, set_sampling, type_and_send
from tests.support.hub_fixtures import SMOL_FILE, SMOL_REPO, hub_server, known_bandwidth  # noqa: F401

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def window(qtbot, hub_server, known_bandwidth, ember_window):  # noqa: F811
    """The plugin's window (made after the stand-in Hub started), on the Models page."""
    ember_window.nav.setCurrentRow(1)
    return ember_window


def column(view: QTableView, header: str) -> list[str]:
    model = view.model()
    col = next(c for c in range(model.columnCount()) if model.headerData(c, Qt.Orientation.Horizontal) == header)
    return [model.index(r, col).data() for r in range(model.rowCount())]


def search_and_open(qtbot, page, query: str):
    edit = page.findChild(QLineEdit, "hubSearchEdit")
    qtbot.keyClicks(edit, query)
    with qtbot.waitSignal(page.controller.results_ready, timeout=20000):
        qtbot.mouseClick(page.findChild(QPushButton, "hubSearchButton"), Qt.MouseButton.LeftButton)
    results = page.findChild(QTableView, "hubResults")
    with qtbot.waitSignal(page.controller.detail_ready, timeout=30000):
        results.selectRow(0)
    return results


def start_a_slow_download(qtbot, page, hub) -> None:
    """Download the SmolLM2 file at 4 MB/s from the Discover tab; return once 2 MB are in."""
    hub.faults.rate = 4_000_000
    search_and_open(qtbot, page, "SmolLM2")
    files = page.findChild(QTableView, "hubFiles")
    files.selectRow(column(files, "File").index(SMOL_FILE))
    with qtbot.waitSignal(page.downloads.download_progress, timeout=20000,
                          check_params_cb=lambda row: row.progress is not None and row.progress.done > 2_000_000):
        qtbot.mouseClick(page.findChild(QPushButton, "downloadButton"), Qt.MouseButton.LeftButton)


def test_search_fit_download_library_and_chat(qtbot, window, hub_server, smollm2_path):  # noqa: F811
    page = window.findChild(ModelsPage, "modelsPage")
    results = search_and_open(qtbot, page, "SmolLM2")
    author, name = SMOL_REPO.split("/")
    assert column(results, "Model") == [name] and column(results, "Author") == [author]
    assert "tiny" in page.card_view.toPlainText()
    files = page.findChild(QTableView, "hubFiles")
    names = column(files, "File")
    assert SMOL_FILE in names and len(names) == 4
    fits = column(files, "On this machine")
    assert all(f and f != "unknown" for f in fits)
    assert all("tokens/s" in s for s in column(files, "Speed"))

    assert "cores" in page.machine_label.text() and "RAM free" in page.machine_label.text()

    files.selectRow(names.index(SMOL_FILE))
    assert SMOL_FILE in page.download_button.text()
    with qtbot.waitSignal(page.library.library_changed, timeout=60000,
                          check_params_cb=lambda entries: any(e.source == "hub" and e.name == SMOL_FILE for e in entries)):
        qtbot.mouseClick(page.findChild(QPushButton, "downloadButton"), Qt.MouseButton.LeftButton)
    downloaded = EmberPaths.from_env().model_destination(SMOL_REPO, SMOL_FILE)
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == hashlib.sha256(smollm2_path.read_bytes()).hexdigest()
    qtbot.waitUntil(lambda: column(page.downloads_view, "State") == ["done"], timeout=5000)

    library = page.findChild(QTableView, "libraryView")
    sources = column(library, "Source")
    assert any(s.startswith("downloaded") for s in sources)
    library.selectRow(next(i for i, s in enumerate(sources) if s.startswith("downloaded")))
    with qtbot.waitSignal(window.runtime.loaded, timeout=60000):
        qtbot.mouseClick(page.findChild(QPushButton, "openInChatButton"), Qt.MouseButton.LeftButton)
    assert window.services.chat_model.path == str(downloaded)
    assert window.nav.currentRow() == 0

    # the first chat measures the speed; the Models page then shows it instead of the estimate
    click(qtbot, window, "newChatButton")
    set_sampling(window, max_tokens=48, temperature=0.7)
    type_and_send(qtbot, window, "Write a long story about a cat who sails around the world.")
    assert rows(window)[-1].message.stats.completion_tokens >= 32
    repo = ModelRepository(window.services.conn)
    qtbot.waitUntil(lambda: (repo.get(str(downloaded)).measured_tps or 0) > 0, timeout=30000)
    window.nav.setCurrentRow(1)
    with qtbot.waitSignal(page.library.library_changed, timeout=10000):
        page.library.scan()
    hub_row = next(i for i, s in enumerate(column(library, "Source")) if s.startswith("downloaded"))
    assert column(library, "Speed")[hub_row].endswith("tokens/s (measured)")
    requests_before = len(hub_server.stats.requests)
    with qtbot.waitSignal(page.controller.detail_ready, timeout=30000):
        page.controller.refit(4096)
    assert len(hub_server.stats.requests) == requests_before  # a new fit asks the Hub nothing
    from_header = {c.file.name: c.fit.from_header for c in page.files_model.rows()}
    assert from_header[SMOL_FILE] and not any(v for k, v in from_header.items() if k != SMOL_FILE)
    speeds = dict(zip(column(files, "File"), column(files, "Speed"), strict=True))
    assert speeds[SMOL_FILE].endswith("(measured)")
    assert all("measured" not in s for name, s in speeds.items() if name != SMOL_FILE)


def test_pause_and_resume_keep_the_bytes(qtbot, window, hub_server, smollm2_path):  # noqa: F811
    page = window.findChild(ModelsPage, "modelsPage")
    start_a_slow_download(qtbot, page, hub_server)
    assert page.tabs.tabText(1) == "Downloads (1)"
    page.downloads_view.selectRow(0)
    qtbot.mouseClick(page.findChild(QPushButton, "pauseDownloadButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: column(page.downloads_view, "State") == ["paused"], timeout=10000)
    assert page.tabs.tabText(1) == "Downloads"
    progress_cell = page.downloads_model.index(0, [c.header for c in DOWNLOAD_COLUMNS].index("Progress"))
    assert 0.02 < progress_cell.data(ProgressRole) < 1  # the bar shows the part kept on disk
    hub_server.faults.rate = None
    page.downloads_view.selectRow(0)
    with qtbot.waitSignal(page.library.library_changed, timeout=60000,
                          check_params_cb=lambda entries: any(e.source == "hub" and e.name == SMOL_FILE for e in entries)):
        qtbot.mouseClick(page.findChild(QPushButton, "resumeDownloadButton"), Qt.MouseButton.LeftButton)
    assert max(hub_server.stats.range_starts) > 2_000_000  # resumed where it stopped, not from zero
    downloaded = EmberPaths.from_env().model_destination(SMOL_REPO, SMOL_FILE)
    assert downloaded.read_bytes() == smollm2_path.read_bytes()


def test_the_page_opens_on_the_most_downloaded_models(qtbot, window, hub_server):  # noqa: F811
    page = window.findChild(ModelsPage, "modelsPage")
    results = page.findChild(QTableView, "hubResults")
    gguf_repos = [r for r in hub_server.repos.values() if "gguf" in r.tags]
    qtbot.waitUntil(lambda: results.model().rowCount() == len(gguf_repos), timeout=20000)
    scale = {"k": 1e3, "M": 1e6}
    downloads = [float(d.split()[0]) * scale.get(d.split()[-1], 1) for d in column(results, "Downloads")]
    assert downloads == sorted(downloads, reverse=True) and downloads[0] == max(r.downloads for r in gguf_repos)


def test_a_corrupt_download_is_refused_and_the_user_told(qtbot, window, hub_server):  # noqa: F811
    page = window.findChild(ModelsPage, "modelsPage")
    hub_server.faults.wrong_bytes = True  # same length, other bytes: the published SHA-256 no longer matches
    search_and_open(qtbot, page, "SmolLM2")
    files = page.findChild(QTableView, "hubFiles")
    files.selectRow(column(files, "File").index(SMOL_FILE))
    with qtbot.waitSignal(page.downloads.error, timeout=60000) as blocker:  # the window's download queue
        qtbot.mouseClick(page.findChild(QPushButton, "downloadButton"), Qt.MouseButton.LeftButton)
    assert "failed verification" in blocker.args[0].message and "not in your library" in blocker.args[0].message
    assert "failed verification" in window.error_bar.message.text()  # said in the window
    downloaded = EmberPaths.from_env().model_destination(SMOL_REPO, SMOL_FILE)
    assert not downloaded.exists() and not part_path(downloaded).exists()
    qtbot.waitUntil(lambda: column(page.downloads_view, "State") == ["failed"], timeout=10000)
    with qtbot.waitSignal(page.library.library_changed, timeout=10000):
        page.library.scan()
    assert not any(s.startswith("downloaded") for s in column(page.library_view, "Source"))


def test_hub_errors_are_readable(qtbot, window, hub_server):  # noqa: F811
    page = window.findChild(ModelsPage, "modelsPage")
    hub_server.faults.api_status = 403  # (a 500 is retried by huggingface_hub for ~20 s first)
    qtbot.keyClicks(page.findChild(QLineEdit, "hubSearchEdit"), "anything")
    with qtbot.waitSignal(page.controller.error, timeout=20000) as blocker:
        qtbot.mouseClick(page.findChild(QPushButton, "hubSearchButton"), Qt.MouseButton.LeftButton)
    error = blocker.args[0]
    assert error.message and error.hint and "Traceback" not in error.message


def test_a_download_cut_off_by_closing_continues_at_the_next_start(qtbot, ember_home, hub_server,  # noqa: F811
                                                                    known_bandwidth, smollm2_path):  # noqa: F811
    def open_models_page():
        win = open_window(ember_home)
        qtbot.addWidget(win)
        win.nav.setCurrentRow(1)  # builds the page at once
        return win, win.findChild(ModelsPage, "modelsPage")

    win, page = open_models_page()
    start_a_slow_download(qtbot, page, hub_server)
    close_window(win)
    hub_server.faults.rate = None

    win, page = open_models_page()
    downloaded = EmberPaths.from_env().model_destination(SMOL_REPO, SMOL_FILE)
    try:
        assert wait_for_download(win, SMOL_FILE, timeout=60) == downloaded  # the kit's wait on the queue
        qtbot.waitUntil(lambda: any(s.startswith("downloaded") for s in column(page.library_view, "Source")),
                        timeout=60000)
        assert downloaded.read_bytes() == smollm2_path.read_bytes()
        assert max(hub_server.stats.range_starts) > 2_000_000  # continued from the part, not from zero
        assert column(page.downloads_view, "State") == ["done"]
    finally:
        close_window(win)
