"""`ember search`, `ember download`, `ember models`: the Hub and the library from a terminal.

The Hub's address is HF_ENDPOINT as set when the command runs (default: the public Hub) and is
passed to every call. `ember download` takes the home lock: one process drives downloads per home;
`ember models` takes it to store its scan, and only lists (writing nothing) while the window holds it.
"""

from __future__ import annotations

import sys
import time

from engine.commands.output import print_json
from engine.errors import InvalidInput, NotFound
from engine.hub.search import SORTS
from engine.progress_text import human_size

CONTEXT_FOR_FIT = 4096


def register(subparsers) -> None:
    search = subparsers.add_parser("search", help="search the Hugging Face Hub for GGUF models")
    search.add_argument("query", help="text in the model's name")
    search.add_argument("--sort", choices=list(SORTS), default="downloads", help="order (default: downloads)")
    search.add_argument("--limit", type=int, default=20, help="how many results (default: 20)")
    search.add_argument("--json", action="store_true", help="print one JSON array")
    search.set_defaults(func=run_search)

    download = subparsers.add_parser("download", help="list a repo's GGUF files, or download one (resumable)")
    download.add_argument("repo_id", help="owner/name on the Hub")
    download.add_argument("file", nargs="?", help="file name or glob pattern (e.g. '*Q4_K_M*'); without it, "
                                                  "list the GGUF files and download nothing")
    download.add_argument("--revision", default="main", help="branch, tag or commit (default: main)")
    download.add_argument("--json", action="store_true", help="print JSON on stdout")
    download.set_defaults(func=run_download)

    models = subparsers.add_parser("models", help="list the models in the library")
    models.add_argument("--json", action="store_true", help="print one JSON array of inspect objects")
    models.set_defaults(func=run_models)


def _table(rows: list[tuple], header: tuple) -> None:
    rows = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def run_search(args) -> int:
    from engine.hub.client import current_endpoint
    from engine.hub.search import search_models

    if args.limit < 1:
        raise InvalidInput("--limit must be at least 1.")
    results = search_models(args.query, endpoint=current_endpoint(), sort=args.sort, limit=args.limit)
    if args.json:
        print_json([r.to_dict() for r in results])
        return 0
    if not results:
        print(f"No GGUF models match {args.query!r}.", file=sys.stderr)
        return 0
    _table([(r.repo_id, f"{r.downloads:,}", f"{r.likes:,}",
             r.last_modified.date().isoformat() if r.last_modified else "-", r.license or "-") for r in results],
           ("repo", "downloads", "likes", "updated", "license"))
    return 0


def _fits(files) -> dict:
    """Fit and speed at CONTEXT_FOR_FIT for each listed model, on this machine."""
    from engine.paths import EmberPaths
    from engine.runtime.bandwidth import memory_bandwidth
    from engine.runtime.fit import estimate_fit, speed_calibration
    from engine.runtime.hardware import probe_hardware

    paths = EmberPaths.from_env()
    hw = probe_hardware(check_offload=False)
    bandwidth = memory_bandwidth(paths)
    calibration = speed_calibration(paths, hw.backend)
    return {f.name: estimate_fit(hw, CONTEXT_FOR_FIT, file_size=f.size, quantization=f.quantization,
                                 bandwidth=bandwidth, calibration=calibration) for f in files if f.size}


def _list_files(args, files) -> int:
    fits = _fits(files)
    if args.json:
        print_json([{**f.to_dict(), **({"fit": fits[f.name].to_dict()} if f.name in fits else {})} for f in files])
        return 0
    if not files:
        print(f"{args.repo_id} has no GGUF files.", file=sys.stderr)
        return 0
    rows = []
    for f in files:
        fit = fits.get(f.name)
        parts = f"{len(f.parts)}/{f.expected_parts} parts" if f.is_split else ""
        rows.append((f.name, f.quantization or "?", human_size(f.size), parts, fit.label if fit else "-",
                     fit.speed_label if fit else "-"))
    _table(rows, ("file", "quant", "size", "split", f"fit at {CONTEXT_FOR_FIT} ctx", "speed"))
    print(f"\nDownload one with: ember download {args.repo_id} FILE", file=sys.stderr)
    return 0


def run_download(args) -> int:
    from engine.hub.client import current_endpoint
    from engine.hub.files import list_gguf_files, match_files
    from engine.paths import EmberPaths
    from engine.store.lock import HomeLock

    endpoint = current_endpoint()
    files = list_gguf_files(args.repo_id, endpoint=endpoint, revision=args.revision)
    if not args.file:
        return _list_files(args, files)
    matches = match_files(files, args.file)
    if len(matches) > 1:
        raise InvalidInput(f"{args.file!r} matches {len(matches)} models: {', '.join(m.name for m in matches)}.",
                           "Give the whole file name.")
    if matches:
        targets = [(p.path, p.sha256) for p in matches[0].parts]
    elif any(c in args.file for c in "*?["):
        raise NotFound(f"No GGUF file of {args.repo_id} matches {args.file!r}.",
                       f"List them with: ember download {args.repo_id}")
    else:
        targets = [(args.file, None)]  # not a listed GGUF: ask the Hub for it as it is
    paths = EmberPaths.from_env()
    with HomeLock(paths.lock).acquire("ember download"):
        results = [_download_one(args, paths, endpoint, path, sha, i, len(targets))
                   for i, (path, sha) in enumerate(targets, 1)]
    if args.json:
        print_json({"paths": [str(p) for p in results], "path": str(results[0])})
    else:
        print(results[0])
    return 0


def _download_one(args, paths, endpoint, path, sha256, index, count):
    from engine.hub.download import download

    bar = ProgressBar(f"{path}" + (f" (part {index} of {count})" if count > 1 else ""))
    job = download(args.repo_id, path, paths=paths, endpoint=endpoint, revision=args.revision, sha256=sha256)
    try:
        while True:
            bar.update(next(job))
    except StopIteration as stop:
        bar.finish()
        return stop.value
    except BaseException:
        bar.finish()
        raise


class ProgressBar:
    """One line on stderr, redrawn at most 10 times a second (a line per 10% when not a terminal)."""

    WIDTH = 28

    def __init__(self, title: str, stream=None) -> None:
        self.title, self.stream = title, stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last, self.last_step, self.drawn, self.message = 0.0, -1, False, ""

    def update(self, progress) -> None:
        fraction = progress.fraction or 0.0
        now = time.monotonic()
        if self.tty:
            if now - self.last < 0.1 and progress.message == self.message:
                return
            filled = int(fraction * self.WIDTH)
            line = f"\r{self.title[:40]} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {fraction:4.0%}  {progress.message}"
            self.stream.write(line[:160].ljust(160))
            self.drawn = True
        elif int(fraction * 10) != self.last_step or progress.message.startswith(("Interrupted", "Downloaded")):
            self.last_step = int(fraction * 10)
            self.stream.write(f"{self.title}: {fraction:4.0%}  {progress.message}\n")
        self.last, self.message = now, progress.message
        self.stream.flush()

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def run_models(args) -> int:
    """List the library. Scanning stores rows in ember.db, so it takes the home lock; when another Ember
    (the window) owns the home, the listing is still printed but nothing is written."""
    from engine.errors import HomeLocked
    from engine.paths import EmberPaths
    from engine.store.lock import HomeLock

    paths = EmberPaths.from_env()
    try:
        lock = HomeLock(paths.lock).acquire("ember models")
    except HomeLocked as locked:
        print(f"{locked.message} The listing is read-only: nothing is saved to the library while the window "
              "(or another Ember command) owns this home.", file=sys.stderr)
        entries = _scan(paths, write=False)
    else:
        with lock:
            entries = _scan(paths, write=True)
    if args.json:
        print_json([e.to_dict() for e in entries])
        return 0
    rows = []
    for e in entries:
        i = e.info
        rows.append((e.name, i.architecture if i else "-", f"{i.parameters / 1e9:.2f} B" if i else "-",
                     i.quantization if i else "-", human_size(i.file_size) if i else "-",
                     i.context_length or "-" if i else "-", ("yes" if i.has_chat_template else "no") if i else "-",
                     e.source, e.error or ""))
    _table(rows, ("model", "arch", "params", "quant", "size", "context", "template", "source", "error"))
    return 0


def _scan(paths, write: bool) -> list:
    from engine.library.library import Library
    from engine.store.db import connect, connect_read_only

    conn = connect(paths.db) if write else connect_read_only(paths.db)
    try:
        return Library(paths, conn).scan(write=write)
    finally:
        conn.close()
