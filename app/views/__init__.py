"""app.views (importing it applies the PySide6 reference-count guard: see app/qt_compat.py)"""

import app.qt_compat  # noqa: F401
