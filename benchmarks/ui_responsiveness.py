"""UI responsiveness of the Chat window (offscreen Qt, the real SmolLM2 host).

- the longest gap of a 10 ms QTimer on the UI thread while a reply streams, host threads = cores - 1
  and = cores;
- time to open a 1,000-message chat (select it until its messages are laid out);
- time from process start to the first painted window (no model loaded), median of runs.

    python benchmarks/ui_responsiveness.py [--runs 5] [--tokens 256]
    python benchmarks/ui_responsiveness.py --smoke
"""

from __future__ import annotations

import argparse
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

FIRST_PAINT = """
import sys, time
from PySide6.QtCore import QTimer
from app.views import main_window
original = main_window.MainWindow.paintEvent
def paint(self, event):
    original(self, event)
    if not getattr(self, "_painted", False):
        self._painted = True
        print("PAINTED", flush=True)
        QTimer.singleShot(0, self.close)
main_window.MainWindow.paintEvent = paint
import app.application as application
sys.exit(application.run_window())
"""


def first_paint_s(home: Path) -> float:
    env = dict(os.environ, EMBER_HOME=str(home), PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", FIRST_PAINT], stdout=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    elapsed = time.perf_counter() - started
    process.wait(timeout=30)
    if line.strip() != "PAINTED":
        raise RuntimeError("the window did not paint")
    return elapsed


class GapMeter:
    """The longest interval between ticks of a 10 ms timer: how long the UI thread was busy."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.gaps: list[float] = []

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.gaps.append(now - self.last)
        self.last = now

    def start(self) -> None:
        self.last = None
        self.gaps.clear()
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return max(self.gaps) if self.gaps else 0.0


def streaming_gap_ms(app, threads: int, tokens: int, home: Path) -> tuple[float, int]:
    from PySide6.QtCore import QEventLoop, QTimer

    from app.services import Services
    from app.views.main_window import MainWindow
    from engine.paths import EmberPaths

    services = Services(EmberPaths(home).ensure())
    window = MainWindow(services)
    window.show()
    page = window.chat_page
    entry = page.model_combo.currentData()
    loop = QEventLoop()
    window.models.loaded.connect(lambda _: loop.quit())
    window.models.load(entry, context_length=2048, threads=threads)
    QTimer.singleShot(60000, loop.quit)
    loop.exec()
    window.chat.new_session()
    page.settings.max_tokens.setValue(tokens)
    page.settings.flush()
    meter = GapMeter()
    done = QEventLoop()
    window.chat.generating_changed.connect(lambda on: None if on else done.quit())
    meter.start()
    page.prompt_edit.setPlainText("Write a long story about a lighthouse keeper and a storm.")
    page.send()
    QTimer.singleShot(120000, done.quit)
    done.exec()
    gap = meter.stop()
    reply = services.chats.branch(window.chat.session_id)[-1]
    window.close()
    services.close()
    return gap * 1000, reply.stats.completion_tokens if reply.stats else 0


def open_long_chat_ms(app, home: Path, messages: int) -> float:
    from app.services import Services
    from app.views.main_window import MainWindow
    from engine.paths import EmberPaths

    services = Services(EmberPaths(home).ensure())
    session = services.chats.create_session("long chat")
    parent = None
    for i in range(messages):
        role = "user" if i % 2 == 0 else "assistant"
        text = f"Message {i}: " + ("Some **markdown** text with `code` and a list:\n\n- one\n- two\n" if i % 3 else "short")
        parent = services.chats.add_message(session.id, parent.id if parent else None, role, text)
    other = services.chats.create_session("other")
    window = MainWindow(services)
    window.show()
    window.chat.select(other.id)
    app.processEvents()
    started = time.perf_counter()
    window.chat.select(session.id)
    view = window.chat_page.message_view
    view.doItemsLayout()  # finish the (batched) layout so the scroll range is known
    view.scrollToBottom()
    app.processEvents()
    elapsed = time.perf_counter() - started
    window.close()
    services.close()
    return elapsed * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.tokens, args.messages = 1, 16, 50
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    cores = os.cpu_count() or 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paint = [first_paint_s(tmp / f"paint{i}") for i in range(args.runs)]
        open_ms = [open_long_chat_ms(app, tmp / f"long{i}", args.messages) for i in range(min(args.runs, 3))]
        gaps = {}
        for threads in sorted({max(1, cores - 1), cores}):
            gaps[threads] = streaming_gap_ms(app, threads, args.tokens, tmp / f"stream{threads}")
    print(f"{'measure':<46} {'value':>10}")
    print(f"{'first painted window (median, s)':<46} {statistics.median(paint):>10.3f}")
    print(f"{f'open a {args.messages}-message chat (median, ms)':<46} {statistics.median(open_ms):>10.1f}")
    for threads, (gap, tokens) in gaps.items():
        print(f"{f'longest UI gap while streaming, {threads} thread(s) (ms)':<46} {gap:>10.1f}   ({tokens} tokens)")
    worst = max(g for g, _ in gaps.values())
    print(f"summary: first paint {statistics.median(paint):.2f} s; {args.messages}-message chat opens in "
          f"{statistics.median(open_ms):.0f} ms; longest UI stall while streaming {worst:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
