"""The bundle's entry point: the `ember` program of the PyInstaller build (packaging/ember.spec).

The same as the `ember` console script of a pip install; `ember --child MODULE` runs a child process.
"""

import sys

from app.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
