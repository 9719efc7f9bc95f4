"""The icons are found through importlib.resources, are all in one style, and follow the theme."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from importlib import resources

import pytest
from PySide6.QtGui import QColor

from app.views.icons import icon_svg, themed_icon
from app.views.main_window import PAGE_ICONS, PAGES

SVG = "{http://www.w3.org/2000/svg}svg"


def icon_names() -> list[str]:
    return sorted(p.name[:-4] for p in (resources.files("resources") / "icons").iterdir() if p.name.endswith(".svg"))


def test_every_page_has_an_icon_that_exists():
    assert set(PAGE_ICONS) == set(PAGES)
    assert set(PAGE_ICONS.values()) <= set(icon_names())


@pytest.mark.parametrize("name", icon_names())
def test_each_icon_is_a_24px_line_drawing_in_the_current_colour(name):
    root = ET.fromstring(icon_svg(name))
    assert root.tag == SVG and root.get("viewBox") == "0 0 24 24"
    assert root.get("stroke") == "currentColor" and root.get("fill") == "none"
    colours = {el.get(attr) for el in root.iter() for attr in ("stroke", "fill") if el.get(attr)}
    assert colours <= {"currentColor", "none"}, f"{name} hard-codes a colour: {colours}"


def test_an_icon_is_painted_in_the_colour_asked_for(qapp):
    for color in ("#ffffff", "#000000"):
        image = themed_icon("chat", QColor(color)).pixmap(48, 48).toImage()
        opaque = [image.pixelColor(x, y) for x in range(48) for y in range(48) if image.pixelColor(x, y).alpha() == 255]
        assert opaque, "nothing was drawn"
        assert all(c.name() == color for c in opaque)


def test_a_missing_icon_says_so():
    with pytest.raises(FileNotFoundError):
        icon_svg("no-such-icon")
