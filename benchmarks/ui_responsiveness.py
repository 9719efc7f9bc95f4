"""How responsive the Chat window is (offscreen Qt, the real SmolLM2 host, the real window).

- stalls while a reply streams: the longest gap between ticks of a 10 ms QTimer on the UI thread,
  with the host on cores - 1 threads (Ember's default) and on all cores;
- opening a 1,000-message chat: time until it is painted at the bottom, and the longest UI stall
  while it lays out; then scrolling it from top to bottom;
- process start to the first painted window (`python -m app`, no model loaded);
- downloads: the longest UI stall while the Models page downloads the SmolLM2 file (98 MB, hashed
  while written) from the stand-in Hub (its own process, on 127.0.0.1), at full local speed and at
  20 MB/s;
- indexing: the longest UI stall while the Documents page indexes a folder (a 40-page PDF and
  Markdown notes) with the MiniLM embedding model, the page shown (its table refreshed as files finish).

Times are medians over --runs runs.

    python benchmarks/ui_responsiveness.py [--runs 5] [--tokens 200]
    python benchmarks/ui_responsiveness.py --smoke      # tiny budget, for CI
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEvent, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import app.qt_compat  # noqa: E402,F401 - the PySide6 reference-count guard, before any Qt call

PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm."


class GapMeter:
    """The longest interval between ticks of a 10 ms timer: how long the UI thread was busy at once."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self.last: float | None = None

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.gaps.append(now - self.last)
        self.last = now

    def __enter__(self) -> GapMeter:
        self.gaps, self.last = [], time.perf_counter()
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.stop()
        self._tick()

    @property
    def longest_ms(self) -> float:
        return 1000 * max(self.gaps, default=0.0)


def wait_until(condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        QApplication.processEvents()
        time.sleep(0.001)


def open_window(home: Path):
    from app.services import Services
    from app.views.main_window import MainWindow
    from engine.paths import EmberPaths

    services = Services(EmberPaths(home))
    window = MainWindow(services)
    window.resize(1300, 850)
    window.show()
    wait_until(lambda: window._painted)
    with GapMeter() as meter:
        wait_until(lambda: not window._pending_pages and not window.runner.busy)  # the other pages, built
    window.after_paint_stall_ms = meter.longest_ms
    return window, services


def close_window(window, services) -> None:
    window.close()
    services.close()
    window.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


# --- streaming ---------------------------------------------------------------------------------------
def streaming_stalls(threads: int, runs: int, tokens: int, history: int = 0) -> dict:
    """Longest UI gap while replies stream, through the real window (worker, coalescing, delegate);
    with `history`, each reply goes on at the end of a chat that already has that many messages."""
    home = Path(tempfile.mkdtemp(prefix="ember-bench-"))
    long_id = seed_long_chat(home, history, short=True) if history else None
    window, services = open_window(home)
    try:
        wait_until(lambda: window.chat_page.model_bar.entry() is not None)
        entry = next(e for e in window.library.entries if e.source == "starter")
        window.runtime.load(entry, context_length=8192 if history else 2048, gpu_layers=0, threads=threads)
        wait_until(lambda: services.chat_model is not None and not window.runtime.busy)
        runs_seen = [one_stream(window, services, tokens, seed, long_id) for seed in range(1, runs + 1)]
        gaps = [r[0] for r in runs_seen]
        return {"longest_gap_ms": statistics.median(gaps), "worst_gap_ms": max(gaps),
                "tokens_per_s": statistics.median(r[1] for r in runs_seen),
                "tokens_per_view_update": statistics.median(r[2] for r in runs_seen)}
    finally:
        close_window(window, services)


def one_stream(window, services, tokens: int, seed: int, session_id: int | None) -> tuple[float, float, float]:
    """One reply through the window: (longest UI gap in ms, tokens/s, tokens per view update)."""
    if session_id is None:
        window.chat.new_session()
    elif window.chat.session_id != session_id:
        window.chat.select(session_id)
        wait_until(lambda: window.chat_page.view.verticalScrollBar().maximum() > 0)
    window.chat.update_settings(sampling={"max_tokens": tokens, "temperature": 0.7, "seed": seed})
    batches = []

    def count(_id: int, text: str) -> None:
        batches.append(len(text))

    window.replies.text_arrived.connect(count)
    with GapMeter() as meter:
        window.replies.send(PROMPT)
        wait_until(lambda: window.replies.generating)
        wait_until(lambda: not window.replies.generating)
    window.replies.text_arrived.disconnect(count)
    reply = services.chats.branch(window.chat.session_id)[-1]
    return meter.longest_ms, reply.stats.tokens_per_s or 0.0, reply.stats.completion_tokens / max(1, len(batches))


# --- a 1,000-message chat --------------------------------------------------------------------------
def seed_long_chat(home: Path, messages: int, short: bool = False) -> int:
    """A chat of `messages` messages; `short` ones fit a model's context (for streaming at its end)."""
    from engine.paths import EmberPaths
    from engine.store.chats import ChatRepository
    from engine.store.db import Transaction, connect

    repo = ChatRepository(connect(EmberPaths(home).ensure().db))
    session = repo.create_session("Long chat")
    repo.create_session("Short chat")  # shown first (newest)
    parent = None
    with Transaction(repo.conn):
        for i in range(messages):
            role = "user" if i % 2 == 0 else "assistant"
            text = (f"Note {i}." if short else f"Question {i}: how does part {i} work?" if role == "user" else
                    f"Part **{i}** works like this:\n\n- one\n- two\n\n```python\nprint({i})\n```\n" if i % 10 == 1
                    else f"Answer {i}: it works as described. " * (1 + i % 5))
            parent = repo.conn.execute(
                "INSERT INTO messages (session_id, parent_id, role, content, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'complete', ?, ?)", (session.id, parent, role, text, i, i)).lastrowid
        repo.conn.execute("UPDATE sessions SET current_leaf_id = ? WHERE id = ?", (parent, session.id))
    repo.conn.close()
    return session.id


def long_chat(runs: int, messages: int) -> dict:
    home = Path(tempfile.mkdtemp(prefix="ember-bench-"))
    session_id = seed_long_chat(home, messages)
    results = [one_open(home, session_id, messages) for _ in range(runs)]
    steps = [step for r in results for step in r[3]]
    return {"open_ms": 1000 * statistics.median(r[0] for r in results),
            "start_stall_ms": statistics.median(r[4] for r in results),
            "at_bottom_ms": 1000 * statistics.median(r[1] for r in results),
            "open_gap_ms": statistics.median(r[2] for r in results),
            "scroll_step_ms": 1000 * statistics.median(steps), "scroll_worst_ms": 1000 * max(steps)}


def one_open(home: Path, session_id: int, messages: int):
    """Open the long chat in a new window: (painted s, at the bottom s, longest stall ms, scroll steps s,
    the longest stall while the window started and built its other pages, ms)."""
    window, services = open_window(home)
    try:
        view = window.chat_page.view
        bar = view.verticalScrollBar()

        def at_bottom() -> bool:
            last = view.indexAt(view.viewport().rect().bottomLeft()).row()
            return bar.maximum() > 0 and bar.value() == bar.maximum() and last >= messages - 3

        with GapMeter() as meter:
            started = time.perf_counter()
            window.chat.select(session_id)
            view.viewport().repaint()
            painted = time.perf_counter() - started
            wait_until(at_bottom)
            laid_out = time.perf_counter() - started
        steps = []
        step = max(1, bar.maximum() // 40)
        for value in range(0, bar.maximum() + step, step):
            t = time.perf_counter()
            bar.setValue(value)
            view.viewport().repaint()
            steps.append(time.perf_counter() - t)
        return painted, laid_out, meter.longest_ms, steps, window.after_paint_stall_ms
    finally:
        close_window(window, services)


# --- first paint -------------------------------------------------------------------------------------
def first_paint(runs: int) -> dict:
    times = []
    for _ in range(runs):
        home = tempfile.mkdtemp(prefix="ember-bench-")
        env = dict(os.environ, EMBER_HOME=home, EMBER_EXIT_AFTER_FIRST_PAINT="1", PYTHONPATH=str(ROOT))
        started = time.time()
        result = subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=120)
        if result.returncode != 0:
            raise RuntimeError(result.stderr[-1000:])
        report = json.loads(result.stdout.strip().splitlines()[-1])
        if report["heavy_modules"]:
            raise RuntimeError(f"heavy modules loaded before the first paint: {report['heavy_modules']}")
        times.append(report["first_paint_time"] - started)
    return {"first_paint_s": statistics.median(times), "worst_s": max(times)}


# --- downloads ---------------------------------------------------------------------------------------
HUB_PROCESS = """
import sys
from engine.paths import starter_model
from tests.support.hub_fixtures import populate
from tests.support.hub_server import StandInHub
with populate(StandInHub().start(), starter_model()) as hub:
    hub.faults.rate = float(sys.argv[1]) or None
    print(hub.url, flush=True)
    sys.stdin.read()  # serve until the benchmark closes our stdin
"""


def download_stalls(runs: int, rate: float | None) -> dict:
    """Longest UI gap while the Models page downloads the starter file from the stand-in Hub, from the
    click to the file shown in the library (progress rows, verification, library scan included). The
    Hub runs in its own process, as a real server would: its threads do not compete for our GIL."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    hub = subprocess.Popen([sys.executable, "-c", HUB_PROCESS, str(rate or 0)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        os.environ["HF_ENDPOINT"] = hub.stdout.readline().strip()
        measured = [one_download() for _ in range(runs)]
    finally:
        os.environ.pop("HF_ENDPOINT", None)
        hub.stdin.close()
        hub.wait(timeout=30)
    gaps = [m[0] for m in measured]
    return {"longest_gap_ms": statistics.median(gaps), "worst_gap_ms": max(gaps),
            "seconds": statistics.median(m[1] for m in measured)}


def one_download() -> tuple[float, float]:
    """One download through a fresh window: (longest UI gap in ms, seconds from click to library)."""
    from app.views.models_page import ModelsPage
    from tests.support.hub_fixtures import SMOL_FILE, SMOL_REPO

    home = Path(tempfile.mkdtemp(prefix="ember-bench-"))
    (home / "settings.json").write_text(json.dumps({"schema_version": 1, "memory_bandwidth": {"bytes_per_s": 20e9}}))
    window, services = open_window(home)
    try:
        page = window.findChild(ModelsPage, "modelsPage")
        details, shown = [], []
        page.controller.detail_ready.connect(lambda detail, choices: details.append(choices))
        page.library.library_changed.connect(lambda entries: shown.append(any(e.source == "hub" and e.name == SMOL_FILE for e in entries)))
        page.controller.show_repo(SMOL_REPO, 4096)
        wait_until(lambda: details)
        choice = next(c for c in details[0] if c.file.name == SMOL_FILE)
        start = time.perf_counter()
        with GapMeter() as meter:
            page.controller.download(choice)
            wait_until(lambda: any(shown))
        return meter.longest_ms, time.perf_counter() - start
    finally:
        close_window(window, services)


# --- indexing ----------------------------------------------------------------------------------------
def indexing_stalls(runs: int, notes: int) -> dict:
    """Longest UI gap while the Documents page indexes a folder, from the click to the last file indexed
    (the parser child, the embedding host, the page's table refreshes included)."""
    from engine.gguf.convert_bert import convert_bert
    from tests.support.embedding_fixtures import minilm_model_dir

    work = Path(tempfile.mkdtemp(prefix="ember-bench-docs-"))
    model = work / "all-MiniLM-L6-v2.gguf"
    for _ in convert_bert(minilm_model_dir(), model, out_type="f16", name="all-MiniLM-L6-v2"):
        pass
    docs = work / "docs"
    docs.mkdir()
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for page in range(40):
        pdf.add_page()
        pdf.multi_cell(0, 6, " ".join(f"Page {page}, line {line}: the harbour master logs ship {page * 40 + line}."
                                      for line in range(30)))
    pdf.output(str(docs / "harbour-log.pdf"))
    for n in range(notes):
        (docs / f"note-{n:03d}.md").write_text(f"# Note {n}\n\n" + "\n\n".join(
            f"Paragraph {p} of note {n}: the tram to stop {p} runs every {n % 7 + 3} minutes." for p in range(25)),
            encoding="utf-8")
    measured = [one_indexing(model, docs) for _ in range(runs)]
    gaps = [m[0] for m in measured]
    return {"longest_gap_ms": statistics.median(gaps), "worst_gap_ms": max(gaps),
            "seconds": statistics.median(m[1] for m in measured), "chunks": measured[0][2]}


def one_indexing(model: Path, docs: Path) -> tuple[float, float, int]:
    """One folder indexed through a fresh window: (longest UI gap in ms, seconds, chunks)."""
    home = Path(tempfile.mkdtemp(prefix="ember-bench-"))
    window, services = open_window(home)
    try:
        window.nav.setCurrentRow(2)
        page = window.stack.currentWidget()
        reports = []
        page.controller.index_finished.connect(lambda _cid, report: reports.append(report))
        collection = page.controller.create("Bench", str(model))
        start = time.perf_counter()
        with GapMeter() as meter:
            page.controller.add_paths(collection, [str(docs)])
            wait_until(lambda: reports and page.controller.running_id is None, timeout_s=600)
        return meter.longest_ms, time.perf_counter() - start, reports[0].chunks
    finally:
        close_window(window, services)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="one short run of each, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.tokens, args.messages = 1, 24, 200
    QApplication.instance() or QApplication(sys.argv[:1])
    cores = os.cpu_count() or 2
    rows = []
    first = first_paint(args.runs)
    rows.append(("process start → first painted window", f"{first['first_paint_s'] * 1000:.0f} ms",
                 f"worst {first['worst_s'] * 1000:.0f} ms"))
    chat = long_chat(args.runs, args.messages)
    rows.append((f"open a {args.messages}-message chat (painted)", f"{chat['open_ms']:.0f} ms",
                 f"at the bottom, laid out: {chat['at_bottom_ms']:.0f} ms; longest stall {chat['open_gap_ms']:.0f} ms"))
    rows.append(("longest UI stall after the first paint, until every page is built",
                 f"{chat['start_stall_ms']:.0f} ms", "other issues' pages (Models) are built then"))
    rows.append(("scroll it, one step + repaint", f"{chat['scroll_step_ms']:.1f} ms",
                 f"worst {chat['scroll_worst_ms']:.1f} ms"))
    streams = {}
    for threads in sorted({max(1, cores - 1), cores}):
        s = streaming_stalls(threads, args.runs, args.tokens)
        streams[threads] = s
        rows.append((f"longest UI gap while streaming, host {threads} thread(s)", f"{s['longest_gap_ms']:.1f} ms",
                     f"worst {s['worst_gap_ms']:.1f} ms; {s['tokens_per_s']:.0f} tokens/s; "
                     f"{s['tokens_per_view_update']:.1f} tokens per view update"))
    history = 40 if args.smoke else 300
    s = streaming_stalls(max(1, cores - 1), args.runs, args.tokens, history=history)
    rows.append((f"the same at the end of a {history}-message chat", f"{s['longest_gap_ms']:.1f} ms",
                 f"worst {s['worst_gap_ms']:.1f} ms (the first turn lays the whole chat out again)"))
    notes = 10 if args.smoke else 60
    i = indexing_stalls(args.runs, notes)
    rows.append((f"longest UI gap while indexing (40-page PDF + {notes} notes)", f"{i['longest_gap_ms']:.1f} ms",
                 f"worst {i['worst_gap_ms']:.1f} ms; {i['chunks']} chunks in {i['seconds']:.1f} s"))
    for rate in (None, 20e6):
        d = download_stalls(args.runs, rate)
        speed = "full local speed" if rate is None else f"{rate / 1e6:.0f} MB/s"
        rows.append((f"longest UI gap while downloading 98 MB, {speed}", f"{d['longest_gap_ms']:.1f} ms",
                     f"worst {d['worst_gap_ms']:.1f} ms; click to library in {d['seconds']:.1f} s"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'median':>9}  detail   ({cores} cores, {args.runs} run(s), {args.tokens} tokens)")
    for name, value, detail in rows:
        print(f"{name:<{width}}  {value:>9}  {detail}")
    default = streams[max(1, cores - 1)]
    print(f"summary: streaming stall {default['longest_gap_ms']:.1f} ms at {max(1, cores - 1)} host thread(s) "
          f"({streams[cores]['longest_gap_ms']:.1f} ms at {cores}); {args.messages}-message chat painted in "
          f"{chat['open_ms']:.0f} ms; first paint {first['first_paint_s'] * 1000:.0f} ms after process start; "
          f"indexing stall {i['longest_gap_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
