"""What the Settings page chose is what a model is loaded with, when the model bar says "auto"."""

from __future__ import annotations

import pytest

from engine.preferences import save_preferences
from tests.e2e.conftest import load_model

pytestmark = pytest.mark.timeout(120)


def test_a_load_takes_gpu_layers_and_flash_attention_from_the_settings(qtbot, open_window):
    window = open_window()
    save_preferences(window.services.paths, gpu_layers="0", flash_attention=False)  # both differ from the defaults
    assert window.chat_page.model_bar.gpu_setting() == "auto"
    load_model(qtbot, window, context=512)
    settings = window.services.chat_model.host.settings
    assert (settings.gpu_layers, settings.flash_attention, settings.context_length) == (0, False, 512)
