"""What the welcome of a first start offers: a chat model this machine runs well, the GGUF files other
apps already keep on it, and whether the Hub can be reached at all.

    pick = recommend(hardware, bandwidth)        # the largest candidate that fits and is quick enough
    found = other_apps_models(Path.home())       # LM Studio, Ollama, GPT4All, Jan, where they exist
    online = hub_reachable(endpoint)             # False: say so, offer local files and the starter model
"""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from engine.runtime.fit import FitEstimate, estimate_fit
from engine.runtime.hardware import HardwareInfo

GB = 1_000_000_000
QUICK_ENOUGH_TPS = 8.0  # below this a chat feels slow: a smaller model is the better first choice
WELCOME_CONTEXT = 4096


@dataclass(frozen=True)
class Candidate:
    """A chat model the welcome may recommend (official GGUF builds with an open licence)."""

    title: str
    repo_id: str
    filename: str
    approx_size: int  # bytes, as the Hub lists it (the download checks the real size and SHA-256)
    quantization: str
    licence: str


# Largest first: the first one that fits and is quick enough on this machine is recommended.
CANDIDATES = (
    Candidate("Qwen2.5 7B Instruct", "Qwen/Qwen2.5-7B-Instruct-GGUF", "qwen2.5-7b-instruct-q4_k_m.gguf",
              int(4.68 * GB), "Q4_K_M", "Apache-2.0"),
    Candidate("Qwen2.5 1.5B Instruct", "Qwen/Qwen2.5-1.5B-Instruct-GGUF", "qwen2.5-1.5b-instruct-q4_k_m.gguf",
              int(1.12 * GB), "Q4_K_M", "Apache-2.0"),
    Candidate("Qwen2.5 0.5B Instruct", "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf",
              int(0.49 * GB), "Q4_K_M", "Apache-2.0"),
)


@dataclass(frozen=True)
class Recommendation:
    candidate: Candidate
    fit: FitEstimate


def recommend(hardware: HardwareInfo, bandwidth: float | None,
              candidates: tuple[Candidate, ...] = CANDIDATES) -> Recommendation | None:
    """The largest candidate that fits in memory and, when the speed can be predicted, is quick enough;
    else the smallest that fits; None when none fits."""
    fitting = []
    for candidate in candidates:
        fit = estimate_fit(hardware, WELCOME_CONTEXT, file_size=candidate.approx_size,
                           quantization=candidate.quantization, bandwidth=bandwidth)
        if fit.fits:
            fitting.append(Recommendation(candidate, fit))
            if fit.tokens_per_s is None or fit.tokens_per_s >= QUICK_ENOUGH_TPS:
                return fitting[-1]
    return fitting[-1] if fitting else None


# --- models other apps keep -----------------------------------------------------------------------
@dataclass(frozen=True)
class FoundModels:
    """GGUF files another app keeps: a folder to add to the library, or (Ollama) single files."""

    app: str
    folder: Path
    files: tuple[Path, ...]
    add_folder: bool  # True: add the folder (its .gguf files); False: add each file (Ollama's blobs)


def _app_folders(home: Path) -> list[tuple[str, Path]]:
    local = Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local"))
    support = home / "Library" / "Application Support"
    return [
        ("LM Studio", home / ".lmstudio" / "models"),
        ("LM Studio", home / ".cache" / "lm-studio" / "models"),
        ("GPT4All", home / ".local" / "share" / "nomic.ai" / "GPT4All"),
        ("GPT4All", support / "nomic.ai" / "GPT4All"),
        ("GPT4All", local / "nomic.ai" / "GPT4All"),
        ("Jan", home / "jan" / "models"),
        ("Jan", home / ".local" / "share" / "Jan" / "data" / "models"),
        ("Jan", support / "Jan" / "data" / "models"),
    ]


def other_apps_models(home: Path, limit: int = 200) -> list[FoundModels]:
    """The folders of other local-model apps that exist here and hold GGUF files."""
    found = []
    for app, folder in _app_folders(home):
        if folder.is_dir():
            files = tuple(sorted(folder.rglob("*.gguf"))[:limit])
            if files:
                found.append(FoundModels(app, folder, files, add_folder=True))
    ollama = ollama_models(home / ".ollama" / "models")
    if ollama:
        found.append(FoundModels("Ollama", home / ".ollama" / "models", tuple(ollama), add_folder=False))
    return found


def ollama_models(root: Path) -> list[Path]:
    """Ollama's model blobs that are plain GGUF files (named sha256-…; its manifests say which are models)."""
    blobs = root / "blobs"
    if not blobs.is_dir():
        return []
    wanted = set()
    for manifest in (root / "manifests").rglob("*") if (root / "manifests").is_dir() else []:
        if manifest.is_file():
            try:
                layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
            except (OSError, ValueError, AttributeError):
                continue
            wanted |= {str(layer.get("digest", "")).replace(":", "-") for layer in layers
                       if isinstance(layer, dict) and layer.get("mediaType", "").endswith(".model")}
    candidates = [blobs / name for name in sorted(wanted)] if wanted else sorted(blobs.iterdir())
    return [path for path in candidates if path.is_file() and _is_gguf(path)]


def _is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


# --- the network --------------------------------------------------------------------------------------
def hub_reachable(endpoint: str, timeout: float = 4.0) -> bool:
    """Whether the Hub (or the HF_ENDPOINT stand-in) answers at all; any HTTP answer counts."""
    parts = urlsplit(endpoint)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("HEAD", parts.path or "/")
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
