"""RenderedPage: one PDF page drawn to a PNG by the document child, and where the cited passage is on it.

Plain data, like ParsedDocument: the child sends it as one event line (the pixels go in the PNG file,
never in the event), and the app reads it without importing PDFium.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SCALE = 2.0  # 144 dpi: sharp on a high-density screen when a page is shown at its width
Box = tuple[int, int, int, int]  # x, y, width, height in the image's pixels, from its top left


@dataclass(frozen=True)
class RenderedPage:
    path: str  # the PDF
    png_path: str
    page: int  # 1-based
    page_count: int
    width: int  # the PNG's size in pixels
    height: int
    scale: float  # pixels per PDF point (1/72 inch); smaller than asked for when a page is huge
    highlights: tuple[Box, ...] = ()  # one rectangle per line of the passage's text on this page
    matched_words: int = 0  # of the passage's words, how many are on this page
    passage_words: int = 0

    @property
    def found(self) -> bool:
        """Some of the passage is on this page."""
        return bool(self.highlights)

    def to_dict(self) -> dict:
        return {"path": self.path, "png_path": self.png_path, "page": self.page, "page_count": self.page_count,
                "width": self.width, "height": self.height, "scale": self.scale,
                "highlights": [list(box) for box in self.highlights], "matched_words": self.matched_words,
                "passage_words": self.passage_words}

    @classmethod
    def from_dict(cls, data: dict) -> RenderedPage:
        return cls(path=data["path"], png_path=data["png_path"], page=int(data["page"]),
                   page_count=int(data["page_count"]), width=int(data["width"]), height=int(data["height"]),
                   scale=float(data["scale"]),
                   highlights=tuple((int(x), int(y), int(w), int(h)) for x, y, w, h in data.get("highlights", ())),
                   matched_words=int(data.get("matched_words", 0)), passage_words=int(data.get("passage_words", 0)))
