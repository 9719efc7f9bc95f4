"""Generation speed against the ceiling: llama.cpp's own `llama-bench` (tg, built from the llama.cpp that
this llama-cpp-python release vendors: benchmarks/llama_bench.py), Ember's full path (host process +
HTTP stream + client, as the app uses it), the host's OpenAI-compatible route through the official
`openai` client, and llama-cpp-python in-process; same model, threads and token count, side by side
in one run, medians of the runs. Also: time to first token on turn 1 vs turn 10 of one conversation
(KV cache reuse).

    python benchmarks/llama_bench.py --build      # once (minutes): the ceiling
    python benchmarks/generation.py [--model PATH] [--threads 1 2] [--runs 5] [--tokens 128]
    python benchmarks/generation.py --smoke       # tiny budget, for CI (llama-bench only if built)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.paths import starter_model  # noqa: E402
from engine.runtime.sampling import Sampling  # noqa: E402
from engine.runtime.supervisor import HostSettings, RuntimeHost  # noqa: E402

PROMPT = [{"role": "user", "content": "Write a long, detailed story about a lighthouse keeper and a storm."}]


def in_process_rate(llama, tokens: int, seed: int) -> float:
    """Decode tokens/s of Llama.create_chat_completion streaming, first to last token."""
    first = last = None
    count = 0
    for chunk in llama.create_chat_completion(PROMPT, stream=True, max_tokens=tokens, temperature=0.7,
                                              seed=seed, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1):
        if chunk["choices"][0]["delta"].get("content"):
            now = time.perf_counter()
            first = first or now
            last = now
            count += 1
    return (count - 1) / (last - first) if count > 1 else 0.0


def ember_rate(client, tokens: int, seed: int) -> float:
    """Decode tokens/s as the app sees it: the host's count over the client's first-to-last arrival."""
    first = last = None
    stats = None
    for event in client.stream_chat(PROMPT, Sampling(max_tokens=tokens, temperature=0.7, seed=seed)):
        if event.stats:
            stats = event.stats
        elif event.text:
            now = time.perf_counter()
            first = first or now
            last = now
    n = stats.completion_tokens if stats else 0
    return (n - 1) / (last - first) if n > 1 and last > first else 0.0


def openai_rate(host, tokens: int, seed: int) -> float:
    """Decode tokens/s of /v1/chat/completions streamed through the official openai client: the
    reply's completion tokens (its usage) over the first-to-last arrival of text (a chunk carries
    what the loop handed on in one batch, often several tokens)."""
    import openai

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{host.port}/v1", api_key=host.token, max_retries=0)
    first = last = None
    count = 0
    for chunk in client.chat.completions.create(model="m", messages=PROMPT, stream=True, max_tokens=tokens,
                                                temperature=0.7, seed=seed, top_p=0.95,
                                                stream_options={"include_usage": True}):
        if chunk.usage is not None:
            count = chunk.usage.completion_tokens
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            first = first or now
            last = now
    return (count - 1) / (last - first) if count > 1 and last > first else 0.0


def busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux /proc/stat; None elsewhere)."""
    try:
        fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (hosts, llama-bench runs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def ttft_turns(client, turns: int, variant: int = 0) -> tuple[float, float]:
    """TTFT of turn 1 and of turn `turns` in one conversation (client side)."""
    messages = [{"role": "system", "content": f"You are helpful assistant number {variant}. Answer briefly."}]
    times = []
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Tell me one short fact about the number {turn + 7}."})
        text = []
        for event in client.stream_chat(messages, Sampling(max_tokens=48, temperature=0.0)):
            if event.stats:
                times.append(event.stats.ttft_s)
            else:
                text.append(event.text)
        messages.append({"role": "assistant", "content": "".join(text)})
    return times[0], times[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--flash-attn", action="store_true", help="flash attention on, for all of them")
    parser.add_argument("--smoke", action="store_true", help="tiny budget (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.threads, args.runs, args.tokens = [1], 1, 16
    model = args.model or str(starter_model())
    import llama_bench  # beside this script
    from llama_cpp import Llama

    ceiling = llama_bench.built() is not None
    load_before = os.getloadavg()
    busy_before, own_before, wall_before = busy_seconds(), own_seconds(), time.perf_counter()
    rows = []
    for threads in args.threads:
        llama = Llama(model, n_ctx=args.ctx, n_threads=threads, n_threads_batch=threads, flash_attn=args.flash_attn,
                      verbose=False)
        host = RuntimeHost(HostSettings(model, context_length=args.ctx, gpu_layers=0, threads=threads,
                                        flash_attention=args.flash_attn))
        host.start_blocking()
        try:
            client = host.client()
            in_process_rate(llama, 8, 0), ember_rate(client, 8, 0), openai_rate(host, 8, 0)  # warm them
            inproc, ember, routed, bench = [], [], [], []
            for run in range(args.runs):  # interleaved: a busy moment of the machine hits them all alike
                if ceiling:
                    bench.append(llama_bench.tg_rate(model, threads, args.tokens, runs=1,
                                                        flash_attn=args.flash_attn))
                ember.append(ember_rate(client, args.tokens, 100 + run))
                routed.append(openai_rate(host, args.tokens, 100 + run))
                inproc.append(in_process_rate(llama, args.tokens, 100 + run))
            pairs = [ttft_turns(client, 3 if args.smoke else 10, run) for run in range(args.runs)]
            turn1 = statistics.median(p[0] for p in pairs)
            turn10 = statistics.median(p[1] for p in pairs)
        finally:
            host.stop()
            llama.close()
        rows.append((threads, bench, ember, routed, inproc, turn1, turn10))

    print(f"model: {Path(model).name}   tokens/run: {args.tokens}   runs: {args.runs} (medians)   "
          f"flash attention: {'on' if args.flash_attn else 'off'}   cores: {os.cpu_count()}")
    print("load average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}   after: {:.2f} {:.2f} {:.2f}".format(
        *load_before, *os.getloadavg()))
    busy_after = busy_seconds()
    if busy_before is not None and busy_after is not None:
        others = (busy_after - busy_before) - (own_seconds() - own_before)
        print(f"other processes kept {max(others, 0.0) / (time.perf_counter() - wall_before):.2f} of "
              f"{os.cpu_count()} cores busy during the run (the fewer, the truer the figures)")
    print("rates: medians of the runs; ratios: medians of each run's rate over llama-bench's in the same round")
    print(f"{'threads':>7} {'llama-bench':>11} {'ember':>8} {'/bench':>7} {'openai':>8} {'/bench':>7} "
          f"{'in-proc':>8} {'/bench':>7} {'TTFT t1 ms':>11} {'t10 ms':>8}")
    med = statistics.median
    for threads, b, e, o, i, t1, t10 in rows:
        print(f"{threads:>7} {med(b) if b else 0:>11.1f} {med(e):>8.1f} {_ratio(e, b)} {med(o):>8.1f} "
              f"{_ratio(o, b)} {med(i):>8.1f} {_ratio(i, b)} {t1 * 1000:>11.1f} {t10 * 1000:>8.1f}")
    ttft = max(r[6] / r[5] for r in rows)
    if ceiling:
        worst = min(rows, key=lambda r: _paired(r[2], r[1]))
        worst_route = min(rows, key=lambda r: _paired(r[3], r[1]))
        print(f"summary: ember/llama-bench {_paired(worst[2], worst[1]):.3f} at worst ({worst[0]} thread(s)); "
              f"openai route/llama-bench {_paired(worst_route[3], worst_route[1]):.3f} at worst "
              f"({worst_route[0]} thread(s)); turn-10 TTFT = {ttft:.2f}x turn 1")
    else:
        worst = min(rows, key=lambda r: _paired(r[2], r[4]))
        print(f"summary: llama-bench not built (benchmarks/llama_bench.py --build); ember/in-process "
              f"{_paired(worst[2], worst[4]):.3f} at worst; turn-10 TTFT = {ttft:.2f}x turn 1")
    return 0


def _paired(rates: list[float], ceilings: list[float]) -> float:
    """The median of each run's rate over the ceiling measured just before it (a busy moment of a
    shared machine then weighs on both sides of one ratio)."""
    return statistics.median(rate / ceiling for rate, ceiling in zip(rates, ceilings, strict=True))


def _ratio(rates: list[float], ceilings: list[float]) -> str:
    return f"{_paired(rates, ceilings):>7.3f}" if ceilings else f"{'-':>7}"


if __name__ == "__main__":
    sys.exit(main())
