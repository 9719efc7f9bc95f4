"""Search the Hub for GGUF models and read one repo's details (model card, GGUF files).

Plain dataclasses come back, so the app's Qt models and the CLI use the same results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine.errors import InvalidInput
from engine.hub.client import check_reachable, hf_api, hub_errors
from engine.hub.files import GgufFile, files_from_info, group_gguf_files

# Ember's sort names -> huggingface_hub's (the Hub always sorts these descending).
SORTS = {"downloads": "downloads", "likes": "likes", "updated": "last_modified"}
EXPAND = ["author", "downloads", "likes", "lastModified", "tags", "cardData"]
MAX_CARD_BYTES = 512 * 1024


@dataclass(frozen=True)
class ModelSummary:
    repo_id: str
    author: str | None
    downloads: int
    likes: int
    last_modified: datetime | None
    license: str | None
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"repo_id": self.repo_id, "author": self.author, "downloads": self.downloads, "likes": self.likes,
                "last_modified": self.last_modified.isoformat() if self.last_modified else None,
                "license": self.license, "tags": list(self.tags)}


@dataclass(frozen=True)
class RepoDetail:
    summary: ModelSummary
    card: str  # the model card's Markdown (README.md), without its YAML header
    files: list[GgufFile] = field(default_factory=list)
    commit: str | None = None
    gated: bool = False

    def to_dict(self) -> dict:
        return {**self.summary.to_dict(), "card": self.card, "commit": self.commit, "gated": self.gated,
                "files": [f.to_dict() for f in self.files]}


def _license(info) -> str | None:
    card = getattr(info, "card_data", None)
    value = card.get("license") if card is not None else None
    if value:
        return str(value)
    for tag in info.tags or []:
        if tag.startswith("license:"):
            return tag.split(":", 1)[1]
    return None


def _summary(info) -> ModelSummary:
    return ModelSummary(repo_id=info.id, author=info.author or info.id.split("/")[0],
                        downloads=int(info.downloads or 0), likes=int(info.likes or 0),
                        last_modified=info.last_modified, license=_license(info), tags=tuple(info.tags or ()))


def search_models(query: str, *, endpoint: str, sort: str = "downloads", limit: int = 20,
                  token: str | bool | None = None) -> list[ModelSummary]:
    """GGUF repos whose name contains `query`, most downloaded / liked / recently updated first."""
    if sort not in SORTS:
        raise InvalidInput(f"Unknown sort {sort!r}.", f"Use one of: {', '.join(SORTS)}.")
    if limit < 1:
        raise InvalidInput("The limit must be at least 1.")
    check_reachable(endpoint)
    with hub_errors(endpoint):
        found = hf_api(endpoint, token).list_models(search=query or None, filter="gguf", sort=SORTS[sort],
                                                    limit=limit, expand=EXPAND)
        return [_summary(info) for info in found]


def model_card(repo_id: str, *, endpoint: str, revision: str | None = None,
               token: str | bool | None = None) -> str:
    """The repo's README.md as Markdown without the YAML metadata block; '' when it has none."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    url = hf_hub_url(repo_id, "README.md", revision=revision, endpoint=endpoint)
    with hub_errors(endpoint, repo_id, "README.md", revision):
        response = get_session().get(url, headers=build_hf_headers(token=token), timeout=30,
                                     follow_redirects=True)
        if response.status_code == 404 and response.headers.get("X-Error-Code") == "EntryNotFound":
            return ""
        hf_raise_for_status(response)
    return strip_front_matter(response.content[:MAX_CARD_BYTES].decode("utf-8", "replace"))


def strip_front_matter(text: str) -> str:
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4:].lstrip("\n")
    return text


def repo_detail(repo_id: str, *, endpoint: str, revision: str | None = None,
                token: str | bool | None = None) -> RepoDetail:
    """What the detail view shows: the summary, the model card and the GGUF files (sizes, SHA-256)."""
    with hub_errors(endpoint, repo_id, revision=revision):
        info = hf_api(endpoint, token).model_info(repo_id, revision=revision, files_metadata=True)
    files = group_gguf_files(files_from_info(info))
    card = model_card(repo_id, endpoint=endpoint, revision=info.sha or revision, token=token)
    return RepoDetail(_summary(info), card, files, info.sha, bool(info.gated))

