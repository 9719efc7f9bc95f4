"""Makes the Settings page for docs/screenshots/settings.png.

    /work/shared/tools/screenshot.sh docs/screenshots/settings.png 12 -- \\
        env -u EMBER_HOME XDG_DATA_HOME=$(mktemp -d) XDG_CONFIG_HOME=$(mktemp -d) \\
        .venv/bin/python docs/screenshots/settings_screenshot.py

(without EMBER_HOME, as a desktop start, so that Move… is on)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.application import run_window  # noqa: E402


def drive(window) -> None:
    window.resize(1380, 860)
    window.move(0, 0)
    window.first_painted.connect(lambda: window.nav.setCurrentRow(5))


if __name__ == "__main__":
    sys.exit(run_window(on_window=drive))
