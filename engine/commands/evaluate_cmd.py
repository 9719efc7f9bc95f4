"""`ember finetune evaluate`: the evaluation view from a terminal: the same questions asked of the base
model, base + documents, the adapter and adapter + documents, with a score per column."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.commands.output import EXIT_OK, print_json


def add_evaluate_parser(actions) -> None:
    evaluate = actions.add_parser("evaluate", help="ask held-out, probe and general questions of base and adapter")
    evaluate.add_argument("--model", required=True, help="the base GGUF")
    evaluate.add_argument("--adapter", required=True, help="the GGUF LoRA adapter")
    evaluate.add_argument("--scale", type=float, default=1.0, help="the adapter's strength (default 1)")
    evaluate.add_argument("--job", default=None, help="a job folder: its held-out questions are asked")
    evaluate.add_argument("--collection", default=None, help="a collection for the '+ documents' columns")
    evaluate.add_argument("--probe", action="append", default=[], help="a question without a reference (repeatable)")
    evaluate.add_argument("--no-general", action="store_true", help="leave out the general-knowledge questions")
    evaluate.add_argument("--threads", type=int, default=None, help="CPU threads (default: cores - 1)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object at the end")


def run_evaluate(args) -> int:
    from engine.commands.finetune_cmd import Printer, drive, with_cancel
    from engine.finetune import evaluate
    from engine.paths import EmberPaths

    paths = EmberPaths.from_env().ensure()
    questions = []
    if args.job:
        from engine.finetune.dataset import Dataset
        from engine.finetune.job import FineTuneJob

        job = FineTuneJob(Path(args.job))
        questions += evaluate.held_out_questions(Dataset.read(job.folder.dataset, job.config["mode"]))
    questions += evaluate.probe_questions(args.probe)
    if not args.no_general:
        questions += evaluate.general_questions()
    documents_for, embedder = (None, None) if not args.collection else collection_search(paths, args.collection)
    printer = Printer(args.json)
    try:
        result = with_cancel(lambda cancel: drive(evaluate.compare(
            paths, args.model, args.adapter, questions, scale=args.scale, documents_for=documents_for,
            threads=args.threads, cancel=cancel), printer))
    finally:
        if embedder is not None:
            embedder.stop()
    if args.json:
        print_json(result.to_dict())
        return EXIT_OK
    for column in result.columns:
        score = result.score(column)
        shown = f"{score[0]}/{score[1]}" if score else f"not run ({result.not_run[column]})"
        sys.stdout.write(f"{column:22s} {shown}\n")
    return EXIT_OK


def collection_search(paths, name: str):
    """(documents_for, embedder): the chat's retrieval over one collection, by its name."""
    from engine.errors import NotFound
    from engine.rag.embedder import Embedder
    from engine.rag.grounding import ChatRetriever
    from engine.runtime.registry import HostRegistry
    from engine.store.chat_documents_repo import ChatDocuments
    from engine.store.db import connect_read_only
    from engine.store.documents_repo import DocumentsRepository

    conn = connect_read_only(paths.db)
    try:
        collection = DocumentsRepository(conn).find_collection(name)
    finally:
        conn.close()
    if collection is None:
        raise NotFound(f"There is no collection named {name!r}.", "Index one with: ember index --collection NAME ...")
    embedder = Embedder(HostRegistry(), paths.logs)
    retriever = ChatRetriever(paths.db, embedder)
    settings = ChatDocuments((collection.id,), "retrieve", 3)

    def documents_for(question: str, cancel):
        grounding = yield from retriever.retrieve(settings, question, cancel)
        return grounding.documents()

    return documents_for, embedder
