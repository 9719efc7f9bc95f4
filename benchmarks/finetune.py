"""Fine-tune: Ember's job against a plain transformers + peft loop, the plan against the run, the round trip.

- Speed: seconds per step and tokens/s of Ember's trainer child (the job, with its events, checkpoints
  and evaluation off) and of a plain loop in its own process (the same dense model, the same
  tokenized examples and batches, the same LoRA settings, optimizer and threads). Medians, the first
  step of each left out. Target: Ember / plain ≤ 1.05.
- The plan: its predicted peak memory (the estimate) and step time against what the run measured.
- The round trip of the test fact: a document and its reviewed pairs → plan → train → GGUF adapter →
  self-test → llama.cpp with the adapter answers a paraphrased question (tests/support/finetune_fixtures).

    python benchmarks/finetune.py [--steps 20] [--threads N]
    python benchmarks/finetune.py --smoke      # a few steps, for CI
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.finetune.dataset import build_dataset, qa_examples  # noqa: E402
from engine.finetune.events import TrainStep  # noqa: E402
from engine.finetune.job import new_job  # noqa: E402
from engine.finetune.pipeline import fine_tune  # noqa: E402
from engine.finetune.settings import TrainSettings  # noqa: E402
from engine.paths import EmberPaths, starter_model  # noqa: E402
from engine.progress_text import human_size  # noqa: E402
from engine.runtime.hardware import default_threads  # noqa: E402
from engine.runtime.sampling import Sampling  # noqa: E402
from engine.runtime.supervisor import HostSettings, RuntimeHost  # noqa: E402
from tests.support.finetune_fixtures import FACT_ANSWER, FACT_PAIRS, FACT_SETTINGS, PARAPHRASE  # noqa: E402

# The speed comparison: the setting (rank 16 on every projection, batch 4), 128-token examples.
SPEED = TrainSettings(rank=16, alpha=32, dropout=0.0, learning_rate=2e-4, batch_size=4, seq_len=128,
                      warmup_steps=0, eval_every=10_000, checkpoint_every=10_000, seed=0)
FILLER = (" The bridge has three stone arches, a paved road for carts and a footpath on each side, and it was "
          "repaired after the great flood.")


def drain(events):
    seen = []
    while True:
        try:
            seen.append(next(events))
        except StopIteration as done:
            return seen, done.value


def speed_dataset():
    """The fact pairs with answers long enough that each example fills about 128 tokens."""
    pairs = [(q, a + FILLER * 2) for q, a in FACT_PAIRS]
    return build_dataset("qa", qa_examples(pairs), held_out_fraction=0.0)


def plain_loop(request: dict) -> dict:
    """The baseline, in its own process: transformers + peft, nothing else."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from engine.finetune.dataset import Dataset
    from engine.finetune.trainer import data
    from engine.finetune.trainer.model import load_tokenizer

    torch.set_num_threads(request["threads"])
    settings = TrainSettings.from_dict(request["settings"])
    tokenizer = load_tokenizer(Path(request["dense"]))
    train, _, _ = data.tokenize_all(tokenizer, Dataset.read(Path(request["dataset"]), "qa").train, settings.seq_len)
    model = AutoModelForCausalLM.from_pretrained(request["dense"], dtype=torch.float32)
    torch.manual_seed(settings.seed)
    model = get_peft_model(model, LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout, bias="none",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate)
    model.train()
    times, tokens = [], []
    for step in range(request["steps"]):
        batch = [train[i] for i in data.step_indices(len(train), settings.seed, step, settings.batch_size)]
        inputs = data.collate(batch, tokenizer.pad_token_id, "cpu")
        started = time.perf_counter()
        model(**inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
        tokens.append(int(inputs["attention_mask"].sum()))
    return {"times": times, "tokens": tokens}


def ember_job(paths: EmberPaths, model: Path, steps: int, threads: int) -> dict:
    settings = TrainSettings.from_dict({**SPEED.to_dict(), "max_steps": steps})
    _, job = drain(new_job(paths, model, speed_dataset(), settings, threads=threads, name="speed"))
    _, plan = drain(job.plan())
    events, result = drain(job.train())
    steps_seen = [e for e in events if isinstance(e, TrainStep)]
    return {"job": job, "plan": plan, "times": [e.step_s for e in steps_seen],
            "tokens_per_s": [e.tokens_per_s for e in steps_seen], "peak": max(e.memory_bytes or 0 for e in steps_seen),
            "result": result}


def round_trip(paths: EmberPaths, model: Path, steps: int, threads: int, folder: Path) -> dict:
    (folder / "velkaran.md").write_text("The Velkaran Bridge was built in 1847 by the engineer Maela Ostrund.",
                                        encoding="utf-8")
    started = time.perf_counter()
    dataset = build_dataset("qa", qa_examples(FACT_PAIRS), held_out_fraction=0.15, general_fraction=0.2)
    settings = TrainSettings.from_dict({**FACT_SETTINGS.to_dict(), "max_steps": steps})
    _, trip = drain(fine_tune(paths, model, dataset, settings, probes=[PARAPHRASE], threads=threads, name="fact"))
    with RuntimeHost(HostSettings(model_path=str(model), context_length=512, gpu_layers=0, threads=threads,
                                  lora_path=str(trip.adapter.gguf))) as host:
        answer = "".join(e.text for e in host.client().stream_chat(
            [{"role": "user", "content": PARAPHRASE}], Sampling(temperature=0.0, max_tokens=40)) if not e.stats)
    return {"seconds": time.perf_counter() - started, "train_s": trip.result.seconds, "answer": answer,
            "knows": FACT_ANSWER in answer, "self_test": trip.report.passed,
            "failed": [line for line in trip.report.lines() if line.startswith("FAIL")]}


def median_after_first(values: list[float]) -> float:
    return statistics.median(values[1:] if len(values) > 1 else values)  # --smoke: 2 steps, the second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--fact-steps", type=int, default=FACT_SETTINGS.max_steps)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--smoke", action="store_true", help="a few steps (CI)")
    parser.add_argument("--baseline-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_worker:
        print(json.dumps(plain_loop(json.loads(Path(args.baseline_worker).read_text()))))
        return 0
    steps, fact_steps = (2, 1) if args.smoke else (args.steps, args.fact_steps)
    model = starter_model()
    with tempfile.TemporaryDirectory(prefix="ember-bench-finetune-") as tmp:
        os.environ["EMBER_HOME"] = str(Path(tmp) / "home")
        paths = EmberPaths.from_env().ensure()
        ember = ember_job(paths, model, steps, args.threads)
        job = ember["job"]
        request = Path(tmp) / "baseline.json"
        request.write_text(json.dumps({"dense": job.config["dense_cache"], "dataset": str(job.folder.dataset),
                                       "settings": job.config["settings"], "steps": steps, "threads": args.threads}))
        baseline = subprocess.run([sys.executable, __file__, "--baseline-worker", str(request)], capture_output=True,
                                  text=True, check=True)
        plain = json.loads(baseline.stdout.strip().splitlines()[-1])
        trip = round_trip(paths, model, fact_steps, args.threads, Path(tmp))
    plan = ember["plan"]
    ember_step, plain_step = median_after_first(ember["times"]), median_after_first(plain["times"])
    ember_rate = median_after_first(ember["tokens_per_s"])
    plain_rate = median_after_first([t / s for t, s in zip(plain["tokens"], plain["times"], strict=True)])
    ratio = ember_step / plain_step
    print(f"SmolLM2-135M Q4_1, LoRA r={SPEED.rank} on all projections, batch {SPEED.batch_size} × ~{SPEED.seq_len} "
          f"tokens, fp32, {args.threads} threads, {steps} steps (median after the first)\n")
    print(f"{'':28} {'Ember job':>12} {'plain loop':>12} {'ratio':>8}")
    print(f"{'seconds per step':28} {ember_step:12.2f} {plain_step:12.2f} {ratio:8.2f}")
    print(f"{'tokens per second':28} {ember_rate:12.0f} {plain_rate:12.0f} {ember_rate / plain_rate:8.2f}")
    print()
    print(f"{'':28} {'predicted':>12} {'measured':>12}")
    print(f"{'seconds per step (plan)':28} {plan.step_s:12.2f} {ember_step:12.2f}")
    print(f"{'peak memory':28} {human_size(plan.memory.total):>12} {human_size(ember['peak']):>12}"
          f"   (the plan's own measured peak: {human_size(plan.measured_peak or 0)})")
    print()
    print(f"round trip of the test fact ({fact_steps} steps): {trip['seconds']:.0f} s in all, training "
          f"{trip['train_s']:.0f} s; self-test {'passed' if trip['self_test'] else 'FAILED'}; "
          f"the adapter's answer: {trip['answer']!r}")
    for line in trip["failed"]:
        print(f"  {line}")
    print(f"\nsummary: Ember/plain seconds per step {ratio:.2f} (target ≤ 1.05), plan step time "
          f"{plan.step_s:.2f} s vs {ember_step:.2f} s measured, peak {human_size(plan.memory.total)} predicted vs "
          f"{human_size(ember['peak'])} measured, round trip {trip['seconds']:.0f} s, fact learned: "
          f"{'yes' if trip['knows'] else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
