"""The first start's welcome: with the network it recommends a model for this machine and downloads
it; without it says so and still offers the starter model and local files; it finds the models LM
Studio and Ollama keep; it never comes back once used or skipped, and not at all when there are chats."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton

from app.services import Services
from app.views.main_window import MainWindow
from engine.library.first_run import CANDIDATES, ollama_models, other_apps_models, recommend
from engine.paths import EmberPaths
from engine.runtime.hardware import HardwareInfo
from tests.support.gguf_files import write_tiny_model

GB = 1_000_000_000


@pytest.fixture
def open_fresh(qtbot, ember_home):
    """A window on a fresh home, welcome included (what a first start looks like)."""
    opened = []

    def opener(other_apps_home=None) -> MainWindow:
        services = Services(EmberPaths(ember_home))
        window = MainWindow(services)
        if other_apps_home is not None:
            window.welcome.home = other_apps_home
        window.runtime.threads = 1
        qtbot.addWidget(window)
        window.show()
        opened.append((window, services))
        return window

    yield opener
    for window, services in opened:
        window.close()
        services.close()


def fake_home(tmp_path):
    """A home where LM Studio keeps one model and Ollama one GGUF blob (and a non-GGUF blob)."""
    home = tmp_path / "user"
    lmstudio = home / ".lmstudio" / "models" / "someone" / "tiny"
    lmstudio.mkdir(parents=True)
    write_tiny_model(lmstudio / "tiny-Q4_0.gguf")
    blobs = home / ".ollama" / "models" / "blobs"
    blobs.mkdir(parents=True)
    write_tiny_model(blobs / "sha256-aaaa")
    (blobs / "sha256-bbbb").write_text('{"template": "not a model"}')
    manifest = home / ".ollama" / "models" / "manifests" / "registry.ollama.ai" / "library" / "tiny" / "latest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:aaaa"},
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:bbbb"}]}))
    return home


def test_the_recommendation_follows_the_memory():
    small = HardwareInfo(cpu_cores=4, ram_total=2 * GB, ram_available=int(1.2 * GB))
    big = HardwareInfo(cpu_cores=16, ram_total=64 * GB, ram_available=48 * GB)
    assert recommend(small, 20e9).candidate.approx_size < GB  # only the smallest fits
    assert recommend(big, 200e9).candidate == CANDIDATES[0]  # fast memory: the largest is quick enough
    assert recommend(big, 10e9).candidate != CANDIDATES[0]  # slow memory: a smaller one answers quicker
    assert recommend(HardwareInfo(cpu_cores=1, ram_total=GB // 4, ram_available=GB // 8), 20e9) is None


def test_other_apps_models_are_found(tmp_path):
    home = fake_home(tmp_path)
    found = {f.app: f for f in other_apps_models(home)}
    assert set(found) == {"LM Studio", "Ollama"}
    assert found["LM Studio"].add_folder and found["LM Studio"].files[0].name == "tiny-Q4_0.gguf"
    assert ollama_models(home / ".ollama" / "models") == [home / ".ollama" / "models" / "blobs" / "sha256-aaaa"]
    assert other_apps_models(tmp_path / "nobody") == []


def test_online_it_recommends_a_model_for_this_machine_and_downloads_it(qtbot, open_fresh, hub_server,
                                                                        known_bandwidth):
    for candidate in CANDIDATES:
        hub_server.add_repo(candidate.repo_id, {candidate.filename: b"GGUF not really"}, tags=["gguf"])
    window = open_fresh()
    panel = window.welcome_panel
    assert panel is not None and panel.isVisible()
    qtbot.waitUntil(lambda: panel.download.isEnabled(), timeout=30000)
    assert "This machine:" in panel.machine.text()
    assert any(c.title in panel.recommended_text.text() for c in CANDIDATES)
    assert "tokens/s" in panel.recommended_text.text() and "GB" in panel.recommended_text.text()
    qtbot.mouseClick(panel.download, Qt.MouseButton.LeftButton)
    assert [item.repo_id for item in window.controllers.downloads.queue.items()] == [panel.pick.candidate.repo_id]
    assert not panel.isVisible()  # used: it goes away
    window.close()
    assert open_fresh().welcome_panel is None  # and does not come back


def test_the_models_other_apps_keep_are_added_where_they_are(qtbot, open_fresh, known_bandwidth, tmp_path):
    home = fake_home(tmp_path)
    window = open_fresh(home)
    panel = window.welcome_panel
    qtbot.waitUntil(lambda: panel.findChild(QPushButton, "welcomeAddOllamaButton") is not None, timeout=10000)
    assert "LM Studio keeps 1 model file" in panel.findChild(QLabel, "welcomeFoundLMStudioLabel").text()
    qtbot.mouseClick(panel.findChild(QPushButton, "welcomeAddLMStudioButton"), Qt.MouseButton.LeftButton)
    # waited for by its result: the first library_changed can be the start-up scan's, before the add
    qtbot.waitUntil(lambda: any(e.path.endswith("tiny-Q4_0.gguf") for e in window.library.entries), timeout=20000)
    assert (home / ".lmstudio" / "models" / "someone" / "tiny" / "tiny-Q4_0.gguf").exists()  # not moved
    assert not panel.isVisible()


def test_offline_it_says_so_and_the_starter_model_still_works(qtbot, open_fresh, known_bandwidth):
    window = open_fresh()  # HF_ENDPOINT points nowhere: no network
    panel = window.welcome_panel
    qtbot.waitUntil(lambda: "no network" in panel.recommended_text.text(), timeout=30000)
    assert not panel.download.isEnabled()
    assert panel.starter_row.isVisible() and "works offline" in panel.starter_text.text()
    qtbot.waitUntil(lambda: any(e.source == "starter" for e in window.library.entries), timeout=20000)
    with qtbot.waitSignal(window.runtime.loaded, timeout=60000):
        qtbot.mouseClick(panel.use_starter, Qt.MouseButton.LeftButton)
    assert window.services.chat_model is not None and not panel.isVisible()


def test_skip_and_existing_chats_keep_it_away(qtbot, open_fresh, ember_home):
    window = open_fresh()
    qtbot.mouseClick(window.welcome_panel.skip, Qt.MouseButton.LeftButton)
    assert not window.welcome_panel.isVisible()
    window.close()
    assert open_fresh().welcome_panel is None
