"""Windows in tests start past the first-run welcome (its checks measure the memory bandwidth and ask
the Hub); the welcome's own tests open theirs without this."""

from __future__ import annotations

from pathlib import Path

from app.controllers.welcome_controller import DONE_KEY
from engine.config import update_settings


def skip_welcome(home: Path) -> None:
    update_settings(Path(home) / "settings.json", lambda s: s.set(DONE_KEY, True))
