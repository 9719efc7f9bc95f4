"""Makes the first start's welcome for docs/screenshots/welcome.png (a fresh home; on a machine without
network it says so and offers the starter model and local files).

    /work/shared/tools/screenshot.sh docs/screenshots/welcome.png 15 -- \\
        env EMBER_HOME=$(mktemp -d) .venv/bin/python docs/screenshots/welcome_screenshot.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.application import run_window  # noqa: E402


def drive(window) -> None:
    window.resize(1380, 860)
    window.move(0, 0)


if __name__ == "__main__":
    sys.exit(run_window(on_window=drive))
