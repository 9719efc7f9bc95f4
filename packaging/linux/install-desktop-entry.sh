#!/usr/bin/env bash
# Put Ember in this user's application menu: the desktop entry, the icon and the AppStream metadata under
# ~/.local/share, pointing at the `ember` next to this script. Run it again after moving the folder.
# To undo: ./install-desktop-entry.sh --remove
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
ENTRY="$DATA/applications/ember.desktop"
ICON="$DATA/icons/hicolor/scalable/apps/ember.svg"
METAINFO="$DATA/metainfo/$(basename "$HERE"/share/metainfo/*.metainfo.xml)"

if [[ "${1:-}" == "--remove" ]]; then
    rm -f "$ENTRY" "$ICON" "$METAINFO"
    echo "Removed Ember from the application menu."
    exit 0
fi
mkdir -p "$(dirname "$ENTRY")" "$(dirname "$ICON")" "$(dirname "$METAINFO")"
sed "s|^Exec=ember|Exec=\"$HERE/ember\"|" "$HERE/share/applications/ember.desktop" > "$ENTRY"
cp "$HERE/share/icons/hicolor/scalable/apps/ember.svg" "$ICON"
cp "$HERE"/share/metainfo/*.metainfo.xml "$METAINFO"
command -v update-desktop-database >/dev/null && update-desktop-database "$DATA/applications" || true
echo "Ember is in the application menu (entry: $ENTRY)."
