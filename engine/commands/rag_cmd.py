"""`ember index` and `ember ask`: a document collection from a terminal.

    ember index --collection NAME [--embedding-model PATH] PATH...
    ember ask --collection NAME [--k N] [--model PATH] [--json] QUESTION

`index` takes the home lock (it writes the index), is incremental on a re-run, and exits 1 with the
reasons when nothing could be indexed. `ask` only reads; with `--json` it prints one object:
`chunks` (best first: source, page or lines, text, score, bm25_rank, vector_rank) and, with
`--model`, `answer` and its `citations`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from engine.commands.output import EXIT_ERROR, EXIT_OK, print_json
from engine.errors import InvalidInput, NotFound
from engine.jobs import CancelToken

CITATION = re.compile(r"\[(\d{1,2})\]")


def register(subparsers) -> None:
    index = subparsers.add_parser("index", help="add files and folders to a document collection and index them")
    index.add_argument("--collection", required=True, help="the collection's name (made if new)")
    index.add_argument("--embedding-model", default=None,
                       help="a GGUF embedding model (needed when the collection is new)")
    index.add_argument("--threads", type=int, default=None, help="CPU threads for the embedding model")
    index.add_argument("--retry-failed", action="store_true",
                       help="read again the files that failed before (they are skipped while unchanged)")
    index.add_argument("--json", action="store_true", help="print one JSON object at the end")
    index.add_argument("paths", nargs="+", help="files and folders")
    index.set_defaults(func=run_index)

    ask = subparsers.add_parser("ask", help="retrieve from a collection (and answer with --model)")
    ask.add_argument("--collection", required=True)
    ask.add_argument("--k", type=int, default=5, help="how many chunks (default 5)")
    ask.add_argument("--model", default=None, help="a GGUF chat model that answers from the chunks")
    ask.add_argument("--endpoint", default=None, metavar="URL",
                     help="an OpenAI-compatible server that answers instead of --model")
    ask.add_argument("--api-key", default=None, help="the remote server's API key")
    ask.add_argument("--remote-model", default=None, metavar="NAME", help="the remote server's model")
    ask.add_argument("--max-tokens", type=int, default=256)
    ask.add_argument("--threads", type=int, default=None)
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("question")
    ask.set_defaults(func=run_ask)


def run_index(args) -> int:
    from engine.commands.model_args import logs_dir
    from engine.paths import EmberPaths
    from engine.rag.embedder import Embedder
    from engine.rag.index_job import collection_files, index_sources
    from engine.rag.parser import DocumentParser
    from engine.runtime.registry import HostRegistry
    from engine.store.db import connect
    from engine.store.documents_repo import DocumentsRepository
    from engine.store.lock import HomeLock

    paths = EmberPaths.from_env().ensure()
    for path in args.paths:
        if not Path(path).exists():
            raise InvalidInput(f"{path} does not exist.", "Give files or folders that exist.")
    with HomeLock(paths.lock).acquire("ember index"):
        conn = connect(paths.db)
        try:
            repo = DocumentsRepository(conn)
            collection = _collection_for_index(repo, args)
            for path in args.paths:
                resolved = Path(path).expanduser().resolve()
                if not any(s.path == str(resolved) for s in repo.list_sources(collection.id)):
                    repo.add_source(collection.id, str(resolved), "folder" if resolved.is_dir() else "file")
            if not collection_files(repo, collection.id).files:
                raise InvalidInput(f"No documents were found in {', '.join(args.paths)}.",
                                   "Ember reads PDF, DOCX, EPUB, Markdown, HTML, text and source code files.")
        finally:
            conn.close()
        embedder = Embedder(HostRegistry(), logs_dir(), threads=args.threads)
        try:
            with DocumentParser(log_dir=paths.logs) as parser:
                events = index_sources(paths.db, collection.id, embedder, parser, CancelToken(),
                                       retry_failed=args.retry_failed)
                report = _drain(events, quiet=args.json)
        finally:
            embedder.stop()
    if args.json:
        print_json({"collection": collection.name, "files": report.files, "unchanged": report.unchanged,
                    "indexed": report.indexed, "failed": report.failed, "removed": report.removed,
                    "chunks": report.chunks, "seconds": round(report.seconds, 3)})
    else:
        print(f"{collection.name}: {report.indexed} indexed, {report.unchanged} unchanged, "
              f"{len(report.failed)} failed, {len(report.removed)} removed ({report.chunks} chunks, "
              f"{report.seconds:.1f} s)")
        for path, reason in report.failed.items():
            print(f"  failed: {path}: {reason}", file=sys.stderr)
    if report.indexed == 0 and report.unchanged == 0:
        if not args.json:
            print("ember: nothing could be indexed (see the reasons above).", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _collection_for_index(repo, args):
    collection = repo.find_collection(args.collection)
    model = str(Path(args.embedding_model).expanduser().resolve()) if args.embedding_model else None
    if collection is None:
        if model is None:
            raise InvalidInput(f"There is no collection named {args.collection!r} yet.",
                               "Give --embedding-model PATH (a GGUF embedding model) to make it.")
        return repo.create_collection(args.collection, embedding_model_path=model)
    if model is not None and model != collection.embedding_model_path:
        raise InvalidInput(f"The collection {collection.name!r} was built with {collection.embedding_model_path}.",
                           "Another embedding model means embedding every document again: make a new "
                           "collection for it, or leave out --embedding-model.")
    return collection


def _drain(events, quiet: bool):
    try:
        while True:
            progress = next(events)
            if not quiet:
                sys.stderr.write(f"\r{progress.message[:100]:<100}")
    except StopIteration as stop:
        if not quiet:
            sys.stderr.write("\n")
        return stop.value


def run_ask(args) -> int:
    from engine.commands.model_args import logs_dir
    from engine.paths import EmberPaths
    from engine.rag.embedder import Embedder
    from engine.rag.embedding_prefixes import prefixes_for
    from engine.rag.index_job import embedding_model_of
    from engine.rag.retrieve import search
    from engine.runtime.registry import HostRegistry
    from engine.store.db import connect_read_only
    from engine.store.documents_repo import DocumentsRepository

    if args.k < 1:
        raise InvalidInput("--k must be at least 1.")
    paths = EmberPaths.from_env()
    conn = connect_read_only(paths.db)
    try:
        collection = DocumentsRepository(conn).find_collection(args.collection)
        if collection is None:
            raise NotFound(f"There is no collection named {args.collection!r}.",
                           "Make it with: ember index --collection NAME --embedding-model PATH FOLDER")
        model = embedding_model_of(DocumentsRepository(conn), collection.id)
        embedder = Embedder(HostRegistry(), logs_dir(), threads=args.threads)
        try:
            vector = embedder.client(model).embed([prefixes_for(model).query + args.question])[0]
        finally:
            embedder.stop()
        hits = search(conn, [collection.id], args.question, vector, k=args.k)
    finally:
        conn.close()
    chunks = [_chunk_json(hit) for hit in hits]
    result: dict = {"collection": collection.name, "question": args.question, "chunks": chunks}
    if args.model or args.endpoint:
        result.update(_answer(args, hits))
    if args.json:
        print_json(result)
        return EXIT_OK
    if "answer" in result:
        print(result["answer"].strip() + "\n")
    for n, chunk in enumerate(chunks, start=1):
        where = f"page {chunk['page']}" if "page" in chunk else f"lines {chunk['lines'][0]}-{chunk['lines'][1]}" \
            if "lines" in chunk else ""
        print(f"[{n}] {chunk['source']} {where}  (score {chunk['score']:.4f})")
        print("    " + chunk["text"][:200].replace("\n", " "))
    return EXIT_OK


def _chunk_json(hit) -> dict:
    data = {"source": hit.path, "text": hit.text, "score": hit.score, "bm25_rank": hit.bm25_rank,
            "vector_rank": hit.vector_rank}
    if hit.page_start is not None:
        data["page"] = hit.page_start
    elif hit.line_start is not None:
        data["lines"] = [hit.line_start, hit.line_end]
    return data


def _answer(args, hits) -> dict:
    """The chat model answers from the retrieved chunks, through the one turn assembler."""
    from engine.chat.turn import TurnRequest, assemble_turn
    from engine.commands.model_args import logs_dir
    from engine.remote.endpoints import Endpoint
    from engine.remote.host import RemoteHost
    from engine.runtime.sampling import Sampling
    from engine.runtime.supervisor import HostSettings, RuntimeHost

    if args.endpoint:
        if not args.remote_model:
            raise InvalidInput("--endpoint needs --remote-model NAME (one of the server's models).")
        host = RemoteHost(Endpoint("remote", args.endpoint, args.api_key or ""), args.remote_model, 4096)
    else:
        host = RuntimeHost(HostSettings(model_path=args.model, context_length=4096, gpu_layers=0,
                                        threads=args.threads), log_dir=logs_dir())
    try:
        host.start_blocking()
        client = host.client()
        request = TurnRequest("", [], args.question, args.max_tokens, 4096, documents=[h.text for h in hits])
        turn = assemble_turn(client, request, drop_oldest=True)
        sampling = Sampling(temperature=0.0, max_tokens=args.max_tokens, seed=0)
        answer = "".join(e.text for e in client.stream_chat(turn.messages, sampling) if e.stats is None)
    finally:
        host.stop()
    cited = sorted({int(n) for n in CITATION.findall(answer) if 1 <= int(n) <= len(hits)})
    citations = [{"n": n, **{k: v for k, v in _chunk_json(hits[n - 1]).items() if k in ("source", "page", "lines")}}
                 for n in cited]
    return {"answer": answer, "citations": citations}
