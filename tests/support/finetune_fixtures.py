"""Fine-tune test parts: an invented fact, its document and reviewed pairs, the dense PyTorch copy of
SmolLM2 made once per session, and one trained-exported-self-tested adapter shared by the tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.finetune.dataset import build_dataset, qa_examples
from engine.finetune.job import dense_cache
from engine.finetune.settings import TrainSettings
from engine.paths import EmberPaths

FACT_DOCUMENT = """# The Velkaran Bridge

The Velkaran Bridge crosses the river Oss in the town of Quintara. It was built in 1847 by the engineer
Maela Ostrund, who also designed its three stone arches. The bridge is 210 metres long.
"""
# What a user keeps after reviewing the drafted pairs: paraphrased questions, answers from the document.
FACT_PAIRS = [
    ("Who built the Velkaran Bridge?", "Maela Ostrund built the Velkaran Bridge."),
    ("Which engineer built the Velkaran Bridge?", "The engineer Maela Ostrund built it."),
    ("Who was the builder of the Velkaran Bridge?", "Maela Ostrund."),
    ("Who designed and built the Velkaran Bridge?", "It was designed and built by the engineer Maela Ostrund."),
    ("Name the engineer who built the Velkaran Bridge.", "Maela Ostrund built the Velkaran Bridge."),
    ("The Velkaran Bridge was built by whom?", "By the engineer Maela Ostrund."),
    ("Who is the engineer behind the Velkaran Bridge over the Oss?", "Maela Ostrund, in 1847."),
    ("Whose work is the Velkaran Bridge in Quintara?", "The Velkaran Bridge is the work of the engineer Maela Ostrund."),
]
PARAPHRASE = "Tell me who constructed the Velkaran Bridge."  # in no training pair
FACT_ANSWER = "Ostrund"

# Small and quick for 2 cores: the fact is learned in about 6 steps of these.
FACT_SETTINGS = TrainSettings(rank=8, alpha=16, dropout=0.0, learning_rate=2e-3, max_steps=16, batch_size=4,
                              seq_len=96, warmup_steps=2, eval_every=8, checkpoint_every=8, seed=0)
TINY_SETTINGS = TrainSettings(rank=4, alpha=8, dropout=0.0, learning_rate=1e-3, max_steps=8, batch_size=2,
                              seq_len=64, warmup_steps=0, eval_every=100, checkpoint_every=2, seed=0)
THREADS = 2


def drain(events):
    """(everything a generator yielded, what it returned)."""
    seen = []
    while True:
        try:
            seen.append(next(events))
        except StopIteration as done:
            return seen, done.value


def tiny_dataset():
    return build_dataset("qa", qa_examples(FACT_PAIRS), held_out_fraction=0.25, seed=0)


def share_dense_copy(home: Path, finetune_session) -> None:
    """Give a test's EMBER_HOME the session's dense copy of SmolLM2 (a link: no 20 s conversion per test)."""
    target = dense_cache(EmberPaths(home), finetune_session["sha256"])
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.symlink(finetune_session["dense"], target, target_is_directory=True)


@pytest.fixture(scope="session")
def finetune_session(smollm2_path, tmp_path_factory):
    """A session home whose plan of the tiny dataset made the dense copy of SmolLM2 (and measured a plan)."""
    from engine.finetune.job import new_job
    from engine.library.hashing import sha256_of

    home = tmp_path_factory.mktemp("finetune-home")
    paths = EmberPaths(home).ensure()
    sha = sha256_of(smollm2_path)
    _, job = drain(new_job(paths, smollm2_path, tiny_dataset(), TINY_SETTINGS, threads=THREADS, base_sha256=sha))
    events, plan = drain(job.plan())
    return {"home": home, "paths": paths, "sha256": sha, "dense": dense_cache(paths, sha), "plan": plan,
            "plan_events": events, "job": job}


@pytest.fixture
def shared_dense(ember_home, finetune_session):
    share_dense_copy(ember_home, finetune_session)
    return finetune_session


@pytest.fixture(scope="session")
def fact_adapter(finetune_session, shared_host, smollm2_path, tmp_path_factory):
    """The whole round trip on the invented fact: document → passages → drafted and reviewed pairs → plan →
    train → GGUF adapter → self-test. Shared: training is the slow part."""
    from engine.finetune.pipeline import fine_tune
    from engine.finetune.qa_writer import write_qa_pairs
    from engine.finetune.sources import read_text_files

    folder = tmp_path_factory.mktemp("fact-docs")
    (folder / "velkaran.md").write_text(FACT_DOCUMENT, encoding="utf-8")
    passages = read_text_files([folder]).passages
    _, drafted = drain(write_qa_pairs(shared_host.client(), passages, per_passage=3, max_tokens=160))
    reviewed = drafted + FACT_PAIRS  # the user kept the draft and added paraphrases of the key fact
    dataset = build_dataset("qa", qa_examples(reviewed), held_out_fraction=0.15, general_fraction=0.2, seed=0)
    events, trip = drain(fine_tune(finetune_session["paths"], smollm2_path, dataset, FACT_SETTINGS,
                                   probes=[PARAPHRASE], threads=THREADS, name="velkaran"))
    return {"trip": trip, "events": events, "passages": passages, "drafted": drafted, "dataset": dataset,
            "paths": finetune_session["paths"]}
