"""The `hub_server` fixture: a started stand-in Hub with a few repos, HF_ENDPOINT pointing at it.

Repos (sizes of listing-only files are declared, not served):
- SMOL_REPO: the real SmolLM2 Q4_1 GGUF (streamed from disk), listed Q8_0/F16/IQ2_XS, a model card;
- Mistral (7B sizes), Qwen (with split Q8_0 and F16), a non-GGUF Llama (filtered out of GGUF searches);
- SPLIT_REPO: a small 3-part split GGUF served for real; EVIL_REPO: paths that try to escape;
- GATED_REPO: answers 401 GatedRepo on downloads.
"""

from __future__ import annotations

import threading

import pytest

from engine.hub.download import DownloadOptions, download
from tests.support.hub_server import HubFile, StandInHub

GB = 10**9
SMOL_REPO = "bartowski/SmolLM2-135M-Instruct-GGUF"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SPLIT_REPO = "acme/tiny-split-GGUF"
SPLIT_PARTS = [f"tiny-Q8_0-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
EVIL_REPO = "evil/escape-GGUF"
GATED_REPO = "gated/Secret-GGUF"
# File names a hostile repository may list: each would write outside the models folder if taken as it is.
EVIL_PATHS = ["../../evil.gguf", "/abs.gguf", "ok/../../../x.gguf", "~/x.gguf", "a\\..\\..\\x.gguf", "C:/x.gguf",
              "C:\\x.gguf", "\\\\host\\share\\x.gguf", "..\\..\\x.gguf", "ok/./../../x.gguf", "nul\x00.gguf"]
SMOL_CARD = "# SmolLM2 135M Instruct\n\nA **tiny** model, quantized to GGUF.\n"


def listed(path: str, size: int) -> HubFile:
    return HubFile(path, declared_size=size)


def split_part_bytes(index: int) -> bytes:
    return bytes((index * 37 + i) % 256 for i in range(100_000 + index * 1000))


def populate(hub: StandInHub, smollm2_path) -> StandInHub:
    gguf_tags = ["gguf", "text-generation", "license:apache-2.0", "en"]
    hub.add_repo(SMOL_REPO, {
        SMOL_FILE: smollm2_path,
        "SmolLM2-135M-Instruct-Q8_0.gguf": listed("SmolLM2-135M-Instruct-Q8_0.gguf", 144_811_488),
        "SmolLM2-135M-Instruct-f16.gguf": listed("SmolLM2-135M-Instruct-f16.gguf", 270_898_400),
        "SmolLM2-135M-Instruct-IQ2_XS.gguf": listed("SmolLM2-135M-Instruct-IQ2_XS.gguf", 71_000_000),
        "config.json": HubFile("config.json", data=b'{"model_type": "llama"}', lfs=False),
    }, card=SMOL_CARD, downloads=12_000, likes=50, last_modified="2024-11-01T10:00:00.000Z",
        license="apache-2.0", tags=gguf_tags + ["llama"])
    hub.add_repo("TheBloke/Mistral-7B-Instruct-v0.2-GGUF", {
        name: listed(name, size) for name, size in [
            ("mistral-7b-instruct-v0.2.Q2_K.gguf", int(3.08 * GB)),
            ("mistral-7b-instruct-v0.2.Q4_K_M.gguf", int(4.37 * GB)),
            ("mistral-7b-instruct-v0.2.Q5_K_S.gguf", int(5.00 * GB)),
            ("mistral-7b-instruct-v0.2.Q8_0.gguf", int(7.70 * GB))]
    }, card="# Mistral 7B Instruct v0.2\n", downloads=90_000, likes=2_500,
        last_modified="2023-12-11T09:00:00.000Z", license="apache-2.0", tags=gguf_tags + ["mistral"])
    qwen = {name: listed(name, size) for name, size in [
        ("qwen2.5-7b-instruct-q4_k_m.gguf", int(4.68 * GB)),
        ("qwen2.5-7b-instruct-q8_0-00001-of-00002.gguf", int(3.99 * GB)),
        ("qwen2.5-7b-instruct-q8_0-00002-of-00002.gguf", int(4.10 * GB)),
        *[(f"fp16/qwen2.5-7b-instruct-fp16-{i:05d}-of-00004.gguf", int(3.9 * GB)) for i in range(1, 5)]]}
    hub.add_repo("Qwen/Qwen2.5-7B-Instruct-GGUF", qwen, card="# Qwen2.5-7B-Instruct-GGUF\n", downloads=50_000,
                 likes=400, last_modified="2025-01-01T00:00:00.000Z", license="apache-2.0",
                 tags=gguf_tags + ["qwen2"])
    hub.add_repo("meta-llama/Llama-3.1-8B-Instruct", {
        "model-00001-of-00004.safetensors": listed("model-00001-of-00004.safetensors", 5 * GB)},
        card="# Llama 3.1\n", downloads=5_000_000, likes=4_000, last_modified="2024-09-25T00:00:00.000Z",
        license="llama3.1", tags=["transformers", "safetensors", "text-generation", "license:llama3.1"])
    hub.add_repo(SPLIT_REPO, {name: split_part_bytes(i) for i, name in enumerate(SPLIT_PARTS, 1)},
                 card="# tiny split\n", downloads=3, likes=0, tags=["gguf"])
    hub.add_repo(EVIL_REPO, {**{path: b"evil" for path in EVIL_PATHS}, "fine.Q4_0.gguf": b"fine"}, downloads=1,
                 tags=["gguf"])
    hub.add_repo(GATED_REPO, {"secret.Q4_0.gguf": b"secret"}, downloads=2, tags=["gguf"], gated=True)
    return hub


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stand-in-hub" or "process_request" in t.name]


@pytest.fixture
def hub_server(smollm2_path, monkeypatch):
    """A started stand-in Hub (faults off, counters at zero); stopped after the test with no thread left."""
    hub = populate(StandInHub().start(), smollm2_path)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    try:
        yield hub
    finally:
        hub.stop()
    assert not _server_threads(), f"the stand-in Hub left threads: {_server_threads()}"


def drain(generator):
    """Run a slow-work generator to its end: (its return value, the Progress events it yielded)."""
    events = []
    while True:
        try:
            events.append(next(generator))
        except StopIteration as stop:
            return stop.value, events


FAST = DownloadOptions(stall_timeout_s=1.0, backoff_s=0.05, attempts=3)  # a test's stall and retries, in seconds


def fetch(hub, paths, repo=SMOL_REPO, file=SMOL_FILE, **kwargs):
    """Download one file from the stand-in Hub to its end: (the result, the Progress events)."""
    kwargs.setdefault("options", FAST)
    return drain(download(repo, file, paths=paths, endpoint=hub.url, **kwargs))


def closed_port_url() -> str:
    """An http://127.0.0.1 address where nothing listens (a port just released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def known_bandwidth(ember_home):
    """Seed settings.json with a memory bandwidth (20 GB/s) so no test waits for the measurement."""
    import json

    (ember_home / "settings.json").write_text(json.dumps({"schema_version": 1,
                                                          "memory_bandwidth": {"bytes_per_s": 20e9}}))
    return 20e9
