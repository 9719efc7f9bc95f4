"""The recommended embedding model: which files embed, its first-use download through the queue
(verified, paused and resumed, a corrupt file refused), and the prefixes its family wants.

The stand-in Hub serves the real MiniLM GGUF under the recommended repo id and file name, with that
file's SHA-256 in the LFS metadata, as the real Hub publishes it for the real file."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from engine.errors import ChecksumMismatch
from engine.gguf.inspect import inspect_gguf
from engine.hub.download import DownloadOptions
from engine.hub.queue import DownloadQueue
from engine.hub.sidecar import part_path, sidecar_path
from engine.jobs import CancelToken
from engine.rag.embedder import EMBEDDING_CONTEXT, Embedder
from engine.rag.embedding_models import RECOMMENDED, download, is_embedding_model
from engine.rag.embedding_prefixes import Prefixes, prefixes_for
from engine.runtime.registry import HostRegistry
from tests.support.granite_like_gguf import TRAINED_CONTEXT, write_granite_like_gguf
from tests.support.hub_fixtures import drain

pytestmark = pytest.mark.timeout(60)


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def served(hub_server, minilm_gguf):
    """The stand-in Hub with the recommended repo, its file being the MiniLM GGUF's bytes."""
    hub_server.add_repo(RECOMMENDED.repo_id, {RECOMMENDED.filename: minilm_gguf}, license="apache-2.0",
                        tags=["gguf", "feature-extraction"])
    return hub_server


@pytest.fixture
def queue(served, paths) -> DownloadQueue:
    return DownloadQueue(paths, served.url, options=DownloadOptions(stall_timeout_s=1, backoff_s=0.05))


def test_embedding_models_are_told_from_chat_models_by_their_header(minilm_gguf, smollm2_path):
    minilm, smollm2 = inspect_gguf(minilm_gguf), inspect_gguf(smollm2_path)
    assert minilm.architecture == "bert" and is_embedding_model(minilm, minilm_gguf)
    assert smollm2.architecture == "llama" and not is_embedding_model(smollm2, smollm2_path)
    assert not is_embedding_model(None, smollm2_path)  # unreadable, and no "embed" in its name
    assert is_embedding_model(None, RECOMMENDED.filename)  # before the download, by its name


def test_first_use_download_lands_verified_in_the_library(queue, served, paths, minilm_gguf, library):
    assert RECOMMENDED.present(paths) is None
    result, events = drain(download(RECOMMENDED, queue))
    dest = RECOMMENDED.destination(paths)
    assert result == dest and RECOMMENDED.present(paths) == dest
    assert dest.parent.is_relative_to(paths.models) and dest.name == RECOMMENDED.filename
    assert sha256_of(dest) == sha256_of(minilm_gguf)
    assert any(e.message.startswith("Verifying") for e in events)
    [item] = queue.items()
    assert item.state == "done" and item.sha256 == sha256_of(minilm_gguf)
    [entry] = [e for e in library.scan() if e.source == "hub"]
    assert entry.path == str(dest) and entry.repo_id == RECOMMENDED.repo_id
    assert entry.sha256 == sha256_of(minilm_gguf)  # the SHA-256 the download checked, not recomputed

    requests = len(served.stats.requests)
    again, _ = drain(download(RECOMMENDED, queue))  # already there: nothing is asked of the Hub
    assert again == dest and len(served.stats.requests) == requests


def test_a_download_paused_half_way_resumes_to_the_whole_file(queue, served, paths, minilm_gguf):
    size = minilm_gguf.stat().st_size
    served.faults.rate = 20_000_000  # slow enough to stop in the middle
    cancel = CancelToken()
    job = download(RECOMMENDED, queue, cancel)
    for progress in job:
        if progress.done > size // 2:
            cancel.cancel()
    dest = RECOMMENDED.destination(paths)
    paused = queue.get(str(dest))
    assert paused.state == "paused" and size // 2 < paused.done < size
    assert part_path(dest).stat().st_size == paused.done and RECOMMENDED.present(paths) is None

    served.faults.rate = None
    result, _ = drain(download(RECOMMENDED, queue))
    assert result == dest and sha256_of(dest) == sha256_of(minilm_gguf)
    assert served.stats.range_starts[-1] == paused.done  # continued from the part, not from zero
    assert not part_path(dest).exists() and queue.get(str(dest)).state == "done"


def test_a_corrupted_file_fails_the_checksum_and_never_enters_the_library(queue, served, paths, library):
    served.faults.wrong_bytes = True  # the right length, other bytes: the published SHA-256 no longer matches
    with pytest.raises(ChecksumMismatch, match="failed verification") as caught:
        drain(download(RECOMMENDED, queue))
    assert "not in your library" in caught.value.message
    dest = RECOMMENDED.destination(paths)
    assert RECOMMENDED.present(paths) is None and not part_path(dest).exists()
    assert list(paths.models.rglob("*.gguf")) == []
    assert [e.source for e in library.scan()] == ["starter"]
    assert queue.get(str(dest)).state == "failed" and sidecar_path(dest).exists()  # the queue shows why


def test_the_recommended_model_gets_its_own_prefixes_and_minilm_none(minilm_gguf, paths):
    # Granite Embedding is trained without prefixes; the name must not fall into another family's
    granite = prefixes_for(RECOMMENDED.destination(paths))
    assert granite == Prefixes() == prefixes_for(RECOMMENDED.filename)
    assert prefixes_for(minilm_gguf) == Prefixes()
    assert prefixes_for("multilingual-e5-small-q8_0.gguf") == Prefixes("query: ", "passage: ")
    assert prefixes_for("embeddinggemma-300M-Q8_0.gguf").query.startswith("task: search result")


def test_the_bundled_llama_cpp_runs_a_model_shaped_like_the_recommended_one(tmp_path):
    """The real file is not downloaded here; one with its architecture, tokenizer, pooling, width and
    context (random weights) shows that this llama.cpp loads such a model and gives one vector per text."""
    silu = write_granite_like_gguf(tmp_path / "granite-like-silu.gguf", "silu")
    gelu = write_granite_like_gguf(tmp_path / "granite-like-gelu.gguf", "gelu")
    info = inspect_gguf(silu)
    assert info.architecture == "modern-bert" and is_embedding_model(info, silu)
    embedder = Embedder(HostRegistry(), log_dir=tmp_path, threads=1)
    texts = ["Wo liegt der höchste Berg Japans?", "富士山は日本最高峰の独立峰です。"]
    try:
        client = embedder.client(silu)
        ready = client.info()
        assert (ready["pooling"], ready["n_embd"]) == ("cls", RECOMMENDED.dimensions)
        assert ready["n_ctx"] == min(EMBEDDING_CONTEXT, TRAINED_CONTEXT)
        with_silu = client.embed(texts)
        with_gelu = embedder.client(gelu).embed(texts)  # replaces the first host
    finally:
        embedder.stop()
    assert with_silu.shape == (2, RECOMMENDED.dimensions)
    assert np.allclose(np.linalg.norm(with_silu, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(with_silu, with_gelu, atol=1e-3)  # the activation key is read, not ignored
