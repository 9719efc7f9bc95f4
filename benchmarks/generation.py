"""Generation speed against the ceiling: llama.cpp's own `llama-bench` (tg, built from the llama.cpp that
this llama-cpp-python release vendors: benchmarks/llama_bench.py), Ember's full path (host process +
HTTP stream + client, as the app uses it), the host's OpenAI-compatible route through the official
`openai` client, llama.cpp's own `llama-server` through the same client with the same sampling (the
native yardstick for a whole streamed reply, which llama-bench is not: it never samples, makes no
text and hands nothing on), and llama-cpp-python in-process; same model, threads, token count and flash
attention (off, as Ember's model process runs the CPU: benchmarks/flash_attention.py), side by side
in one run, medians of the runs. llama-bench starts at the depth of Ember's prompt (its -d), so
both read the same number of cached tokens for every new one. A decode-only column (llama.cpp's
decodes driven from Python, no sampling, no text) and a loop column (Ember's generation loop in this
process: sampling, text and stop strings, no HTTP, no client) split the gap into what driving
llama.cpp from Python costs, what the loop adds and what handing the text on adds. Also: time to
first token on turn 1 vs turn 10 of one conversation (KV cache reuse), and the CPU that handing a reply on costs
(the host's event-loop thread and the client, per batch of text): a steadier figure than a speed ratio
on a busy machine, and on a 2-core one it is taken from llama.cpp's threads. Ember's own route writes
its batches from the generating thread (engine/runtime/stream_server.py), so there the event loop's
share is near nothing and the writes themselves (one `send` a batch) are not counted.

    python benchmarks/llama_bench.py --build      # once (minutes): the ceiling
    python benchmarks/generation.py [--model PATH] [--threads 1 2] [--runs 5] [--tokens 128]
    python benchmarks/generation.py --smoke       # tiny budget, for CI (llama-bench only if built)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.paths import starter_model  # noqa: E402
from engine.runtime.generation import run_generation  # noqa: E402
from engine.runtime.native_loop import Decoder, feed_prompt  # noqa: E402
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


def decode_only_rate(llama, depth: int, tokens: int, seed: int) -> float:
    """Tokens/s of llama.cpp's one-token decodes alone, driven from Python after `depth` prompt tokens,
    random tokens as llama-bench feeds: Ember's loop less sampling, text and the stream."""
    feed_prompt(llama, [llama.token_bos()] + [llama.token_eos()] * (depth - 1))
    decoder = Decoder(llama)
    draw = random.Random(seed)
    try:
        started = time.perf_counter()
        for _ in range(tokens):
            decoder.feed(draw.randrange(llama.n_vocab()))
        return tokens / (time.perf_counter() - started)
    finally:
        decoder.close()


def loop_rate(llama, renderer, tokens: int, seed: int) -> float:
    """Decode tokens/s of Ember's generation loop run here, as the model process runs it, first to last
    token by the loop's own clock: everything the full path does except the HTTP stream and the client."""
    done = []
    body = {"messages": PROMPT, "sampling": Sampling(max_tokens=tokens, temperature=0.7, seed=seed).to_dict()}
    run_generation(llama, renderer, body, lambda event: done.append(event.get("done")), lambda: False)
    return done[-1]["tokens_per_s"] or 0.0


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
    """Decode tokens/s of the host's /v1/chat/completions streamed through the official openai client."""
    return _streamed_rate(_openai_client(host.port, host.token), tokens, seed)


def server_rate(port: int, tokens: int, seed: int) -> float:
    """As `openai_rate`, from llama.cpp's own llama-server, told the sampling Ember's routes default to
    (top-k 40, min-p 0.05, repeat penalty 1.1 over the last 64 tokens; its own defaults differ)."""
    return _streamed_rate(_openai_client(port, "none"), tokens, seed,
                          {"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1, "repeat_last_n": 64})


def _streamed_rate(client, tokens: int, seed: int, extra_body: dict | None = None) -> float:
    """The reply's completion tokens (its usage) over the first-to-last arrival of text (a chunk carries
    what the server handed on at once, often several tokens); temperature 0.7, top-p 0.95."""
    first = last = None
    count = 0
    for chunk in client.chat.completions.create(model="m", messages=PROMPT, stream=True, max_tokens=tokens,
                                                temperature=0.7, seed=seed, top_p=0.95,
                                                stream_options={"include_usage": True}, extra_body=extra_body):
        if chunk.usage is not None:
            count = chunk.usage.completion_tokens
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            first = first or now
            last = now
    return (count - 1) / (last - first) if count > 1 and last > first else 0.0


@functools.cache
def _openai_client(port: int, token: str):
    """One client per host, as a program would keep it (making one is not part of a reply's cost)."""
    import openai

    return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=token, max_retries=0)


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


def host_loop_seconds(host) -> float | None:
    """CPU seconds of the model process's main thread, where its asyncio HTTP server runs (Linux; None
    elsewhere): with the client's, the work of handing a reply on, which is per batch of text, not per token."""
    try:
        return int(Path(f"/proc/{host.pid}/task/{host.pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, TypeError):
        return None


def with_serving_cpu(host, stream, spent: list[float]):
    """`stream` (a rate function) that also adds to `spent` the milliseconds of CPU its reply cost the
    host's event-loop thread and this process (the client)."""
    def measured(run: int) -> float:
        loop_before, client_before = host_loop_seconds(host), time.process_time()
        rate = stream(run)
        loop_after = host_loop_seconds(host)
        if loop_before is not None and loop_after is not None:
            spent.append((loop_after - loop_before + time.process_time() - client_before) * 1000)
        return rate
    return measured


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
    parser.add_argument("--smoke", action="store_true", help="tiny budget (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.threads, args.runs, args.tokens = [1], 1, 16
    model = args.model or str(starter_model())
    import llama_bench  # beside this script

    ceiling = llama_bench.built() is not None
    load_before = os.getloadavg()
    busy_before, own_before, wall_before = busy_seconds(), own_seconds(), time.perf_counter()
    rows = [measure_threads(model, threads, args, ceiling) for threads in args.threads]

    print(f"model: {Path(model).name}   tokens/run: {args.tokens}   runs: {args.runs} (medians)   "
          f"flash attention: off   cores: {os.cpu_count()}")
    print("load average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}   after: {:.2f} {:.2f} {:.2f}".format(
        *load_before, *os.getloadavg()))
    busy_after = busy_seconds()
    if busy_before is not None and busy_after is not None:
        others = (busy_after - busy_before) - (own_seconds() - own_before)
        print(f"other processes kept {max(others, 0.0) / (time.perf_counter() - wall_before):.2f} of "
              f"{os.cpu_count()} cores busy during the run (the fewer, the truer the figures)")
    print("rates: medians of the runs; ratios: medians of each run's rate over llama-bench's in the same round")
    print(f"{'threads':>7} {'depth':>5} {'llama-bench':>11} {'decode':>7} {'/bench':>7} {'loop':>7} {'/bench':>7} "
          f"{'ember':>7} {'/bench':>7} "
          f"{'openai':>7} {'/bench':>7} {'server':>7} {'/bench':>7} {'in-proc':>7} {'/bench':>7} "
          f"{'TTFT t1 ms':>10} {'t10 ms':>7}")
    med = statistics.median
    for threads, depth, r, t1, t10, _ in rows:
        b = r.get("bench", [])
        cells = " ".join(f"{med(r[name]):>7.1f} {_ratio(r[name], b)}" if name in r else f"{'-':>7} {'-':>7}"
                         for name in ("decode", "loop", "ember", "openai", "server", "inproc"))
        print(f"{threads:>7} {depth:>5} {med(b) if b else 0:>11.1f} {cells} {t1 * 1000:>10.1f} {t10 * 1000:>7.1f}")
        if b and len(b) >= 4:
            print(f"{'':>7} spread of Ember's full path / llama-bench, run by run: quartiles "
                  f"{_spread(r['ember'], b)} (a difference inside it is this machine's noise)")
        if "server" in r:
            print(f"{'':>7} against llama-server, run by run: Ember's full path {_paired(r['ember'], r['server']):.3f}, "
                  f"OpenAI route {_paired(r['openai'], r['server']):.3f}")
    for threads, *_, serving in rows:
        if all(serving.values()):
            print(f"CPU to hand a reply on ({threads} thread(s); the host's event loop + the client, per reply, medians): "
                  f"ember {med(serving['ember']):.1f} ms, openai route {med(serving['openai']):.1f} ms")
    ttft = max(r[4] / r[3] for r in rows)
    if ceiling:
        worst = min(rows, key=lambda r: _paired(r[2]["ember"], r[2]["bench"]))
        worst_route = min(rows, key=lambda r: _paired(r[2]["openai"], r[2]["bench"]))
        print(f"summary: ember/llama-bench {_paired(worst[2]['ember'], worst[2]['bench']):.3f} at worst "
              f"({worst[0]} thread(s)); openai route/llama-bench "
              f"{_paired(worst_route[2]['openai'], worst_route[2]['bench']):.3f} at worst "
              f"({worst_route[0]} thread(s)); turn-10 TTFT = {ttft:.2f}x turn 1")
        if all("server" in r[2] for r in rows):
            native = min(rows, key=lambda r: _paired(r[2]["ember"], r[2]["server"]))
            print(f"summary: ember/llama-server {_paired(native[2]['ember'], native[2]['server']):.3f} at worst "
                  f"({native[0]} thread(s)); llama-server/llama-bench "
                  f"{min(_paired(r[2]['server'], r[2]['bench']) for r in rows):.3f} at worst")
    else:
        worst = min(rows, key=lambda r: _paired(r[2]["ember"], r[2]["inproc"]))
        print(f"summary: llama-bench not built (benchmarks/llama_bench.py --build); ember/in-process "
              f"{_paired(worst[2]['ember'], worst[2]['inproc']):.3f} at worst; turn-10 TTFT = {ttft:.2f}x turn 1")
    return 0


def measure_threads(model: str, threads: int, args, ceiling: bool):
    """One row: (threads, depth, {column: rates of the runs}, TTFT turn 1, TTFT turn 10,
    {route: CPU ms per reply to hand it on})."""
    import llama_bench
    from llama_cpp import Llama

    from engine.runtime.templates import choose_renderer

    llama = Llama(model, n_ctx=args.ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
    renderer = choose_renderer(llama, None)
    host = RuntimeHost(HostSettings(model, context_length=args.ctx, gpu_layers=0, threads=threads,
                                    flash_attention=False))
    host.start_blocking()
    native = contextlib.ExitStack()
    try:
        server_port = (native.enter_context(llama_bench.serve(model, threads, args.ctx))
                       if llama_bench.built("llama-server") else None)
        client = host.client()
        depth = prompt_tokens(client)
        serving = {"ember": [], "openai": []}
        measure = {
            "bench": lambda run: llama_bench.tg_rate(model, threads, args.tokens, runs=1, depth=depth),
            "decode": lambda run: decode_only_rate(llama, depth, args.tokens, run),
            "loop": lambda run: loop_rate(llama, renderer, args.tokens, 100 + run),
            "ember": with_serving_cpu(host, lambda run: ember_rate(client, args.tokens, 100 + run), serving["ember"]),
            "openai": with_serving_cpu(host, lambda run: openai_rate(host, args.tokens, 100 + run), serving["openai"]),
            "server": lambda run: server_rate(server_port, args.tokens, 100 + run),
            "inproc": lambda run: in_process_rate(llama, args.tokens, 100 + run),
        }
        if not ceiling:
            del measure["bench"]
        if server_port is None:
            del measure["server"]
        for name, rate in measure.items():  # warm each of them once
            if name != "bench":
                rate(0)
        for spent in serving.values():
            spent.clear()
        rates = {name: [] for name in measure}
        order = list(measure)
        for run in range(args.runs):  # interleaved, each first in turn: a busy moment, or caches left
            for name in order:        # cold by another process, weigh on them all alike
                rates[name].append(measure[name](run))
            order = order[1:] + order[:1]
        pairs = [ttft_turns(client, 3 if args.smoke else 10, run) for run in range(args.runs)]
    finally:
        native.close()
        host.stop()
        llama.close()
    return (threads, depth, rates, statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs),
            serving)


def prompt_tokens(client) -> int:
    """How many tokens Ember's rendered prompt has (the depth llama-bench starts at)."""
    for event in client.stream_chat(PROMPT, Sampling(max_tokens=1, temperature=0.0)):
        if event.stats:
            return event.stats.prompt_tokens
    raise RuntimeError("the host sent no stats")


def _run_ratios(rates: list[float], ceilings: list[float]) -> list[float]:
    """Each run's rate over the ceiling measured just before it (a busy moment of a shared machine then
    weighs on both sides of one ratio)."""
    return [rate / ceiling for rate, ceiling in zip(rates, ceilings, strict=True)]


def _paired(rates: list[float], ceilings: list[float]) -> float:
    """The median of the run-by-run ratios."""
    return statistics.median(_run_ratios(rates, ceilings))


def _spread(rates: list[float], ceilings: list[float]) -> str:
    """The lower and upper quartiles of the run-by-run ratios."""
    low, _, high = statistics.quantiles(_run_ratios(rates, ceilings), n=4)
    return f"{low:.3f} to {high:.3f}"


def _ratio(rates: list[float], ceilings: list[float]) -> str:
    return f"{_paired(rates, ceilings):>7.3f}" if ceilings else f"{'-':>7}"


if __name__ == "__main__":
    sys.exit(main())
