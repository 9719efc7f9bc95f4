"""Which embedding model a collection uses: the recommended multilingual default, and which files can embed.

The default is downloaded on first use, after the user agrees, through the Hub machinery (the
download queue: progress, pause and resume, the published SHA-256 checked), into the model library.
Any GGUF embedding model the user has works as well; `is_embedding_model` tells them from chat models
by their architecture (encoder-only models that llama.cpp runs for embeddings) or their name.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from engine.gguf.inspect import ModelInfo
from engine.hub.queue import DownloadQueue
from engine.jobs import CancelToken, Progress
from engine.paths import EmberPaths

# llama.cpp architectures that only embed (no chat): BERT and its descendants, EmbeddingGemma, T5's encoder
EMBEDDING_ARCHITECTURES = frozenset({"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3",
                                     "modern-bert", "neo-bert", "gemma-embedding", "t5encoder"})


@dataclass(frozen=True)
class EmbeddingModelSpec:
    """A model Ember can offer to download for embeddings, with what the user is told before agreeing."""

    repo_id: str
    filename: str
    size_bytes: int  # the file, as the Hub lists it (shown before the download; the download checks the real one)
    dimensions: int
    max_tokens: int
    licence: str
    summary: str  # one line for the consent dialog

    def destination(self, paths: EmberPaths) -> Path:
        return paths.model_destination(self.repo_id, self.filename)

    def present(self, paths: EmberPaths) -> Path | None:
        """The downloaded file, if it is there (complete: a part being downloaded has another name)."""
        dest = self.destination(paths)
        return dest if dest.is_file() else None


# IBM's Granite Embedding 97M Multilingual R2 (Apache-2.0): a ModernBERT encoder (SiLU feed-forward,
# CLS pooling, its own 180k-token BPE vocabulary) that the bundled llama.cpp runs as "modern-bert".
# IBM publishes no GGUF of it; this is a community Q8_0 conversion (no gate known). It wants no query or
# passage prefixes. Why this one and not EmbeddingGemma or multilingual-e5-small: the README.
RECOMMENDED = EmbeddingModelSpec(
    repo_id="mykor/granite-embedding-97m-multilingual-r2-GGUF",
    filename="granite-embedding-97M-multilingual-r2-Q8_0.gguf",
    size_bytes=115_061_088,
    dimensions=384,
    max_tokens=32_768,  # its trained context; the embedder asks for EMBEDDING_CONTEXT of it
    licence="Apache-2.0",
    summary="Granite Embedding 97M Multilingual R2 (IBM): 200+ languages, 97 M parameters, 115 MB",
)


def is_embedding_model(info: ModelInfo | None, path: str | Path = "") -> bool:
    """Whether a GGUF file is an embedding model (by architecture, or 'embed' in its name)."""
    if info is not None and info.architecture in EMBEDDING_ARCHITECTURES:
        return True
    name = f"{Path(path).name} {info.name if info else ''}".lower()
    return "embed" in name


def download(spec: EmbeddingModelSpec, queue: DownloadQueue, cancel: CancelToken | None = None
             ) -> Generator[Progress, None, Path | None]:
    """Download the model into the library (or continue a paused download); returns its path (None if
    it was paused). The Hub's published SHA-256 is checked by the download itself."""
    dest = spec.destination(queue.paths)
    if dest.is_file():
        return dest
    item = queue.enqueue(spec.repo_id, spec.filename, size=spec.size_bytes)
    if item.state in ("paused", "failed"):
        queue.resume(item.key)
    return (yield from queue.run(item.key, cancel))
