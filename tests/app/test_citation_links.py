"""A reply's citations become links: [n] of a source that was in the prompt, a mention of a source by
its location, never inside code; the list under the reply names the cited sources (or, when none is
cited, the ones given), and a click position on a link gives its number."""

from __future__ import annotations

from PySide6.QtCore import QPointF
from PySide6.QtGui import QFont

from app.models.message_model import DisplayMessage
from app.views import message_layout as ml
from engine.store.chat_documents_repo import MessageSource
from engine.store.chats import Message

SOURCES = (MessageSource(1, 1, 11, 1, "/docs/guide.pdf", "pdf", 2, 2, None, None, (), "Tram 28 climbs."),
           MessageSource(2, 2, 12, 1, "/docs/notes.md", "markdown", None, None, 7, 9, ("Budget",), "60 euros."))


def test_numbers_and_mentions_become_links_outside_code():
    text = "Take tram 28 [1] (see guide.pdf, page 2); [7] is unknown.\n\n```\nitems[1]\n```\n"
    linked = ml.with_citation_links(text, SOURCES)
    assert f"[\\[1\\]]({ml.CITE_SCHEME}1)" in linked
    assert f"[guide.pdf, page 2]({ml.CITE_SCHEME}1)" in linked
    assert "[7] is unknown" in linked and "items[1]" in linked  # not a source; code is left alone
    listing = linked.split("**Sources**", 1)[1]
    assert "guide.pdf, page 2" in listing and "notes.md" not in listing  # only what was cited


def test_a_reply_that_cites_nothing_lists_what_it_was_given():
    linked = ml.with_citation_links("Tram 28 goes there.", SOURCES)
    assert "Sources given (none cited)" in linked
    assert f"({ml.CITE_SCHEME}1)" in linked and f"({ml.CITE_SCHEME}2)" in linked


def test_a_click_on_a_link_gives_its_number(qapp):
    message = Message(1, 1, None, "assistant", "Tram 28 [2].", "complete", 0)
    layout = ml.build_document(DisplayMessage(message, sources=SOURCES), 500, QFont())
    found = {ml.citation_at(layout, QPointF(x, y)) for y in range(0, int(layout.height), 3)
             for x in range(0, 500, 4)}
    assert found == {None, 2}
