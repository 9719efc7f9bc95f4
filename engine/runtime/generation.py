"""Ember's generation loop: one reply, for Ember's route and the host's /v1/chat/completions alike.

Per token it does only what it must: sample (llama.cpp's sampler chain and one-token decodes,
native_loop.py; no logits in Python), test end-of-generation, turn the token into bytes, decode UTF-8
incrementally and check stop strings (holding back only what could still become one). Text is handed
on in batches of at least BATCH_S seconds, so the HTTP and JSON work is per batch, not per token. It
runs in its own thread and checks `should_stop` between tokens (and between llama.cpp's batches of a
long prompt), so a closed connection ends it after at most one token.
"""

from __future__ import annotations

import codecs
import random
import time
from collections.abc import Callable

import llama_cpp
import numpy as np

from engine.runtime.native_loop import PieceReader, SamplerChain, feed_prompt, sample_tokens
from engine.runtime.sampling import Sampling

# About 30 batches a second: text still flows smoothly to a reader (the Chat page gathers what
# arrives into frames of its own, app/controllers/reply_controller.FRAME_MS), and it is half the HTTP,
# JSON and client work of 60. That work is per batch (an OpenAI client spends close to a millisecond
# on each chunk), and on a small machine it is taken from llama.cpp's own threads
# (benchmarks/generation.py prints it).
BATCH_S = 1 / 30


class StopMatcher:
    """Finds stop strings in streamed text, holding back only what could still become one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return (text safe to show, stopped)."""
        if not self.stops:
            return text, False
        self.pending += text
        cut = min((i for i in (self.pending.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self.pending = self.pending[:cut], ""
            return out, True
        hold = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self.pending)), hold, -1):
                if self.pending.endswith(stop[:size]):
                    hold = size
                    break
        out = self.pending[: len(self.pending) - hold]
        self.pending = self.pending[len(out):]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


def cached_prefix(llama, tokens: list[int]) -> int:
    """How many prompt tokens native_loop.feed_prompt will take from the KV cache (the same prefix match)."""
    if llama.n_tokens == 0 or not tokens:
        return 0
    cached = np.asarray(llama._input_ids)
    n = min(len(cached), len(tokens))
    mismatch = np.nonzero(cached[:n] != np.asarray(tokens[:n], dtype=cached.dtype))[0]
    prefix = int(mismatch[0]) if mismatch.size else n
    return prefix - 1 if prefix == len(tokens) else prefix


def run_generation(llama, renderer, body: dict, emit: Callable[[dict], None], should_stop: Callable[[], bool]) -> None:
    """Render, tokenize and generate one reply, emitting {"start"}, then {"t": text, "n": tokens so far} batches, then {"done"}."""
    started = time.perf_counter()
    sampling = Sampling.from_dict(body.get("sampling"))  # its defaults are the only ones
    _, tokens, template_stops = render_prompt(llama, renderer, body["messages"])
    cached = cached_prefix(llama, tokens)
    n_ctx = llama.n_ctx()
    emit({"start": {"prompt_tokens": len(tokens), "cached_tokens": cached, "n_ctx": n_ctx,
                    "system_in_user": renderer.folds_system(body["messages"])}})
    if len(tokens) >= n_ctx:
        emit({"error": f"The prompt has {len(tokens)} tokens but the context holds {n_ctx}.",
              "kind": "context"})
        return

    stops = list(sampling.stop) + template_stops
    stop_ids = {ids[0] for ids in (llama.tokenize(s.encode(), add_bos=False, special=True) for s in stops)
                if len(ids) == 1}
    budget = min(sampling.max_tokens, n_ctx - len(tokens))
    seed = sampling.seed if sampling.seed is not None else random.randint(0, 2**31 - 1)
    if feed_prompt(llama, tokens, should_stop) is None:  # stopped while reading a long prompt
        emit({"done": {"stop_reason": "cancelled", "prompt_tokens": len(tokens), "cached_tokens": cached,
                       "completion_tokens": 0, "total_s": time.perf_counter() - started, "seed": seed}})
        return
    chain = SamplerChain(llama, temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p,
                         min_p=sampling.min_p, repeat_penalty=sampling.repeat_penalty, seed=seed,
                         frequency_penalty=float(body.get("frequency_penalty") or 0.0),
                         presence_penalty=float(body.get("presence_penalty") or 0.0))
    try:
        _stream(llama, chain, budget, stop_ids, StopMatcher(stops), emit, should_stop, started, len(tokens), cached,
                seed)
    finally:
        chain.close()


def _stream(llama, chain: SamplerChain, budget: int, stop_ids: set[int], matcher: StopMatcher,
            emit: Callable[[dict], None], should_stop: Callable[[], bool], started: float, prompt_tokens: int,
            cached: int, seed: int) -> None:
    """The per-token loop: as little as it can be."""
    vocab = llama._model.vocab
    piece = PieceReader(llama)
    is_eog = llama_cpp.llama_vocab_is_eog
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    batch: list[str] = []
    last_flush = 0.0
    first_token_at = last_token_at = None
    count = 0
    stop_reason = "length"
    for token in sample_tokens(llama, chain, budget):
        if should_stop():
            stop_reason = "cancelled"
            break
        if is_eog(vocab, token) or token in stop_ids:
            stop_reason = "stop"
            break
        now = time.perf_counter()
        if first_token_at is None:
            first_token_at = now
        last_token_at = now
        count += 1
        text, stopped = matcher.feed(decoder.decode(piece(token)))
        if text:
            batch.append(text)
        if stopped:
            stop_reason = "stop"
            break
        if batch and now - last_flush >= BATCH_S:
            emit({"t": "".join(batch), "n": count})
            batch.clear()
            last_flush = now
        if count >= budget:
            break
    if stop_reason != "stop":
        batch.append(matcher.flush() + decoder.decode(b"", final=True))
    if any(batch):
        emit({"t": "".join(batch), "n": count})
    gen_s = (last_token_at - first_token_at) if count > 1 else 0.0
    emit({"done": {
        "stop_reason": stop_reason,
        "prompt_tokens": prompt_tokens,
        "cached_tokens": cached,
        "completion_tokens": count,
        "ttft_s": (first_token_at - started) if first_token_at else None,
        "tokens_per_s": (count - 1) / gen_s if gen_s > 0 else None,
        "total_s": time.perf_counter() - started,
        "seed": seed,
    }})


def render_prompt(llama, renderer, messages: list[dict]) -> tuple[str, list[int], list[str]]:
    """(prompt text, the tokens llama.cpp evaluates, the template's stop strings) for these messages."""
    prompt, stops, has_bos = renderer.render(messages)
    return prompt, llama.tokenize(prompt.encode("utf-8"), add_bos=not has_bos, special=True), stops


def count_prompt_tokens(llama, renderer, messages: list[dict]) -> int:
    return len(render_prompt(llama, renderer, messages)[1])
