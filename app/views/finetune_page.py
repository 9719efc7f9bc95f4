"""The Fine-tune page: teach the model you chat with your documents, see it learn, check it, chat with it.

Left, the jobs (each a folder in EMBER_HOME/finetune/jobs, so they outlive the window). Right, the
base model and four tabs in the order of the round trip: **Data** (what it learns from, previewed),
**Plan** (settings and the plan with numbers, measured on real steps; a plan that cannot work is
refused with what to change), **Training** (the live loss chart, speed, time left, memory, the probe
answers; Stop keeps a checkpoint, Train again resumes) and **Adapter** (the GGUF adapter and its
self-test, then open it in chat at a strength). Without PyTorch the page says what to install and can
install it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.controllers.finetune_controller import FinetuneController
from app.controllers.window_controllers import WindowControllers
from app.views.finetune_data import DataSection
from app.views.finetune_evaluation import EvaluationView
from app.views.loss_chart import LossChart
from app.views.message_bar import MessageBar
from app.views.widgets import named
from engine.errors import InvalidInput
from engine.finetune.availability import BUNDLE_HINT
from engine.finetune.events import EvalLoss, ProbeAnswers, TrainStep
from engine.finetune.export import open_adapter
from engine.finetune.settings import TrainSettings, preset
from engine.progress_text import human_duration, human_size
from engine.rag.embedding_models import is_embedding_model

PRESETS = ("quick", "balanced", "thorough")
CHECK_WORDS = {"header": "It is a LoRA adapter for this model", "loads": "It loads in llama.cpp",
               "agreement": "llama.cpp + adapter agrees with PyTorch + LoRA", "replies_end": "Replies still end",
               "effect": "It changes the answers"}
STATE_WORDS = {"new": "not planned", "planned": "planned", "training": "training (cut off)", "stopped": "stopped",
               "trained": "trained", "exported": "adapter ready", "failed": "failed"}


def build_page(controllers: WindowControllers, parent=None) -> FinetunePage:
    c = controllers
    controller = FinetuneController(c.services, c.runner, c.notices)
    page = FinetunePage(controller, c.library, parent)
    controller.setParent(page)
    return page


class FinetunePage(QWidget):
    status_message = Signal(str)
    error_shown = Signal(object)
    open_adapter = Signal(object, float)  # AdapterRecord, strength: the window opens it in chat

    def __init__(self, controller: FinetuneController, library, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("finetunePage")
        self.controller = controller
        self.library = library
        self.adapter = None  # the AdapterRecord of the shown job, once exported
        self.stack_bar = MessageBar("info")
        self.stack_bar.setObjectName("trainingStackBar")
        self.install_button = self.stack_bar.add_button("Install", "installStackButton",
                                                        "Install PyTorch and the fine-tune libraries")
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._jobs_pane())
        splitter.addWidget(self._job_pane())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 950])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.stack_bar)
        layout.addWidget(splitter, 1)
        self._connect()
        self._fill_models(library.entries)
        self.data.set_collections(controller.collections())
        self.controller.jobs()
        self.controller.stack_status()

    # --- building ----------------------------------------------------------------------------------
    def _jobs_pane(self) -> QWidget:
        pane = QWidget()
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(0, 0, 0, 0)
        self.jobs = named(QListWidget(), "finetuneJobsList", "Fine-tune jobs")
        self.new_button = named(QPushButton("New fine-tune"), "newFinetuneButton", "New fine-tune")
        self.import_button = named(QPushButton("Import adapter…"), "importAdapterButton", "Import an adapter",
                                   "A peft adapter trained elsewhere (for example from an exported job): Ember "
                                   "writes it as GGUF for the base model chosen above and tests it")
        layout.addWidget(QLabel("<b>Jobs</b>"))
        layout.addWidget(self.jobs, 1)
        layout.addWidget(self.new_button)
        layout.addWidget(self.import_button)
        return pane

    def _job_pane(self) -> QWidget:
        pane = QWidget()
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(6, 0, 0, 0)
        head = QHBoxLayout()
        self.base_model = named(QComboBox(), "baseModelCombo", "Base model")
        self.base_model.setMinimumWidth(320)
        self.busy = named(QLabel(""), "finetuneBusyLabel", "What runs now")
        self.stop_button = named(QPushButton("Stop"), "stopFinetuneButton", "Stop",
                                 "Training finishes its step and keeps a checkpoint; Train goes on from it.")
        self.stop_button.hide()
        head.addWidget(QLabel("Base model:"))
        head.addWidget(self.base_model)
        head.addWidget(self.busy, 1)
        head.addWidget(self.stop_button)
        self.tabs = named(QTabWidget(), "finetuneTabs", "Fine-tune")
        self.data = DataSection()
        scroll = named(QScrollArea(), "finetuneDataScroll", "Fine-tune data")
        scroll.setWidget(self.data)
        scroll.setWidgetResizable(True)
        self.tabs.addTab(scroll, "1 · Data")
        self.tabs.addTab(self._plan_tab(), "2 · Plan")
        self.tabs.addTab(self._training_tab(), "3 · Training")
        self.tabs.addTab(self._adapter_tab(), "4 · Adapter")
        self.evaluation = EvaluationView()
        self.tabs.addTab(self.evaluation, "5 · Evaluate")
        layout.addLayout(head)
        layout.addWidget(self.tabs, 1)
        return pane

    def _plan_tab(self) -> QWidget:
        tab = QWidget()
        form = QFormLayout()
        self.name = named(QLineEdit(), "jobNameEdit", "Job name")
        self.name.setPlaceholderText("For example: bridge facts")
        self.preset = named(QComboBox(), "presetCombo", "Preset")
        for key in PRESETS:
            self.preset.addItem(key.capitalize(), key)
        self.preset.setCurrentIndex(1)
        self.rank = named(_spin(1, 256, 16), "rankSpin", "LoRA rank")
        self.learning_rate = named(QDoubleSpinBox(), "learningRateSpin", "Learning rate")
        self.learning_rate.setDecimals(5)
        self.learning_rate.setRange(0.00001, 0.01)
        self.learning_rate.setSingleStep(0.0001)
        self.steps = named(_spin(0, 100000, 0), "stepsSpin", "Steps (0: by epochs)")
        self.steps.setSpecialValueText("by epochs")
        self.epochs = named(QDoubleSpinBox(), "epochsSpin", "Epochs")
        self.epochs.setRange(0.1, 100)
        self.batch = named(_spin(1, 256, 4), "batchSpin", "Batch size")
        self.seq_len = named(_spin(32, 32768, 512), "seqLenSpin", "Sequence length in tokens")
        self.seq_len.setSingleStep(64)
        for label, widget in (("Name", self.name), ("Preset", self.preset), ("Rank", self.rank),
                              ("Learning rate", self.learning_rate), ("Steps", self.steps), ("Epochs", self.epochs),
                              ("Batch size", self.batch), ("Sequence length", self.seq_len)):
            form.addRow(label, widget)
        self.plan_button = named(QPushButton("Make the plan"), "makePlanButton", "Make the plan")
        self.plan_text = named(QTextBrowser(), "planText", "The plan")
        self.export_job_button = named(QPushButton("Export the job for another machine…"), "exportJobButton",
                                       "Export the job for another machine",
                                       "A folder with the dataset, the settings and a script to train on a bigger "
                                       "GPU box with accelerate; bring the result back with Import adapter")
        buttons = QHBoxLayout()
        buttons.addWidget(self.plan_button)
        buttons.addWidget(self.export_job_button)
        layout = QVBoxLayout(tab)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.plan_text, 1)
        self._apply_preset()
        return tab

    def _training_tab(self) -> QWidget:
        tab = QWidget()
        self.train_button = named(QPushButton("Train"), "trainButton", "Train")
        self.train_status = named(QLabel("Make a plan, then train."), "trainStatus", "Training status")
        self.train_status.setWordWrap(True)
        self.chart = LossChart()
        self.samples = named(QTableWidget(0, 3), "probeAnswersTable", "Answers to the probe questions")
        self.samples.setHorizontalHeaderLabels(["Step", "Question", "Answer"])
        self.samples.horizontalHeader().setStretchLastSection(True)
        self.samples.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.samples.setColumnWidth(1, 360)
        self.samples.setWordWrap(True)
        self.samples.verticalHeader().hide()
        row = QHBoxLayout()
        row.addWidget(self.train_button)
        row.addWidget(self.train_status, 1)
        layout = QVBoxLayout(tab)
        layout.addLayout(row)
        layout.addWidget(self.chart, 2)
        layout.addWidget(QLabel("Answers to the probe questions at each checkpoint:"))
        layout.addWidget(self.samples, 1)
        return tab

    def _adapter_tab(self) -> QWidget:
        tab = QWidget()
        self.adapter_text = named(QLabel("The adapter appears here when training is done."), "adapterSummary",
                                  "The adapter")
        self.adapter_text.setWordWrap(True)
        self.adapter_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.checks = named(QTableWidget(0, 3), "selfTestTable", "Self-test checks")
        self.checks.setHorizontalHeaderLabels(["Check", "Result", "What was measured"])
        self.checks.horizontalHeader().setStretchLastSection(True)
        self.checks.setColumnWidth(0, 300)
        self.checks.setWordWrap(True)
        self.checks.verticalHeader().hide()
        self.export_button = named(QPushButton("Export and test again"), "exportAdapterButton",
                                   "Export the adapter and test it")
        self.scale = named(QDoubleSpinBox(), "openAdapterScaleSpin", "Strength of the adapter in the new chat")
        self.scale.setRange(0.0, 2.0)
        self.scale.setSingleStep(0.05)
        self.scale.setValue(1.0)
        self.chat_button = named(QPushButton("Open in chat"), "openAdapterInChatButton", "Open the adapter in chat")
        self.chat_button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.export_button)
        row.addStretch(1)
        row.addWidget(QLabel("Strength:"))
        row.addWidget(self.scale)
        row.addWidget(self.chat_button)
        layout = QVBoxLayout(tab)
        layout.addWidget(self.adapter_text)
        layout.addWidget(self.checks, 1)
        layout.addLayout(row)
        return tab

    def _connect(self) -> None:
        c = self.controller
        c.busy_changed.connect(self._on_busy)
        c.progress.connect(self._on_progress)
        c.passages_ready.connect(self.data.show_passages)
        c.pairs_ready.connect(lambda pairs: self.data.add_pairs(pairs))
        c.dataset_ready.connect(self._on_dataset)
        c.plan_ready.connect(self._on_plan)
        c.trained.connect(self._on_trained)
        c.tested.connect(self._on_tested)
        c.jobs_changed.connect(self._show_jobs)
        c.job_changed.connect(self._show_job)
        c.stack_changed.connect(self._on_stack)
        c.error.connect(self._on_error)
        self.data.error_shown.connect(self.error_shown)
        self.data.read_files.connect(c.read_files)
        self.data.read_collection.connect(c.read_collection)
        self.data.write_pairs.connect(lambda per: c.write_pairs(self.data.passages, per))
        self.data.bench_button.clicked.connect(self._add_bench_pairs)
        self.data.preview.connect(self.preview_dataset)
        self.library.library_changed.connect(self._fill_models)
        self.preset.currentIndexChanged.connect(lambda _i: self._apply_preset())
        self.plan_button.clicked.connect(self.make_plan)
        self.train_button.clicked.connect(c.train)
        self.stop_button.clicked.connect(c.stop)
        self.export_button.clicked.connect(lambda: c.export_and_test(self.name.text().strip()))
        self.chat_button.clicked.connect(lambda: self.adapter and self.open_adapter.emit(self.adapter, self.scale.value()))
        self.install_button.clicked.connect(c.install_stack)
        self.new_button.clicked.connect(lambda: c.show_job(None))
        self.evaluation.run_requested.connect(lambda collection, scale, general: c.evaluate(
            self.adapter, collection, scale, general))
        c.evaluated.connect(self.evaluation.show_result)
        self.export_job_button.clicked.connect(self._ask_export_folder)
        self.import_button.clicked.connect(self._ask_import_folder)
        c.job_exported.connect(lambda folder: self.status_message.emit(
            f"Wrote {folder}. Its README.txt says how to train there and bring the adapter back."))
        self.jobs.currentItemChanged.connect(self._on_job_chosen)

    # --- models, stack ------------------------------------------------------------------------------
    def _fill_models(self, entries) -> None:
        current = self.base_model.currentData()
        self.base_model.clear()
        for entry in entries:
            if entry.info is not None and not is_embedding_model(entry.info, entry.path):
                self.base_model.addItem(f"{entry.name}  ({entry.info.architecture})", entry.path)
        loaded = self.controller.services.chat_model
        wanted = current or (loaded.path if loaded else None)
        row = self.base_model.findData(wanted) if wanted else -1
        self.base_model.setCurrentIndex(max(0, row))

    def _on_stack(self, status) -> None:
        if status.ready:
            self.stack_bar.hide()
        elif not status.installable:  # the bundle: no PyTorch in it and no pip to add it
            self.stack_bar.show_message(status.missing_sentence, BUNDLE_HINT)
        else:
            self.stack_bar.show_message(status.missing_sentence, "Ember can install them now (a large download), "
                                        f"or run: {status.install_command}")
        self.install_button.setVisible(not status.ready and status.installable)
        for button in (self.plan_button, self.train_button):
            button.setEnabled(status.ready)

    # --- data ----------------------------------------------------------------------------------------
    def _add_bench_pairs(self) -> None:
        collection_id = self.data.collection.currentData()
        if collection_id is not None:
            pairs = self.controller.reviewed_pairs(collection_id)
            self.data.add_pairs(pairs, "retrieval bench")
            self.status_message.emit(f"{len(pairs)} reviewed questions added." if pairs else
                                     "This collection has no kept questions on its retrieval bench yet.")

    def preview_dataset(self) -> None:
        self.controller.build_dataset(self.data.mode, passages=self.data.passages, pairs=self.data.kept_pairs(),
                                      chat_files=self.data.chat_paths(), held_out=self.data.held_out.value() / 100,
                                      general=self.data.general.value() / 100, problems=self.data.problems)

    def _on_dataset(self, built) -> None:
        self.data.show_dataset(built)
        self.controller.job = None  # new data: the next plan makes a new job
        self.plan_text.setPlainText("Data ready. Choose the settings and make the plan.")

    # --- plan ----------------------------------------------------------------------------------------
    def _apply_preset(self) -> None:
        settings = preset(self.preset.currentData())
        self.rank.setValue(settings.rank)
        self.learning_rate.setValue(settings.learning_rate)
        self.steps.setValue(settings.max_steps or 0)
        self.epochs.setValue(settings.epochs)
        self.batch.setValue(settings.batch_size)
        self.seq_len.setValue(settings.seq_len)

    def settings(self) -> TrainSettings:
        base = preset(self.preset.currentData())
        return TrainSettings.from_dict({**base.to_dict(), "rank": self.rank.value(), "alpha": 2.0 * self.rank.value(),
                                        "learning_rate": self.learning_rate.value(),
                                        "max_steps": self.steps.value() or None, "epochs": self.epochs.value(),
                                        "batch_size": self.batch.value(), "seq_len": self.seq_len.value()})

    def make_plan(self) -> None:
        if self.base_model.currentData() is None:
            self.error_shown.emit(InvalidInput("There is no base model to fine-tune.",
                                               "Add a GGUF chat model on the Models page."))
            return
        self.plan_text.setPlainText("Planning…")
        self.controller.plan(self.base_model.currentData(), self.settings(), self.data.probe_questions(),
                             self.name.text().strip())

    # --- beyond one machine ----------------------------------------------------------------------------
    def _ask_export_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A new or empty folder for the job")
        if folder:
            self.export_job_to(folder)

    def export_job_to(self, folder: str) -> None:
        if self.base_model.currentData() is None:
            self.error_shown.emit(InvalidInput("There is no base model.", "Add a GGUF chat model on the Models page."))
            return
        self.controller.export_job(folder, self.base_model.currentData(), self.settings())

    def _ask_import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "The adapter's folder (adapter_config.json and its weights)")
        if folder:
            self.import_adapter_from(folder)

    def import_adapter_from(self, folder: str) -> None:
        """Export a peft folder as a GGUF adapter for the chosen base model, and self-test it."""
        if self.base_model.currentData() is None:
            self.error_shown.emit(InvalidInput("There is no base model for the adapter.",
                                               "Add the GGUF it was trained for on the Models page."))
            return
        self.controller.import_adapter(folder, self.base_model.currentData(), self.data.probe_questions())

    def _on_plan(self, plan) -> None:
        self.plan_text.setPlainText("\n".join(plan.lines()))
        self.chart.clear(plan.total_steps)
        self.train_status.setText(f"Planned: {plan.total_steps} steps"
                                  + (f", about {human_duration(plan.total_s)}" if plan.total_s else "") + ". Press Train.")

    # --- training ------------------------------------------------------------------------------------
    def _on_busy(self, what: str) -> None:
        self.busy.setText(what)
        self.stop_button.setVisible(bool(what))
        running = bool(what)
        for button in (self.plan_button, self.train_button, self.export_button, self.data.preview_button,
                       self.data.read_button, self.data.write_button, self.export_job_button, self.import_button,
                       self.evaluation.run_button):
            button.setEnabled(not running)
        if not running:
            self._on_stack(self.controller.stack_status())

    def _on_progress(self, progress) -> None:
        if isinstance(progress, TrainStep):
            if not self.chart.train:
                self.controller.jobs()  # the list says "training" once it is
            self.chart.add_train(progress.step, progress.loss, int(progress.total or 0))
            parts = [progress.message]
            if progress.tokens_per_s:
                parts.append(f"{progress.tokens_per_s:.0f} tokens/s")
            if progress.memory_bytes:
                parts.append(f"memory {human_size(progress.memory_bytes)}")
            self.train_status.setText(" · ".join(parts))
        elif isinstance(progress, EvalLoss):
            self.chart.add_eval(progress.step, progress.eval_loss)
        elif isinstance(progress, ProbeAnswers):
            for question, answer in progress.answers:
                self._add_sample(progress.step, question, answer)
        elif progress.message:
            self.busy.setText(progress.message[:160])

    def _add_sample(self, step: int, question: str, answer: str) -> None:
        row = self.samples.rowCount()
        self.samples.insertRow(row)
        for column, text in enumerate((str(step), question, answer)):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            self.samples.setItem(row, column, item)
        self.samples.scrollToBottom()

    def _on_trained(self, result) -> None:
        if result.state == "trained":
            self.train_status.setText(f"Trained: {result.steps} steps, loss {result.first_loss or 0:.3f} → "
                                      f"{result.train_loss or 0:.3f}"
                                      + (f", held-out {result.eval_loss:.3f}" if result.eval_loss else "")
                                      + f" in {human_duration(result.seconds)}. Exporting and testing the adapter…")
        else:
            self.train_status.setText(f"Stopped at step {result.steps} of {result.total_steps}; the checkpoint is "
                                      "kept. Train goes on from it.")

    def _on_tested(self, adapter, report) -> None:
        self._show_adapter(adapter, report.to_dict())
        self.tabs.setCurrentIndex(3)

    def _show_adapter(self, adapter, report: dict | None) -> None:
        self.adapter = adapter
        passed = bool(report and report.get("passed"))
        self.adapter_text.setText(
            f"<b>{adapter.name}</b>: {adapter.gguf}<br>" +
            ("It passed its self-test: open it in chat." if passed else
             "It did not pass every check: see below what a failed check means." if report else "Not tested yet."))
        self.checks.setRowCount(0)
        for check in (report or {}).get("checks", []):
            row = self.checks.rowCount()
            self.checks.insertRow(row)
            figure = check["figure"] if check["passed"] else f"{check['figure']} — {check['meaning']}"
            name = CHECK_WORDS.get(check["name"], check["name"])
            for column, text in enumerate((name, "pass" if check["passed"] else "FAILED", figure)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.checks.setItem(row, column, item)
        self.chat_button.setEnabled(True)
        self.evaluation.set_collections(self.controller.collections())

    def _on_error(self, error) -> None:
        self.error_shown.emit(error)
        if self.tabs.currentIndex() == 1:
            self.plan_text.setPlainText(f"{error.message}\n\n{error.hint or ''}")

    # --- jobs ----------------------------------------------------------------------------------------
    def _show_jobs(self, jobs) -> None:
        shown = self.controller.job.folder.path if self.controller.job else None
        self.jobs.blockSignals(True)
        self.jobs.clear()
        for job in reversed(jobs):  # newest first
            state = job.status().get("state", "new")
            item = QListWidgetItem(f"{job.name}\n{STATE_WORDS.get(state, state)} · {job.folder.name[:15]}")
            item.setData(Qt.ItemDataRole.UserRole, job)
            self.jobs.addItem(item)
            if shown == job.folder.path:
                self.jobs.setCurrentItem(item)
        self.jobs.blockSignals(False)

    def _on_job_chosen(self, current, _previous) -> None:
        if current is not None:
            self.controller.show_job(current.data(Qt.ItemDataRole.UserRole))

    def _show_job(self, job) -> None:
        """Redraw a job from its folder: settings, plan, the loss so far, its samples and adapter."""
        self.samples.setRowCount(0)
        self.adapter = None
        self.chat_button.setEnabled(False)
        if job is None:
            self.chart.clear()
            self.plan_text.clear()
            self.train_status.setText("Make a plan, then train.")
            self.adapter_text.setText("The adapter appears here when training is done.")
            self.checks.setRowCount(0)
            self.tabs.setCurrentIndex(0)
            return
        status = job.status()
        plan = status.get("plan") or {}
        self.chart.clear(plan.get("total_steps", 0))
        for event in job.history():
            if event["type"] == "step":
                self.chart.add_train(event["step"], event["loss"], event.get("total"))
            elif event["type"] == "eval":
                self.chart.add_eval(event["step"], event["eval_loss"])
            elif event["type"] == "sample":
                for answer in event.get("answers", []):
                    self._add_sample(event["step"], answer["question"], answer["answer"])
        self.name.setText(job.name)
        state = status.get("state", "new")
        self.train_status.setText(f"{STATE_WORDS.get(state, state).capitalize()}"
                                  + (f" at step {job.resume_step()}; Train goes on from there." if state in
                                     ("stopped", "training") else "."))
        row = self.base_model.findData(str(job.base_model))
        if row >= 0:
            self.base_model.setCurrentIndex(row)
        adapter_folder = status.get("adapter")
        if adapter_folder and Path(adapter_folder, "adapter.json").is_file():
            adapter = open_adapter(Path(adapter_folder))
            self._show_adapter(adapter, adapter.record.get("self_test"))
        self.tabs.setCurrentIndex(3 if self.adapter else 2)



def _spin(low: int, high: int, value: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    return spin
