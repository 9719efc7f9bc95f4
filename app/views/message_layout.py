"""Where each part of a message goes: its Markdown document, its code blocks, its header and footer.

Kept apart from painting so that sizeHint, paint and mouse hit-testing share one answer. Documents
are cached per message (replaced when its text, status or the width changes), so scrolling a long
chat lays nothing out again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from PySide6.QtCore import QRectF
from PySide6.QtGui import QFont, QFontMetrics, QTextBlockFormat, QTextCursor, QTextDocument, QTextFormat

from app.models.message_model import STATUS_WORDS, DisplayMessage

CITE_SCHEME = "ember-cite:"  # a citation link's href: ember-cite:<n>
_CITATION = re.compile(r"\[(\d{1,3})\]")
MAX_LISTED = 10  # sources listed under a reply that cites none
_FENCE = re.compile(r"(```.*?(?:```|$))", re.S)

MARGIN_X, MARGIN_Y, PAD = 12, 5, 10
CHIP_PAD = 6
CODE_PAD = 6


@dataclass
class CodeBlock:
    rect: QRectF  # in document coordinates
    text: str


@dataclass
class DocLayout:
    doc: QTextDocument
    code_blocks: list[CodeBlock] = field(default_factory=list)

    @property
    def height(self) -> float:
        return self.doc.size().height()


def build_document(item: DisplayMessage, width: float, font: QFont) -> DocLayout:
    m = item.message
    doc = QTextDocument()
    doc.setDefaultFont(font)
    doc.setDocumentMargin(0)
    text = m.content or ("…" if m.status == "streaming" else "")
    if m.role == "assistant":
        doc.setMarkdown(with_citation_links(text, item.sources) if item.sources else text)
    else:
        doc.setPlainText(text)  # what the user typed, exactly
    doc.setTextWidth(max(40.0, width))
    return DocLayout(doc, _code_blocks(doc))


def with_citation_links(text: str, sources) -> str:
    """The reply's Markdown with each [n] of a known source (and each mention of a source by its
    location, "report.pdf, page 3") made a link, outside code, and the list of sources under it (each
    a link too), so a click on any of them opens the source."""
    numbers = {s.number for s in sources}
    cited: set[int] = set()

    def link(match: re.Match) -> str:
        n = int(match.group(1))
        if n not in numbers:
            return match.group(0)
        cited.add(n)
        return f"[\\[{n}\\]]({CITE_SCHEME}{n})"

    by_location = {re.escape(s.location): s.number for s in sources}
    mention = re.compile("|".join(sorted(by_location, key=len, reverse=True))) if by_location else None

    def named_link(match: re.Match) -> str:  # a small model often names the source instead of writing [n]
        n = next(n for pattern, n in by_location.items() if re.fullmatch(pattern, match.group(0)))
        cited.add(n)
        return f"[{_escape(match.group(0))}]({CITE_SCHEME}{n})"

    def links(part: str) -> str:
        part = _CITATION.sub(link, part)
        return mention.sub(named_link, part) if mention else part

    parts = _FENCE.split(text)
    body = "".join(part if i % 2 else links(part) for i, part in enumerate(parts))
    listed = [s for s in sources if s.number in cited] or list(sources[:MAX_LISTED])
    title = "Sources" if cited else "Sources given (none cited)"
    listing = "  \n".join(f"[\\[{s.number}\\] {_escape(s.location)}]({CITE_SCHEME}{s.number})" for s in listed)
    return f"{body}\n\n**{title}**  \n{listing}\n"


def _escape(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>])", r"\\\1", text)


def citation_at(layout: DocLayout, pos) -> int | None:
    """The [n] of the citation link at `pos` (document coordinates), if there is one."""
    href = layout.doc.documentLayout().anchorAt(pos)
    if href.startswith(CITE_SCHEME):
        try:
            return int(href[len(CITE_SCHEME):])
        except ValueError:
            return None
    return None


def _is_code(block) -> bool:
    fmt = block.blockFormat()
    return fmt.hasProperty(QTextFormat.Property.BlockCodeFence) or fmt.hasProperty(
        QTextFormat.Property.BlockCodeLanguage)


def _code_blocks(doc: QTextDocument) -> list[CodeBlock]:
    """Consecutive code lines (fenced or indented) form one block with one copy button; each block
    gets room above it for the button and a little inset."""
    groups: list[list] = []
    block, previous_code = doc.begin(), False
    while block.isValid():
        code = _is_code(block)
        if code and not previous_code:
            groups.append([])
        if code:
            groups[-1].append(block)
        previous_code = code
        block = block.next()
    if not groups:
        return []
    line = QFontMetrics(doc.defaultFont()).height()
    for group in groups:
        for i, b in enumerate(group):
            fmt = QTextBlockFormat()
            fmt.setLeftMargin(CODE_PAD)
            fmt.setRightMargin(CODE_PAD)
            if i == 0:
                fmt.setTopMargin(line + 2)
            if i == len(group) - 1:
                fmt.setBottomMargin(CODE_PAD)
            QTextCursor(b).mergeBlockFormat(fmt)
    layout = doc.documentLayout()
    blocks = []
    for group in groups:
        top = layout.blockBoundingRect(group[0]).top() - line  # the margin above holds the Copy button
        bottom = layout.blockBoundingRect(group[-1]).bottom() + CODE_PAD - 2
        rect = QRectF(0, top, doc.textWidth(), bottom - top)
        blocks.append(CodeBlock(rect, "\n".join(b.text() for b in group)))
    return blocks


def header_text(item: DisplayMessage) -> str:
    m = item.message
    if m.role == "user":
        return "You"
    name = m.provenance.model_name
    return f"Assistant · {name}" if name else "Assistant"


def footer_text(item: DisplayMessage) -> str:
    """Status (when not complete) and the reply's stats: time to first token, speed, tokens."""
    m = item.message
    parts = []
    if m.status != "complete":
        word = STATUS_WORDS.get(m.status, m.status)
        parts.append(f"{word}: {m.error}" if m.status == "error" and m.error else word.capitalize())
    s = m.stats
    if s is not None and m.role == "assistant" and m.status != "streaming":
        if s.ttft_s is not None:
            parts.append(f"first token {s.ttft_s:.2f} s")
        if s.tokens_per_s:
            parts.append(f"{s.tokens_per_s:.1f} tokens/s")
        parts.append(f"{s.completion_tokens} tokens")
    return "  ·  ".join(parts)


def branch_text(item: DisplayMessage) -> str:
    return f"{item.sibling_index}/{item.sibling_count}" if item.sibling_count > 1 else ""


@dataclass
class Geometry:
    """Rects in the view's coordinates for one row."""

    bubble: QRectF
    header: QRectF
    doc_origin_x: float
    doc_origin_y: float
    footer: QRectF
    prev_chip: QRectF | None
    next_chip: QRectF | None
    branch_label: QRectF | None
    copy_chips: list[tuple[QRectF, str]]


def doc_width(row_width: float) -> float:
    return row_width - 2 * MARGIN_X - 2 * PAD


def row_height(item: DisplayMessage, layout: DocLayout, metrics: QFontMetrics) -> int:
    line = metrics.height()
    footer = line + 4 if footer_text(item) or branch_text(item) else 0
    return int(2 * MARGIN_Y + 2 * PAD + line + 4 + layout.height + footer)


def geometry(item: DisplayMessage, layout: DocLayout, row: QRectF, metrics: QFontMetrics) -> Geometry:
    line = metrics.height()
    bubble = row.adjusted(MARGIN_X, MARGIN_Y, -MARGIN_X, -MARGIN_Y)
    header = QRectF(bubble.left() + PAD, bubble.top() + PAD, bubble.width() - 2 * PAD, line)
    ox, oy = bubble.left() + PAD, header.bottom() + 4
    footer = QRectF(ox, oy + layout.height + 4, bubble.width() - 2 * PAD, line)
    prev_chip = next_chip = label = None
    branch = branch_text(item)
    if branch:
        arrow = metrics.horizontalAdvance("◀") + 2 * CHIP_PAD
        label_w = metrics.horizontalAdvance(branch) + 2 * CHIP_PAD
        right = footer.right()
        next_chip = QRectF(right - arrow, footer.top(), arrow, line)
        label = QRectF(next_chip.left() - label_w, footer.top(), label_w, line)
        prev_chip = QRectF(label.left() - arrow, footer.top(), arrow, line)
    chips = []
    copy_w = metrics.horizontalAdvance("Copy") + 2 * CHIP_PAD
    for block in layout.code_blocks:
        r = block.rect.translated(ox, oy)
        chips.append((QRectF(r.right() - copy_w - 2, r.top() + 2, copy_w, line - 2), block.text))
    return Geometry(bubble, header, ox, oy, footer, prev_chip, next_chip, label, chips)
