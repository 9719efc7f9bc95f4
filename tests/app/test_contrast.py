"""WCAG AA contrast in both themes, computed from the palettes Ember applies: body text, selection,
tooltips, placeholders and links at 4.5:1; the colours that carry a meaning (errors, warnings, right
and wrong answers) on every background they are drawn on; bars and chart lines at 3:1."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QPalette

from app.views.colors import GRAPHIC, TEXT, contrast_ratio, graphic_color, text_color
from app.views.message_bar import TINTS, MessageBar
from app.views.message_delegate import bubble_colors
from app.views.theme import apply_theme

R = QPalette.ColorRole
TEXT_PAIRS = [
    (R.WindowText, R.Window), (R.Text, R.Base), (R.Text, R.AlternateBase), (R.ButtonText, R.Button),
    (R.HighlightedText, R.Highlight), (R.ToolTipText, R.ToolTipBase), (R.PlaceholderText, R.Base),
    (R.Link, R.Base),
]


@pytest.fixture(params=["light", "dark"])
def themed(request, qapp, monkeypatch):
    """The application's palette under one theme, put back afterwards."""
    original = QPalette(qapp.palette())
    monkeypatch.setenv("EMBER_THEME", request.param)
    apply_theme(qapp)
    try:
        yield request.param, QPalette(qapp.palette())
    finally:
        qapp.setPalette(original)


def test_the_palette_text_pairs_meet_aa(themed):
    theme, palette = themed
    low = {(fg.name, bg.name): round(contrast_ratio(palette.color(fg), palette.color(bg)), 2)
           for fg, bg in TEXT_PAIRS
           if contrast_ratio(palette.color(fg), palette.color(bg)) < 4.5}
    assert not low, f"{theme}: pairs under 4.5:1: {low}"


def test_meaningful_text_colours_meet_aa_on_every_background(themed):
    theme, palette = themed
    backgrounds = {role.name: palette.color(role) for role in (R.Window, R.Base, R.AlternateBase)}
    for role in ("user", "assistant"):
        backgrounds[f"{role} bubble"] = bubble_colors(palette, role)[0]
    low = [(meaning, where, round(contrast_ratio(text_color(meaning, palette), color), 2))
           for meaning in TEXT for where, color in backgrounds.items()
           if contrast_ratio(text_color(meaning, palette), color) < 4.5]
    assert not low, f"{theme}: {low}"


def test_the_muted_text_of_messages_meets_aa(themed):
    theme, palette = themed
    for role in ("user", "assistant"):
        fill, muted = bubble_colors(palette, role)
        assert contrast_ratio(muted, fill) >= 4.5, (theme, role, muted.name(), fill.name())
        assert contrast_ratio(palette.color(R.Text), fill) >= 4.5, (theme, role)


def test_message_bars_keep_their_text_readable(themed, qtbot):
    theme, _palette = themed
    for kind in TINTS:
        bar = MessageBar(kind)
        qtbot.addWidget(bar)
        bar_palette = bar.palette()
        ratio = contrast_ratio(bar_palette.color(R.WindowText), bar_palette.color(R.Window))
        assert ratio >= 4.5, (theme, kind, round(ratio, 2))


def test_bars_and_chart_lines_meet_3_to_1(themed):
    theme, palette = themed
    low = [(part, role.name, round(contrast_ratio(graphic_color(part), palette.color(role)), 2))
           for part in GRAPHIC for role in (R.Window, R.Base)
           if contrast_ratio(graphic_color(part), palette.color(role)) < 3.0]
    assert not low, f"{theme}: {low}"


def test_the_ratio_is_wcags():
    from PySide6.QtGui import QColor
    assert round(contrast_ratio(QColor("#000000"), QColor("#ffffff")), 1) == 21.0
    assert round(contrast_ratio(QColor("#777777"), QColor("#ffffff")), 2) == 4.48  # the classic just-fails grey
