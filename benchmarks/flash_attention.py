"""Flash attention on the CPU, on and off, by how much context is already there: llama.cpp's own
`llama-bench` (benchmarks/llama_bench.py) generating tokens and reading a short follow-up message (a
chat turn's new tokens) after 0 to 2048 tokens of context. It is why Ember turns flash attention on
only where layers run on a GPU (engine/runtime/supervisor.flash_attention_used): on the CPU the
flash kernel is a little faster in an almost empty context and falls far behind as the chat grows.

    python benchmarks/llama_bench.py --build        # once (minutes)
    python benchmarks/flash_attention.py [--model PATH] [--threads 1 2] [--runs 3]
    python benchmarks/flash_attention.py --smoke    # tiny budget, for CI (nothing if llama-bench is not built)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.paths import starter_model  # noqa: E402

DEPTHS = (0, 128, 512, 1024, 2048)
TURN_TOKENS = 24  # a follow-up message with its template: what one chat turn reads before answering


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32, help="tokens generated per run")
    parser.add_argument("--smoke", action="store_true", help="tiny budget (CI)")
    args = parser.parse_args()
    depths = DEPTHS
    if args.smoke:
        args.threads, args.runs, args.tokens, depths = [1], 1, 4, (0, 256)
    import llama_bench  # beside this script

    if llama_bench.built() is None:
        print("summary: llama-bench is not built (benchmarks/llama_bench.py --build); nothing measured")
        return 0
    model = args.model or str(starter_model())
    print(f"model: {Path(model).name}   runs: {args.runs} (llama-bench's averages)   "
          f"generation: {args.tokens} tokens   a turn: {TURN_TOKENS} tokens read at once")
    print(f"{'threads':>7} {'what':>10} " + " ".join(f"{'depth ' + str(d):>11}" for d in depths))
    worst = None
    for threads in args.threads:
        for what, shape in (("generate", {"gen": args.tokens}), ("read turn", {"prompt": TURN_TOKENS})):
            measured = {flash: llama_bench.rates(model, threads, depths=depths, runs=args.runs, flash_attn=flash,
                                                 **shape) for flash in (False, True)}
            for flash in (False, True):
                cells = " ".join(f"{measured[flash][d]:>11.1f}" for d in depths)
                print(f"{threads:>7} {what:>10} {'fa on ' if flash else 'fa off'} {cells}   tokens/s")
            ratios = [measured[True][d] / measured[False][d] for d in depths]
            print(f"{'':>7} {'':>10} {'on/off':>6} " + " ".join(f"{r:>11.2f}" for r in ratios))
            if worst is None or ratios[-1] < worst[0]:
                worst = (ratios[-1], threads, what)
    print(f"summary: flash attention on/off at {depths[-1]} tokens of context: {worst[0]:.2f} at worst "
          f"({worst[2]}, {worst[1]} thread(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
