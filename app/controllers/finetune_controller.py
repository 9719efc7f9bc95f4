"""The Fine-tune page's controller: data, the job, its plan, training, export and the self-test.

Every step is an engine generator (engine/finetune/, see docs/finetune.md) run on a worker; PyTorch
only ever runs in the trainer child those generators start. One step runs at a time. The job lives in
its folder (EMBER_HOME/finetune/jobs/...), so after a restart the page lists it, redraws its loss
from its events and resumes it from its last checkpoint. An adapter that passed export and its
self-test is announced with `Changes(adapters=True)`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.changes import ChangeNotice, Changes
from app.services import Services
from app.workers import Worker, WorkerRunner
from engine.errors import EmberError, InvalidInput
from engine.finetune import (
    availability,
    chat_data,
    dataset,
    elsewhere,
    evaluate,
    pipeline,
    qa_writer,
    sources,
)
from engine.finetune.dataset import Dataset
from engine.finetune.job import FineTuneJob, list_jobs, new_job
from engine.finetune.settings import TrainSettings
from engine.jobs import CancelToken, Progress
from engine.runtime.hardware import default_threads
from engine.store.chat_documents_repo import ChatDocuments
from engine.store.documents_repo import DocumentsRepository
from engine.store.qa_repo import QARepository


class FinetuneController(QObject):
    busy_changed = Signal(str)  # what runs now, in words ("" when idle)
    progress = Signal(object)  # Progress of the running step (TrainStep, EvalLoss, ProbeAnswers ... while training)
    passages_ready = Signal(object)  # engine.finetune.sources.SourceReport
    pairs_ready = Signal(object)  # list[QAPair] written by the chat model
    dataset_ready = Signal(object)  # Dataset
    job_changed = Signal(object)  # the FineTuneJob shown (None: a new one is being prepared)
    plan_ready = Signal(object)  # Plan
    trained = Signal(object)  # TrainResult ("trained" or "stopped")
    tested = Signal(object, object)  # AdapterRecord, SelfTestReport
    job_exported = Signal(object)  # Path of the folder written for another machine
    evaluated = Signal(object)  # engine.finetune.evaluate.Evaluation
    jobs_changed = Signal(object)  # list[FineTuneJob]
    stack_changed = Signal(object)  # StackStatus
    error = Signal(object)  # EmberError

    def __init__(self, services: Services, runner: WorkerRunner, notices: ChangeNotice, parent=None) -> None:
        super().__init__(parent)
        self.services = services
        self.runner = runner
        self.notices = notices
        self.job: FineTuneJob | None = None
        self.dataset: Dataset | None = None
        self.threads: int | None = None  # the trainer's CPU threads (None: cores - 1, the house default)
        self._worker: Worker | None = None
        self._export_next = False

    # --- what there is ------------------------------------------------------------------------------
    def stack_status(self) -> availability.StackStatus:
        status = availability.stack_status()
        self.stack_changed.emit(status)
        return status

    def jobs(self) -> list[FineTuneJob]:
        jobs = list_jobs(self.services.paths)
        self.jobs_changed.emit(jobs)
        return jobs

    def show_job(self, job: FineTuneJob | None) -> None:
        self.job = job
        self.job_changed.emit(job)

    def collections(self) -> list:
        return DocumentsRepository(self.services.conn).list_collections()

    def reviewed_pairs(self, collection_id: int) -> list[tuple[str, str]]:
        """The retrieval bench's kept questions of a collection, with their answers."""
        return [(p.question, p.answer) for p in QARepository(self.services.conn).list_pairs(collection_id, ("kept",))
                if p.answer.strip()]

    @property
    def running(self) -> bool:
        """True until the UI thread has heard the step finish, which is also when the page gives its
        buttons back. (The worker's own `done` is set a moment earlier, on its thread: a step
        started in between found the buttons still off and its click did nothing.)"""
        return self._worker is not None

    # --- running one step at a time -----------------------------------------------------------------
    def _run(self, what: str, fn, *args, on_result=None, long: bool = False, **kwargs) -> Worker | None:
        if self.running:
            self.error.emit(InvalidInput("Another fine-tune step is running.", "Wait for it, or stop it first."))
            return None
        worker = Worker(fn, *args, name=f"finetune-{what}", **kwargs)
        worker.kwargs["cancel"] = worker.cancel
        worker.progress.connect(self.progress)
        if on_result is not None:
            worker.result.connect(on_result)
        worker.error.connect(self.error)
        worker.finished.connect(lambda: self._finished(worker))
        self._worker = worker
        self.busy_changed.emit(what)
        self.runner.start(worker, long=long)
        return worker

    def _finished(self, worker: Worker) -> None:
        if self._worker is worker:
            self._worker = None
            self.busy_changed.emit("")
            if self._export_next:  # training ended: the adapter is exported and tested before the user sees it
                self._export_next = False
                self.export_and_test()

    def stop(self) -> None:
        """Stop the running step; training finishes its step and writes a checkpoint first."""
        if self.running:
            self._worker.cancel.cancel()

    # --- data ----------------------------------------------------------------------------------------
    def read_files(self, paths: list[str]) -> None:
        self._run("Reading the files…", _read_files, paths, on_result=self.passages_ready.emit)

    def read_collection(self, collection_id: int) -> None:
        self._run("Reading the collection…", _read_collection, self.services.paths.db, collection_id,
                  on_result=self.passages_ready.emit)

    def write_pairs(self, passages: list, per_passage: int) -> None:
        """The chat model loaded on the Chat page drafts question/answer pairs (reviewed before training)."""
        loaded = self.services.chat_model
        if loaded is None:
            self.error.emit(InvalidInput("Writing questions needs a chat model: none is loaded.",
                                         "Load one on the Chat page (the model you will fine-tune is a good choice)."))
            return
        if not passages:
            self.error.emit(InvalidInput("There is no text to write questions about yet.", "Read files or a collection first."))
            return
        self._run("Writing questions…", qa_writer.write_qa_pairs, loaded.host.client(), passages,
                  per_passage=per_passage, on_result=self.pairs_ready.emit, long=True)

    def build_dataset(self, mode: str, *, passages: list, pairs: list[tuple[str, str]], chat_files: list[str],
                      held_out: float, general: float, problems: dict | None = None) -> None:
        self._run("Building the dataset…", _build, mode, passages, pairs, chat_files, held_out, general,
                  dict(problems or {}), on_result=self._dataset_built)

    def _dataset_built(self, built: Dataset) -> None:
        self.dataset = built
        self.dataset_ready.emit(built)

    # --- job, plan, train ----------------------------------------------------------------------------
    def plan(self, base_model: str, settings: TrainSettings, probes: list[str], name: str = "") -> None:
        """Make the job from the built dataset (a new one unless the shown job has the same data and
        settings), then measure its plan in the trainer child."""
        if self.dataset is None and self.job is None:
            self.error.emit(InvalidInput("There is no dataset yet.", "Preview the data first."))
            return
        self._run("Planning: loading the model and timing a few steps…", _plan, self.services.paths,
                  self.job if self.dataset is None else None, base_model, self.dataset, settings, probes, name,
                  self.threads, on_result=self._planned, long=True)

    def _planned(self, value) -> None:
        job, plan = value
        self.dataset = None  # it lives in the job's folder now
        self.show_job(job)
        self.jobs()
        self.plan_ready.emit(plan)

    def train(self) -> None:
        """Train the shown job from its last checkpoint (from the start the first time)."""
        if self.job is None:
            self.error.emit(InvalidInput("There is no job to train.", "Make a plan first."))
            return
        self._run("Training…", self.job.train, on_result=self._trained, long=True)

    def _trained(self, result) -> None:
        self.jobs()
        self.trained.emit(result)
        self._export_next = result.state == "trained"  # once the training worker has finished

    def export_and_test(self, name: str = "") -> None:
        """Write the GGUF adapter, then test it before the user sees it."""
        if self.job is None:
            return
        self._run("Exporting and testing the adapter…", _export_and_test, self.services.paths, self.job, name,
                  on_result=self._tested, long=True)

    def _tested(self, value) -> None:
        adapter, report = value
        self.jobs()
        self.tested.emit(adapter, report)
        self.notices.publish(Changes(adapters=True, source=self))

    # --- evaluation -----------------------------------------------------------------------------------
    def evaluate(self, adapter, collection_id: int | None, scale: float = 1.0, general: bool = True) -> None:
        """Ask the shown job's held-out and probe questions (and general ones) of base, base + documents,
        adapter and adapter + documents; the documents come through the chat's own retrieval."""
        if self.job is None or adapter is None:
            self.error.emit(InvalidInput("There is no adapter to evaluate yet.", "Train and export one first."))
            return
        questions = evaluate.held_out_questions(Dataset.read(self.job.folder.dataset, self.job.config["mode"]))
        questions += evaluate.probe_questions(self.job.config.get("probes") or [])
        if general:
            questions += evaluate.general_questions()
        documents_for = None
        if collection_id is not None:
            retriever = self.services.retriever
            settings = ChatDocuments((collection_id,), "retrieve", 3)

            def documents_for(question, cancel):
                grounding = yield from retriever.retrieve(settings, question, cancel)
                return grounding.documents()

        self._run("Asking the questions…", evaluate.compare, self.services.paths, self.job.base_model, adapter.gguf,
                  questions, scale=scale, documents_for=documents_for, threads=self.threads or default_threads(),
                  on_result=self.evaluated.emit, long=True)

    # --- beyond one machine ----------------------------------------------------------------------------
    def export_job(self, out: str, base_model: str, settings: TrainSettings) -> None:
        """A self-contained folder that trains this dataset on a bigger machine (`accelerate launch`)."""
        built = self.dataset
        if built is None and self.job is not None:
            built = Dataset.read(self.job.folder.dataset, self.job.config["mode"])
        if built is None:
            self.error.emit(InvalidInput("There is no dataset to export yet.", "Preview the data first."))
            return
        self._run("Writing the job's folder…", _export_job, built, settings, out, base_model,
                  on_result=self.job_exported.emit)

    def import_adapter(self, peft_folder: str, base_model: str, probes: list[str]) -> None:
        """A peft adapter trained elsewhere, through the same GGUF export and self-test as one trained here."""
        self._run("Importing and testing the adapter…", elsewhere.import_adapter, self.services.paths, peft_folder,
                  base_model, probes=probes, threads=self.threads or default_threads(), on_result=self._tested, long=True)

    # --- the training stack ---------------------------------------------------------------------------
    def install_stack(self) -> None:
        """pip installs the fine-tune extra into the Python Ember runs on; its output is the progress."""
        status = availability.stack_status()
        self._run("Installing PyTorch and the fine-tune libraries…", _pip_install, list(status.missing),
                  on_result=lambda _code: self.stack_status(), long=True)


# --- on workers -------------------------------------------------------------------------------------
def _read_files(paths: list[str], cancel: CancelToken | None = None):
    return sources.read_text_files(paths)


def _read_collection(db_path: Path, collection_id: int, cancel: CancelToken | None = None):
    from engine.store.db import connect

    conn = connect(db_path, migrate=False)
    try:
        return sources.collection_passages(DocumentsRepository(conn), collection_id)
    finally:
        conn.close()


def _build(mode: str, passages: list, pairs: list[tuple[str, str]], chat_files: list[str], held_out: float,
           general: float, problems: dict, cancel: CancelToken | None = None) -> Dataset:
    if mode == "raw":
        examples = dataset.text_examples(passages)
    elif mode == "qa":
        examples = dataset.qa_examples(pairs)
    else:
        examples = []
        for path in chat_files:
            examples += dataset.chat_examples(chat_data.read_chat_jsonl(path), source=Path(path).name)
    return dataset.build_dataset(mode, examples, held_out_fraction=held_out, general_fraction=general,
                                 problems=problems)


def _plan(paths, job: FineTuneJob | None, base_model: str, built: Dataset | None, settings: TrainSettings,
          probes: list[str], name: str, threads: int | None, cancel: CancelToken | None = None
          ) -> Iterator[Progress]:
    if job is None:
        job = yield from new_job(paths, base_model, built, settings, probes=probes or pipeline.default_probes(built),
                                 name=name or None, threads=threads, cancel=cancel)
    plan = yield from job.plan(cancel)
    return job, plan


def _export_and_test(paths, job: FineTuneJob, name: str, cancel: CancelToken | None = None) -> Iterator[Progress]:
    yield Progress(0, None, "", "Writing the GGUF adapter…")
    adapter = pipeline.export_adapter(paths, job, name or None)
    report = yield from pipeline.run_self_test(adapter, pipeline.self_test_input(job), cancel)
    return adapter, report


def _export_job(built: Dataset, settings: TrainSettings, out: str, base_model: str,
                cancel: CancelToken | None = None) -> Path:
    return elsewhere.export_job_folder(built, settings, Path(out), Path(base_model))


def _pip_install(missing: list[str], cancel: CancelToken | None = None) -> Iterator[Progress]:
    """The fine-tune stack into this Python (torch first, so pip does not pick a build for it)."""
    packages = (["torch"] if "torch" in missing else []) + [p for p in missing if p != "torch"]
    process = subprocess.Popen([sys.executable, "-m", "pip", "install", *packages], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        for line in process.stdout:
            if cancel is not None and cancel.cancelled:
                process.terminate()
                break
            yield Progress(0, None, "", line.strip()[:200])
    finally:
        code = process.wait()
    if code != 0 and not (cancel and cancel.cancelled):
        raise EmberError("Installing the fine-tune libraries failed.",
                         f"Run it in a terminal to see why: {availability.install_command(tuple(missing))}")
    return code
