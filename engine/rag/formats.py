"""Which files Ember reads as documents, by extension. Light: the app can filter a folder with it."""

from __future__ import annotations

from pathlib import Path

from engine.rag.errors import UnsupportedFormat
from engine.rag.files import display_name

TEXT_EXTENSIONS = {".txt", ".text", ".rst", ".org", ".adoc", ".tex", ".csv", ".tsv", ".log", ".srt", ".vtt"}
MARKDOWN_EXTENSIONS = {".md", ".markdown", ".mdown", ".mkd"}
HTML_EXTENSIONS = {".html", ".htm", ".xhtml"}
CODE_EXTENSIONS = {
    ".py", ".pyi", ".ipynb", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".java", ".kt", ".kts", ".scala",
    ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".cs", ".go", ".rs", ".swift", ".m", ".mm", ".rb",
    ".php", ".pl", ".pm", ".lua", ".r", ".jl", ".dart", ".ex", ".exs", ".erl", ".hs", ".ml", ".clj", ".sql",
    ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".css", ".scss", ".vue", ".svelte", ".json", ".yaml",
    ".yml", ".toml", ".ini", ".cfg", ".xml", ".proto", ".graphql", ".cmake", ".gradle", ".nim", ".zig",
}
CODE_NAMES = {"makefile", "dockerfile", "cmakelists.txt", "readme", "license", "changelog"}


def document_kind(path: str | Path) -> str | None:
    """"pdf", "docx", "epub", "markdown", "html", "text" or "code"; None for a file Ember does not read."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".pdf", ".docx", ".epub"):
        return suffix[1:]
    if suffix in MARKDOWN_EXTENSIONS:
        return "markdown"
    if suffix in HTML_EXTENSIONS:
        return "html"
    if suffix in TEXT_EXTENSIONS or path.name.lower() in CODE_NAMES:
        return "text"
    if suffix in CODE_EXTENSIONS:
        return "code"
    return None


def unsupported(path: Path) -> UnsupportedFormat:
    """The error for a file whose kind `document_kind` does not know."""
    what = f"“{path.suffix}” files" if path.suffix else "files without an extension"
    return UnsupportedFormat(f"{display_name(path)} is not a supported document: Ember does not read {what}.",
                             path=str(path))
