"""XML from inside a document (DOCX, EPUB), read with every entity refused.

An XML file can declare entities: an external one reads another file into the text (a DOCX that
leaks ~/.ssh into the index), an internal one can expand a billion times (the "billion laughs").
Office and EPUB files never need them, so any entity declaration refuses the file, and no DTD is
ever loaded. This is the expat parser of the standard library with the handlers defusedxml sets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from xml.parsers import expat

from engine.rag.errors import DamagedDocument, UnsafeXml
from engine.rag.files import display_name

StartHandler = Callable[[str, dict[str, str]], None]  # (local name, attributes by local name)
EndHandler = Callable[[str], None]
TextHandler = Callable[[str], None]


def parse_xml(data: bytes, path: Path, part: str, *, start: StartHandler, end: EndHandler,
              text: TextHandler) -> None:
    """Walk `data`, calling the handlers with local names (namespaces dropped: "w:p" -> "p")."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True

    def refuse(*_args) -> None:
        raise UnsafeXml(f"{display_name(path)} declares XML entities in {part!r}; Ember does not read such "
                        "files.", path=str(path))

    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = lambda name, attrs: start(_local(name), {_local(k): v for k, v in attrs.items()})
    parser.EndElementHandler = lambda name: end(_local(name))
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise DamagedDocument(f"{display_name(path)} is damaged: its part {part!r} is not valid XML "
                              f"({expat.ErrorString(exc.code)}, line {exc.lineno}).", path=str(path)) from exc


def _local(name: str) -> str:
    return name.rsplit(" ", 1)[-1]
