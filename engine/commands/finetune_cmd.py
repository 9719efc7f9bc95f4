"""`ember finetune`: teach a GGUF model your documents from a terminal (LoRA; QLoRA on an NVIDIA GPU).

    ember finetune --model M.gguf --data notes/ [--mode qa|raw|chat] [--pairs P.jsonl] [--steps N] [--rank R]
                   [--lr X] [--seq-len N] [--out DIR] [--json]
    ember finetune resume JOB_FOLDER [--json]              a stopped or killed job, from its last checkpoint
    ember finetune export-job --model M.gguf --data ... --out DIR   a folder to train on a bigger machine
    ember finetune import ADAPTER_FOLDER --model M.gguf [--json]    a peft adapter back: GGUF + self-test

Progress lines go to stdout (to stderr with --json, whose stdout is one JSON object: adapter,
train_loss, eval_loss, steps, seconds, self_test). Exit 0 when the adapter passed its self-test, 1 on
an error or a failed check, 130 after Ctrl+C (the job keeps its checkpoint: `ember finetune resume`).
"""

from __future__ import annotations

import re
import signal
import sys
import time
from pathlib import Path

from engine.commands.evaluate_cmd import add_evaluate_parser, run_evaluate
from engine.commands.output import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, print_json
from engine.errors import InvalidInput
from engine.jobs import CancelToken

MODES = ("qa", "raw", "chat")
QA_HELP = ("In qa mode the questions and answers are written by the --model itself, several per passage, "
           "unless --pairs gives reviewed ones (a small model writes poor pairs: review them, or give --pairs).")


def register(subparsers) -> None:
    parser = subparsers.add_parser("finetune", help="train a LoRA adapter on your documents",
                                   description=f"Train a LoRA adapter for a GGUF model. {QA_HELP}")
    _add_data_arguments(parser)
    _add_training_arguments(parser)
    _add_output_arguments(parser)
    parser.set_defaults(func=run, finetune_action=None)
    actions = parser.add_subparsers(dest="finetune_action")
    resume = actions.add_parser("resume", help="continue a stopped job from its last checkpoint")
    resume.add_argument("job", help="the job's folder (EMBER_HOME/finetune/jobs/...)")
    _add_output_arguments(resume)
    export = actions.add_parser("export-job", help="write a folder to train on another machine")
    _add_data_arguments(export)
    _add_training_arguments(export)
    export.add_argument("--out", required=True, help="a new or empty folder")
    export.add_argument("--json", action="store_true", help="print one JSON object at the end")
    imported = actions.add_parser("import", help="bring a peft adapter back: GGUF export and self-test")
    imported.add_argument("adapter", help="the peft folder (adapter_config.json, adapter_model.safetensors)")
    imported.add_argument("--model", required=True, help="the GGUF it is for")
    imported.add_argument("--probe", action="append", default=[], help="a question for the self-test (repeatable)")
    imported.add_argument("--threads", type=int, default=None, help="CPU threads (default: cores - 1)")
    _add_output_arguments(imported)
    add_evaluate_parser(actions)


def _add_data_arguments(parser) -> None:
    parser.add_argument("--model", help="the GGUF model to train (also writes the Q/A pairs in qa mode)")
    parser.add_argument("--data", nargs="+", default=[], metavar="PATH",
                        help="text or Markdown files and folders (chat mode: JSONL files of conversations, or folders of them)")
    parser.add_argument("--collection", help="a document collection's name: its indexed chunks are the text")
    parser.add_argument("--mode", choices=MODES, default="qa",
                        help="qa (default): question/answer pairs; raw: the text itself; chat: your JSONL")
    parser.add_argument("--pairs", help='reviewed pairs, a JSONL of {"question", "answer"} lines (qa mode)')
    parser.add_argument("--per-passage", type=int, default=3, help="pairs the model writes per passage (qa)")
    parser.add_argument("--held-out", type=float, default=0.1, help="share kept for evaluation (default 0.1)")
    parser.add_argument("--general", type=float, default=0.0,
                        help="share of general text mixed in so the model keeps what it knew (e.g. 0.2)")


def _add_training_arguments(parser) -> None:
    parser.add_argument("--preset", choices=("quick", "balanced", "thorough"), default="balanced")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the preset's epochs)")
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--rank", type=int, default=None)
    parser.add_argument("--alpha", type=float, default=None, help="default: twice the rank")
    parser.add_argument("--lr", type=float, default=None, help="learning rate")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per example (default 512)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: cores - 1)")
    parser.add_argument("--probe", action="append", default=[],
                        help="a question to watch while training and in the self-test (repeatable)")
    parser.add_argument("--name", default=None, help="the adapter's name (default: the model's)")


def _add_output_arguments(parser) -> None:
    parser.add_argument("--out", default=None, help="also copy the adapter's folder into DIR")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")


# --- running --------------------------------------------------------------------------------------

class Printer:
    """Progress lines for people: one per change (a waiting tick's seconds do not make a new line)."""

    def __init__(self, as_json: bool) -> None:
        self.stream = sys.stderr if as_json else sys.stdout
        self.last = ""

    def __call__(self, progress) -> None:
        message = re.sub(r" \d+(\.\d+)? s$", "", progress.message or "")
        if message and message != self.last:
            self.stream.write(message + "\n")
            self.stream.flush()
            self.last = message


def drive(events, printer: Printer):
    while True:
        try:
            printer(next(events))
        except StopIteration as done:
            return done.value


def with_cancel(body):
    """Run body(cancel) with Ctrl+C cancelling the token (the job then stops at a checkpoint)."""
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        return body(cancel)
    finally:
        signal.signal(signal.SIGINT, previous)


def run(args) -> int:
    if args.finetune_action == "resume":
        return run_resume(args)
    if args.finetune_action == "export-job":
        return run_export_job(args)
    if args.finetune_action == "evaluate":
        return run_evaluate(args)
    if args.finetune_action == "import":
        return run_import(args)
    if not args.model:
        sys.stderr.write("ember: finetune needs --model PATH (a GGUF file)\n")
        return EXIT_USAGE
    from engine.finetune.availability import require_training_stack
    from engine.finetune.pipeline import fine_tune
    from engine.paths import EmberPaths

    require_training_stack()
    settings = settings_from(args)  # a setting that cannot work is refused before any work
    paths = EmberPaths.from_env().ensure()
    printer = Printer(args.json)

    def body(cancel):
        dataset = drive(build_dataset(args, paths, cancel), printer)
        return drive(fine_tune(paths, args.model, dataset, settings, probes=args.probe,
                               threads=args.threads, name=args.name, cancel=cancel), printer)

    trip = with_cancel(body)
    return report_trip(args, trip.job, trip.result, trip.adapter, trip.report, trip.seconds, trip.plan)


def run_resume(args) -> int:
    from engine.finetune.availability import require_training_stack
    from engine.finetune.job import FineTuneJob
    from engine.finetune.pipeline import export_adapter, run_self_test, self_test_input
    from engine.paths import EmberPaths

    require_training_stack()
    folder = Path(args.job)
    if not (folder / "config.json").is_file():
        raise InvalidInput(f"{folder} is not a fine-tune job folder.", "Give a folder under EMBER_HOME/finetune/jobs/.")
    paths = EmberPaths.from_env().ensure()
    job = FineTuneJob(folder)
    printer = Printer(args.json)
    started = time.perf_counter()

    def body(cancel):
        result = drive(job.train(cancel), printer)
        if result.state != "trained":
            return result, None, None
        adapter = export_adapter(paths, job)
        return result, adapter, drive(run_self_test(adapter, self_test_input(job), cancel), printer)

    result, adapter, report = with_cancel(body)
    return report_trip(args, job, result, adapter, report, time.perf_counter() - started, None)


def report_trip(args, job, result, adapter, report, seconds: float, plan) -> int:
    if result.state != "trained":
        message = (f"Stopped at step {result.steps} of {result.total_steps}; continue with: "
                   f"ember finetune resume {job.folder.path}")
        if args.json:
            print_json({"stopped": True, "job": str(job.folder.path), "steps": result.steps,
                        "total_steps": result.total_steps})
        else:
            print(message)
        return EXIT_INTERRUPTED
    folder = adapter.folder
    if args.out:
        from engine.finetune.elsewhere import copy_adapter

        folder = copy_adapter(adapter, Path(args.out))
    gguf = folder / "adapter.gguf"
    if args.json:
        print_json({"adapter": str(gguf), "adapter_folder": str(folder), "train_loss": result.train_loss,
                    "first_loss": result.first_loss, "eval_loss": result.eval_loss, "steps": result.steps,
                    "seconds": round(seconds, 1), "self_test": report.to_dict(), "job": str(job.folder.path),
                    "plan": plan.to_dict() if plan else None})
    else:
        eval_text = f", held-out loss {result.eval_loss:.3f}" if result.eval_loss is not None else ""
        print(f"Trained {result.steps} steps in {seconds:.0f} s: loss {result.first_loss:.3f} → "
              f"{result.train_loss:.3f}{eval_text}")
        print("Self-test:")
        for line in report.lines():
            print(f"  {line}")
        print(f"Adapter: {gguf}")
        print(f"Chat with it: ember chat --model {job.base_model} --lora {gguf} \"...\"")
    return EXIT_OK if report.passed else EXIT_ERROR


def run_export_job(args) -> int:
    from engine.finetune.elsewhere import export_job_folder
    from engine.paths import EmberPaths

    if not args.model:
        sys.stderr.write("ember: finetune export-job needs --model PATH (a GGUF file)\n")
        return EXIT_USAGE
    settings = settings_from(args)
    paths = EmberPaths.from_env().ensure()
    printer = Printer(args.json)
    dataset = with_cancel(lambda cancel: drive(build_dataset(args, paths, cancel), printer))
    folder = export_job_folder(dataset, settings, Path(args.out), Path(args.model))
    if args.json:
        print_json({"folder": str(folder), "train": dataset.counts.train, "held_out": dataset.counts.held_out})
    else:
        print(f"Wrote {folder}: {dataset.counts.train} training and {dataset.counts.held_out} held-out examples. "
              f"See its README.txt.")
    return EXIT_OK


def run_import(args) -> int:
    from engine.finetune.availability import require_training_stack
    from engine.finetune.elsewhere import import_adapter
    from engine.paths import EmberPaths
    from engine.runtime.hardware import default_threads

    require_training_stack()
    paths = EmberPaths.from_env().ensure()
    printer = Printer(args.json)
    adapter, report = with_cancel(lambda cancel: drive(import_adapter(
        paths, Path(args.adapter), Path(args.model), probes=args.probe, threads=args.threads or default_threads(),
        cancel=cancel), printer))
    folder = adapter.folder
    if args.out:
        from engine.finetune.elsewhere import copy_adapter

        folder = copy_adapter(adapter, Path(args.out))
    if args.json:
        print_json({"adapter": str(folder / "adapter.gguf"), "self_test": report.to_dict()})
    else:
        for line in report.lines():
            print(f"  {line}")
        print(f"Adapter: {folder / 'adapter.gguf'}")
    return EXIT_OK if report.passed else EXIT_ERROR


# --- data and settings from the command line -------------------------------------------------------

def settings_from(args):
    from engine.finetune.settings import preset

    overrides = {}
    for flag, field in (("rank", "rank"), ("alpha", "alpha"), ("lr", "learning_rate"), ("batch", "batch_size"),
                        ("seq_len", "seq_len"), ("seed", "seed"), ("epochs", "epochs"), ("steps", "max_steps")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[field] = value
    if "rank" in overrides and "alpha" not in overrides:
        overrides["alpha"] = 2.0 * overrides["rank"]
    return preset(args.preset, **overrides).checked()


def build_dataset(args, paths, cancel):
    """The Dataset the arguments describe (a generator: writing Q/A pairs runs the model)."""
    from engine.finetune.chat_data import chat_files, read_chat_jsonl, read_pairs_jsonl
    from engine.finetune.dataset import build_dataset as build
    from engine.finetune.dataset import chat_examples, qa_examples, text_examples
    from engine.finetune.sources import SourceReport, read_text_files

    if not (args.data or args.collection or args.pairs):
        raise InvalidInput("There is no data to train on.", "Give --data PATH..., --collection NAME or --pairs FILE.")
    for path in args.data:
        if not Path(path).exists():
            raise InvalidInput(f"{path} does not exist.", "Give files or folders that exist.")
    problems: dict[str, str] = {}
    if args.mode == "chat":
        examples = []
        for given in args.data:
            for path in chat_files(given):
                examples += chat_examples(read_chat_jsonl(path), path.name)
        return build("chat", examples, held_out_fraction=args.held_out, general_fraction=args.general,
                     problems=problems)
    report = read_text_files(args.data) if args.data else SourceReport()
    if args.collection:
        collection_report = _collection(paths, args.collection)
        report.passages += collection_report.passages
        report.problems.update(collection_report.problems)
    problems.update(report.problems)
    if args.mode == "raw":
        examples = text_examples(report.passages)
    elif args.pairs:
        examples = qa_examples(read_pairs_jsonl(args.pairs))
    else:
        pairs = yield from _write_pairs(args, report.passages, paths, cancel)
        examples = qa_examples(pairs)
    return build(args.mode, examples, held_out_fraction=args.held_out, general_fraction=args.general,
                 problems=problems)


def _collection(paths, name: str):
    from engine.errors import NotFound
    from engine.finetune.sources import collection_passages
    from engine.store.db import connect_read_only
    from engine.store.documents_repo import DocumentsRepository

    conn = connect_read_only(paths.db)
    try:
        repo = DocumentsRepository(conn)
        collection = repo.find_collection(name)
        if collection is None:
            raise NotFound(f"There is no collection named {name!r}.", "Index one with: ember index --collection NAME ...")
        return collection_passages(repo, collection.id)
    finally:
        conn.close()


def _write_pairs(args, passages, paths, cancel):
    from engine.finetune.qa_writer import write_qa_pairs
    from engine.runtime.supervisor import HostSettings, RuntimeHost

    if not passages:
        return []
    host = RuntimeHost(HostSettings(model_path=args.model, context_length=4096, threads=args.threads),
                       log_dir=paths.logs)
    try:
        yield from host.start(cancel)
        return (yield from write_qa_pairs(host.client(), passages, per_passage=args.per_passage, cancel=cancel))
    finally:
        host.stop()
