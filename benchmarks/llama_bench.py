"""The ceiling for generation speed: llama.cpp's own `llama-bench`, built from the very llama.cpp source
that the installed llama-cpp-python release vendors (its sdist), with the same compiler flags Ember's
build uses; and beside it llama.cpp's own `llama-server`, the native yardstick for a whole streamed
reply (sampling, text, HTTP and a client: what llama-bench leaves out). Built once and cached under
~/.cache/ember-bench/ (never in the repository).

    python benchmarks/llama_bench.py --build           # fetch the sdist, build llama-bench and llama-server (minutes)
    python benchmarks/llama_bench.py --model M.gguf --threads 1 --tokens 128
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

CACHE = Path(os.environ.get("EMBER_BENCH_CACHE", Path.home() / ".cache" / "ember-bench"))
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"  # as scripts/llama-build-flags


def version() -> str:
    return metadata.version("llama_cpp_python")


def binary(name: str = "llama-bench") -> Path:
    return CACHE / f"llama-cpp-python-{version()}" / "build" / "bin" / name


def built(name: str = "llama-bench") -> Path | None:
    path = binary(name)
    return path if path.is_file() else None


def build(jobs: int = os.cpu_count() or 2) -> Path:
    """Download this llama-cpp-python release's sdist and build only its llama-bench and llama-server
    targets (an earlier build that has llama-bench alone gains llama-server in the same folder)."""
    root = CACHE / f"llama-cpp-python-{version()}"
    if built() and built("llama-server"):
        return binary()
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f"llama_cpp_python-{version()}.tar.gz"
    if not sdist.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                        f"llama-cpp-python=={version()}", "-d", str(CACHE)], check=True)
    source = CACHE / f"llama_cpp_python-{version()}"
    if not source.exists():
        with tarfile.open(sdist) as tar:
            tar.extractall(CACHE, filter="data")
    vendor = source / "vendor" / "llama.cpp"
    flags = [f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}"] if platform.machine() == "x86_64" else []
    if not built():
        shutil.rmtree(root / "build", ignore_errors=True)
    subprocess.run(["cmake", "-S", str(vendor), "-B", str(root / "build"), "-DCMAKE_BUILD_TYPE=Release",
                    "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
                    "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON", *flags],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(root / "build"), "--target", "llama-bench", "llama-server",
                    "-j", str(jobs)], check=True, stdout=subprocess.DEVNULL)
    return binary()


def rates(model: str, threads: int, *, prompt: int = 0, gen: int = 0, depths: tuple[int, ...] = (0,),
          runs: int = 5, flash_attn: bool = False) -> dict[int, float]:
    """llama-bench's tokens/s (its average over `runs`) of a `prompt`-token batch or of `gen` generated
    tokens, by depth: how many tokens are in the context before the first one."""
    path = built()
    if path is None:
        raise FileNotFoundError("llama-bench is not built: run benchmarks/llama_bench.py --build")
    result = subprocess.run([str(path), "-m", model, "-t", str(threads), "-p", str(prompt), "-n", str(gen),
                             "-d", ",".join(map(str, depths)), "-r", str(runs), "-ngl", "0",
                             "-fa", "1" if flash_attn else "0", "-o", "json"],
                            capture_output=True, text=True, check=True)
    return {int(row["n_depth"]): float(row["avg_ts"]) for row in json.loads(result.stdout)}


def tg_rate(model: str, threads: int, tokens: int = 128, runs: int = 5, flash_attn: bool = False,
            depth: int = 0) -> float:
    """llama-bench's token generation rate (tokens/s) after `depth` tokens of context (a prompt's
    worth: attention reads them for every token). Flash attention off unless asked, as Ember's model
    process runs the CPU (supervisor.flash_attention_used)."""
    return rates(model, threads, gen=tokens, depths=(depth,), runs=runs, flash_attn=flash_attn)[depth]


@contextlib.contextmanager
def serve(model: str, threads: int, ctx: int = 2048, flash_attn: bool = False) -> Iterator[int]:
    """llama.cpp's own `llama-server` on a free 127.0.0.1 port (yielded) for the length of the block:
    one slot, CPU only, flash attention off unless asked, as Ember's model process runs the CPU."""
    path = built("llama-server")
    if path is None:
        raise FileNotFoundError("llama-server is not built: run benchmarks/llama_bench.py --build")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(path), "-m", model, "--host", "127.0.0.1", "--port", str(port),
                               "-t", str(threads), "-tb", str(threads), "-c", str(ctx), "-np", "1", "-ngl", "0",
                               "-fa", "on" if flash_attn else "off"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llama-server did not start (exit code {server.poll()})")
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--smoke", action="store_true", help="CI: report whether it is built, build nothing")
    args = parser.parse_args()
    if args.smoke:
        print(f"summary: llama-bench for llama-cpp-python {version()}: "
              f"{'built at ' + str(built()) if built() else 'not built (run --build once)'}; "
              f"llama-server: {'built' if built('llama-server') else 'not built'}")
        return 0
    if args.build:
        print(f"built {build()}")
    if args.model:
        print(f"llama-bench tg{args.tokens} at {args.threads} thread(s): "
              f"{tg_rate(args.model, args.threads, args.tokens):.1f} tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
