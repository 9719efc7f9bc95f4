"""The Fine-tune page driven as a user does: read a document, review question/answer pairs, preview
the dataset, make the plan (measured on real steps), train and watch the loss chart move, stop (a
checkpoint is kept), train again (it goes on from there), get the GGUF adapter with its self-test,
and find the job again in a new window. Real parts: the window, the trainer child (PyTorch on the
CPU), llama.cpp for the self-test, the real SmolLM2 model."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from app.views.finetune_page import FinetunePage
from engine.finetune.events import TrainStep
from tests.support.finetune_fixtures import FACT_DOCUMENT, FACT_PAIRS, PARAPHRASE, THREADS, share_dense_copy

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


def open_finetune(qtbot, window) -> FinetunePage:
    window.nav.setCurrentRow(3)
    page = window.stack.currentWidget()
    assert isinstance(page, FinetunePage)
    page.controller.threads = THREADS
    qtbot.waitUntil(lambda: page.base_model.count() > 0, timeout=20000)  # the starter model, from the library
    return page


def idle(page) -> bool:
    return not page.controller.running


def page_state(page) -> str:
    return (f"busy {page.busy.text()!r}, running {page.controller.running}, "
            f"plan button {'on' if page.plan_button.isEnabled() else 'off'}")


def answer_to(qtbot, page, signal, button, timeout: int) -> tuple:
    """Click `button` and wait for `signal`'s arguments. An error the page shows instead fails at once,
    with its message, instead of after the whole timeout; a timeout says what the page was doing."""
    answers, errors = [], []
    signal.connect(lambda *args: answers.append(args))
    page.error_shown.connect(errors.append)  # the controller's errors, and the page's own refusals
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    try:
        qtbot.waitUntil(lambda: bool(answers or errors), timeout=timeout)
    except qtbot.TimeoutError:
        raise AssertionError(f"no answer within {timeout} ms ({page_state(page)})") from None
    assert not errors, f"the page reported: {errors[0].message} {errors[0].hint or ''}"
    return answers[0]


def refusal_to(qtbot, page, button, timeout: int):
    """Click `button` and wait for the error the page shows; a timeout says what the page was doing."""
    errors = []
    page.error_shown.connect(errors.append)  # the controller's errors, and the page's own refusals
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    try:
        qtbot.waitUntil(lambda: bool(errors), timeout=timeout)
    except qtbot.TimeoutError:
        raise AssertionError(f"no refusal within {timeout} ms ({page_state(page)})") from None
    return errors[0]


def test_read_review_plan_train_stop_resume_and_get_a_tested_adapter(qtbot, make_window, ember_home, tmp_path,
                                                                     finetune_session):
    share_dense_copy(ember_home, finetune_session)  # the dense PyTorch copy of SmolLM2, made once per session
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "velkaran.md").write_text(FACT_DOCUMENT, encoding="utf-8")
    window = make_window()
    page = open_finetune(qtbot, window)
    data = page.data
    assert data.mode == "qa" and data.pairs_box.isVisibleTo(page)

    data.add_paths([str(docs)])
    with qtbot.waitSignal(page.controller.passages_ready, timeout=20000):
        qtbot.mouseClick(data.read_button, Qt.MouseButton.LeftButton)
    assert data.passages and " from 1 file." in data.passages_label.text()
    data.add_pairs(FACT_PAIRS, "reviewed")  # what a user keeps after editing the drafted ones
    data.pairs.item(0, 0).setCheckState(Qt.CheckState.Unchecked)  # one left out
    data.probes.setPlainText(PARAPHRASE)
    with qtbot.waitSignal(page.controller.dataset_ready, timeout=20000) as built:
        qtbot.mouseClick(data.preview_button, Qt.MouseButton.LeftButton)
    dataset = built.args[0]
    assert dataset.counts.given == len(FACT_PAIRS) - 1
    assert "training examples" in data.preview_text.toPlainText() and "Velkaran" in data.preview_text.toPlainText()

    page.tabs.setCurrentIndex(1)
    page.preset.setCurrentIndex(0)
    page.rank.setValue(4)
    page.steps.setValue(8)
    page.batch.setValue(2)
    page.seq_len.setValue(96)
    page.name.setText("velkaran")
    plan, = answer_to(qtbot, page, page.controller.plan_ready, page.plan_button, 240000)
    assert plan.total_steps == 8 and plan.step_s is not None
    text = page.plan_text.toPlainText()
    assert "Backend: LoRA" in text or "Backend:" in text
    assert "Memory (estimate)" in text and "s per step (measured)" in text

    steps = []
    page.controller.progress.connect(lambda p: isinstance(p, TrainStep) and steps.append(p.step))
    qtbot.waitUntil(lambda: idle(page) and page.train_button.isEnabled(), timeout=10000)
    qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=240000)
    assert len(page.chart.train) >= 2  # the chart moved
    with qtbot.waitSignal(page.controller.trained, timeout=240000) as stopped:
        qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    assert stopped.args[0].state == "stopped"
    at = page.controller.job.resume_step()
    assert 0 < at < 8 and "Stopped at step" in page.train_status.text()

    qtbot.waitUntil(lambda: idle(page), timeout=10000)
    steps.clear()
    # goes on, then export and self-test
    adapter, report = answer_to(qtbot, page, page.controller.tested, page.train_button, 400000)
    assert steps and min(steps) == at + 1  # resumed after the checkpoint, not from step 1
    assert adapter.gguf.is_file() and report.checks
    assert page.checks.rowCount() == len(report.checks) and page.chat_button.isEnabled()
    assert page.tabs.currentIndex() == 3 and str(adapter.gguf) in page.adapter_text.text()
    shown_loss = list(page.chart.train)
    qtbot.waitUntil(lambda: idle(page), timeout=10000)

    page.tabs.setCurrentIndex(4)  # Evaluate: the same questions of base and adapter, side by side
    page.evaluation.general.setChecked(False)
    result, = answer_to(qtbot, page, page.controller.evaluated, page.evaluation.run_button, 240000)
    assert set(result.not_run) == {"base + documents", "adapter + documents"}  # no collection chosen
    assert page.evaluation.table.rowCount() == len(result.rows) > 0
    header = page.evaluation.table.horizontalHeaderItem(4).text()
    assert header.startswith("adapter") and ("/" in header or result.score("adapter")[1] == 0)
    assert "(not run)" in page.evaluation.table.horizontalHeaderItem(3).text()
    qtbot.waitUntil(lambda: idle(page), timeout=10000)

    page.scale.setValue(0.8)
    qtbot.mouseClick(page.chat_button, Qt.MouseButton.LeftButton)  # a new chat answers with the adapter
    session = window.services.chats.get_session(window.chat.session_id)
    assert (session.adapter_path, session.adapter_scale) == (str(adapter.gguf), 0.8)
    assert session.title == "Chat with velkaran" and window.chat_page.isVisible()
    box = window.chat_page.settings.adapter
    assert box.adapter_path() == str(adapter.gguf)
    box.scale.setValue(1.2)  # its strength, changed in the chat's settings
    window.chat_page.settings.flush()
    assert window.services.chats.get_session(session.id).adapter_scale == 1.2
    window.close()

    # a new window finds the job with its loss curve and its adapter
    again = open_finetune(qtbot, make_window())
    assert again.jobs.count() == 1 and "adapter ready" in again.jobs.item(0).text()
    again.jobs.setCurrentRow(0)
    assert [step for step, _ in again.chart.train] == [step for step, _ in shown_loss]
    assert again.adapter is not None and again.chat_button.isEnabled()


def test_refusals_before_training_are_said_with_what_to_change(qtbot, window, tmp_path, finetune_session, ember_home):
    share_dense_copy(ember_home, finetune_session)
    page = open_finetune(qtbot, window)
    blank = tmp_path / "blank.md"
    blank.write_text("   \n\n  ", encoding="utf-8")
    page.data.add_paths([str(blank)])
    with qtbot.waitSignal(page.controller.passages_ready, timeout=20000):
        qtbot.mouseClick(page.data.read_button, Qt.MouseButton.LeftButton)
    assert "Not used" in page.data.passages_label.text() and "whitespace" in page.data.passages_label.text()
    with qtbot.waitSignal(page.controller.error, timeout=20000) as refused:
        qtbot.mouseClick(page.data.preview_button, Qt.MouseButton.LeftButton)  # no pairs at all
    assert refused.args[0].hint and window.error_bar.isVisible()

    page.data.add_pairs(FACT_PAIRS, "reviewed")
    with qtbot.waitSignal(page.controller.dataset_ready, timeout=20000):
        qtbot.mouseClick(page.data.preview_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: idle(page), timeout=10000)
    with qtbot.waitSignal(page.controller.job_exported, timeout=20000) as exported:  # for a bigger machine
        page.export_job_to(str(tmp_path / "elsewhere"))
    folder = exported.args[0]
    assert (folder / "train_elsewhere.py").is_file() and (folder / "README.txt").is_file()
    assert (folder / "train.jsonl").read_text(encoding="utf-8").count("\n") >= 1
    qtbot.waitUntil(lambda: idle(page), timeout=10000)
    not_an_adapter = tmp_path / "not-an-adapter"
    not_an_adapter.mkdir()
    with qtbot.waitSignal(page.controller.error, timeout=20000) as refused:
        page.import_adapter_from(str(not_an_adapter))
    assert "adapter_config.json" in refused.args[0].message + (refused.args[0].hint or "")
    qtbot.waitUntil(lambda: idle(page), timeout=10000)

    page.seq_len.setValue(32768)  # longer than SmolLM2's context
    refusal = refusal_to(qtbot, page, page.plan_button, 60000)
    assert "8192" in refusal.message or "8192" in (refusal.hint or "")


def test_a_step_counts_as_running_until_the_page_has_its_buttons_back(qtbot, window, tmp_path):
    """The worker's thread ends a moment before the UI thread hears of it. In that moment the step
    must still count as running, or a click lands on buttons that are still off and does nothing."""
    page = open_finetune(qtbot, window)
    note = tmp_path / "note.md"
    note.write_text("The Velkaran Bridge was built in 1887 by the engineer Ada Morrow.", encoding="utf-8")
    page.data.add_paths([str(note)])
    qtbot.mouseClick(page.data.read_button, Qt.MouseButton.LeftButton)
    worker = page.controller._worker
    assert worker is not None and not page.data.read_button.isEnabled()
    assert worker.done.wait(60)  # its thread is done; the UI thread has not run its signals yet
    assert page.controller.running and not page.data.read_button.isEnabled()
    qtbot.waitUntil(lambda: idle(page), timeout=20000)
    assert page.data.read_button.isEnabled() and page.data.passages  # the buttons are back, the text read


def test_chat_mode_learns_from_the_users_conversations_and_names_a_bad_line(qtbot, window, tmp_path):
    def conversation(n: int) -> dict:
        return {"messages": [{"role": "user", "content": f"What is bridge {n} made of?"},
                             {"role": "assistant", "content": f"Bridge {n} is made of granite from quarry {n}."}]}

    page = open_finetune(qtbot, window)
    page.data.set_mode("chat")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(conversation(0)) + "\n{not json\n", encoding="utf-8")
    page.data.add_chat_paths([str(bad)])
    refusal = refusal_to(qtbot, page, page.data.preview_button, 20000)
    assert "line 2: not JSON" in refusal.message and window.error_bar.isVisible()
    qtbot.waitUntil(lambda: idle(page), timeout=10000)

    page.data.chat_files.clear()
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(json.dumps(conversation(n)) + "\n" for n in range(8)), encoding="utf-8")
    second.write_text("".join(json.dumps(conversation(n)) + "\n" for n in range(8, 12)), encoding="utf-8")
    page.data.add_chat_paths([str(first), str(second), str(first)])  # picked twice, kept once
    assert page.data.chat_paths() == [str(first), str(second)]
    (built,) = answer_to(qtbot, page, page.controller.dataset_ready, page.data.preview_button, 20000)
    assert built.mode == "chat" and built.counts.given == 12 and built.counts.duplicates == 0
    assert built.counts.train - built.counts.general + built.counts.held_out == 12
    assert any("quarry" in m["content"] for e in built.train for m in e.messages if m["role"] == "assistant")
