"""`ember bench`: the retrieval bench of a collection from a terminal.

    ember bench --collection NAME [--model PATH] [--pairs N] [--json]

With `--model` (a GGUF chat model) it first writes N new question/answer pairs from the collection's
chunks (stored as drafts, under the home lock, as `ember index` writes); then it scores every pair that
is not dropped with BM25, the vectors and both fused, and prints recall@1/3/5/10 and MRR per mode and
the winner (or, with `--json`, one object: `modes`, `winner`, `pairs` with each one's ranks). Exits 1
with the reason when there is nothing to score.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.commands.output import EXIT_OK, print_json
from engine.errors import InvalidInput, NotFound
from engine.jobs import CancelToken

CHAT_CONTEXT = 4096


def register(subparsers) -> None:
    bench = subparsers.add_parser("bench", help="score BM25, vector and hybrid retrieval on a collection's questions")
    bench.add_argument("--collection", required=True, help="the collection's name")
    bench.add_argument("--model", default=None, help="a GGUF chat model: write new questions with it first")
    bench.add_argument("--pairs", type=int, default=10, help="how many questions to write with --model (default 10)")
    bench.add_argument("--seed", type=int, default=0, help="which chunks are sampled (default 0)")
    bench.add_argument("--threads", type=int, default=None, help="CPU threads for the models")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(func=run_bench)


def run_bench(args) -> int:
    from engine.paths import EmberPaths
    from engine.store.db import connect, connect_read_only

    paths = EmberPaths.from_env()
    written = None
    if args.model:
        from engine.rag.bench import MAX_PAIRS
        from engine.store.lock import HomeLock

        if not 1 <= args.pairs <= MAX_PAIRS:
            raise InvalidInput(f"--pairs must be between 1 and {MAX_PAIRS}.")
        if not Path(args.model).is_file():
            raise InvalidInput(f"{args.model} does not exist.", "Give the path of a GGUF chat model.")
        paths.ensure()
        with HomeLock(paths.lock).acquire("ember bench"):
            conn = connect(paths.db)
            try:
                written = _write(conn, _collection(conn, args.collection).id, args)
            finally:
                conn.close()
    conn = connect_read_only(paths.db)
    try:
        report = _score(conn, _collection(conn, args.collection), args)
    finally:
        conn.close()
    if args.json:
        print_json({**report.to_dict(), "written": None if written is None else len(written.pairs)})
        return EXIT_OK
    if written is not None:
        print(f"{len(written.pairs)} new question(s) written from {written.chunks_asked} passage(s) "
              f"in {written.seconds:.1f} s (stored as drafts).")
    _print_table(report)
    return EXIT_OK


def _collection(conn, name: str):
    from engine.store.documents_repo import DocumentsRepository

    collection = DocumentsRepository(conn).find_collection(name)
    if collection is None:
        raise NotFound(f"There is no collection named {name!r}.",
                       "Make it with: ember index --collection NAME --embedding-model PATH FOLDER")
    return collection


def _write(conn, collection_id: int, args):
    from engine.commands.model_args import logs_dir
    from engine.rag.bench import write_pairs
    from engine.runtime.supervisor import HostSettings, RuntimeHost

    host = RuntimeHost(HostSettings(model_path=args.model, context_length=CHAT_CONTEXT, gpu_layers="auto",
                                    threads=args.threads), log_dir=logs_dir())
    try:
        host.start_blocking()
        events = write_pairs(conn, collection_id, host.client(), args.pairs, seed=args.seed, cancel=CancelToken())
        return _drain(events, quiet=args.json)
    finally:
        host.stop()


def _score(conn, collection, args):
    from engine.commands.model_args import logs_dir
    from engine.rag.bench import pairs_to_score, score
    from engine.rag.embedder import Embedder
    from engine.runtime.registry import HostRegistry

    pairs_to_score(conn, collection.id, include_drafts=True)  # says why before a model starts
    model = collection.embedding_model_path
    if not model or not Path(model).is_file():
        raise InvalidInput(f"The embedding model of {collection.name} is missing ({model or 'none chosen'}).",
                           "Index the collection again with its embedding model.")
    embedder = Embedder(HostRegistry(), logs_dir(), threads=args.threads)
    try:
        client = embedder.client(model)
        return _drain(score(conn, collection.id, client.embed, include_drafts=True), quiet=args.json)
    finally:
        embedder.stop()


def _drain(events, quiet: bool):
    try:
        while True:
            progress = next(events)
            if not quiet:
                sys.stderr.write(f"\r{progress.message[:100]:<100}")
    except StopIteration as stop:
        if not quiet:
            sys.stderr.write("\r" + " " * 100 + "\r")
        return stop.value


def _print_table(report) -> None:
    header = f"{'mode':<10}" + "".join(f"{f'recall@{k}':>11}" for k in report.ks) + f"{'MRR':>8}"
    print(header)
    for s in report.scores:
        mark = "  <- winner" if s.mode == report.winner else "  (tie)" if s.mode in report.tied else ""
        print(f"{s.mode:<10}" + "".join(f"{s.recall[k]:>11.2f}" for k in report.ks) + f"{s.mrr:>8.2f}{mark}")
    print(report.summary())
