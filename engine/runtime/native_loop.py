"""Generation at llama.cpp's own speed: llama.cpp's sampler chain and one-token decodes called directly,
so that per token Python does only sample → feed the token back → hand it on.

`Llama.generate` (llama-cpp-python) spends about a millisecond and a half of Python per token
(building a batch in a Python loop, a sampler object per call, bookkeeping in numpy). Here the batch
is allocated once, the chain is built once per reply, and no logits reach Python. The cache
bookkeeping of the Llama object (`input_ids`, `n_tokens`) is kept exactly as llama-cpp-python keeps
it, so the next turn reuses the cached prompt prefix, and llama-cpp-python's own routes, which go
through `Llama.generate` (`/v1/completions`, and the chat requests Ember's loop leaves to it), use
the same loop where they can (`install`).

The sampler chain gives the tokens llama-cpp-python's gives (penalties, then greedy; or top-k,
typical, top-p, min-p, temperature and a seeded draw), so the same settings give the same tokens.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator, Sequence

import llama_cpp
import numpy as np

PIECE_BYTES = 256


class SamplerChain:
    """llama.cpp's sampler chain for one reply (freed with `close`).

    The penalties look up every candidate in the recent tokens, and on the whole vocabulary (49,152
    tokens for SmolLM2) that costs more than the rest of the chain together, about 0.15 ms a token
    (llama.h itself advises a top-k first). So where it changes nothing, a wider top-k goes first:
    penalties that only lower logits (repeat ≥ 1, frequency and presence ≥ 0) can push a token down
    past at most the `last_n` recent tokens, so the best `k` after them are among the best
    `k + last_n` before them, and the chain keeps exactly the tokens and order it kept before."""

    def __init__(self, llama, *, temperature: float, top_k: int, top_p: float, min_p: float, repeat_penalty: float,
                 seed: int, typical_p: float = 1.0, frequency_penalty: float = 0.0,
                 presence_penalty: float = 0.0) -> None:
        self.chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = lambda sampler: llama_cpp.llama_sampler_chain_add(self.chain, sampler)  # noqa: E731
        last_n = llama.last_n_tokens_size
        kept = 1 if temperature == 0.0 else top_k if temperature > 0.0 else 0  # the best k that decide
        only_lowers = repeat_penalty >= 1.0 and frequency_penalty >= 0.0 and presence_penalty >= 0.0
        if kept > 0 and only_lowers and last_n > 0:
            add(llama_cpp.llama_sampler_init_top_k(kept + last_n))
        add(llama_cpp.llama_sampler_init_penalties(llama.n_vocab(), last_n, repeat_penalty,
                                                   frequency_penalty, presence_penalty))
        if temperature < 0.0:
            add(llama_cpp.llama_sampler_init_dist(seed))
        elif temperature == 0.0:
            add(llama_cpp.llama_sampler_init_greedy())
        else:
            add(llama_cpp.llama_sampler_init_top_k(top_k))
            add(llama_cpp.llama_sampler_init_typical(typical_p, 1))
            add(llama_cpp.llama_sampler_init_top_p(top_p, 1))
            add(llama_cpp.llama_sampler_init_min_p(min_p, 1))
            add(llama_cpp.llama_sampler_init_temp(temperature))
            add(llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def close(self) -> None:
        if self.chain:
            llama_cpp.llama_sampler_free(self.chain)
            self.chain = None


def feed_prompt(llama, tokens: Sequence[int], should_stop: Callable[[], bool] | None = None) -> int | None:
    """Evaluate the prompt, reusing the longest prefix already in the KV cache (as Llama.generate does);
    returns how many prompt tokens came from the cache, or None when `should_stop` said so between two
    of llama.cpp's batches. The last prompt token is always evaluated, so its logits are fresh for the
    first sample.

    That last token is evaluated on its own, after the rest: a token's logits differ in the last bits
    between a many-token batch and a one-token one (llama.cpp picks other kernels), and a warm cache,
    as at a regenerate, always ends with a one-token evaluation. So the same conversation and seed give
    the same reply whether the prompt came from the cache or not (a greedy near-tie flipped otherwise),
    at the cost of one extra one-token decode when the prompt is not cached."""
    tokens = list(tokens)
    reuse = 0
    if llama.n_tokens > 0:
        cached = llama.input_ids[: llama.n_tokens]
        n = min(len(cached), len(tokens))
        differ = np.flatnonzero(cached[:n] != np.asarray(tokens[:n], dtype=cached.dtype))
        prefix = int(differ[0]) if differ.size else n
        reuse = prefix - 1 if prefix == len(tokens) else prefix
        if reuse > 0 and llama._ctx.kv_cache_seq_rm(-1, reuse, -1):
            llama.n_tokens = reuse
        else:
            reuse = 0
    if reuse == 0:
        llama.reset()
    rest = tokens[reuse:]
    head = rest[:-1]
    batches = [head[first:first + llama.n_batch] for first in range(0, len(head), llama.n_batch)]
    for batch in [*batches, rest[-1:]] if rest else []:
        if should_stop is not None and should_stop():
            return None
        llama.eval(batch)
    return reuse


class Decoder:
    """One-token decodes through a batch allocated once; keeps the Llama object's cache bookkeeping."""

    def __init__(self, llama) -> None:
        self.llama = llama
        self.ctx = llama._ctx.ctx
        self.batch = llama_cpp.llama_batch_init(1, 0, 1)
        self.batch.n_tokens = 1
        self.batch.n_seq_id[0] = 1
        self.batch.seq_id[0][0] = 0
        self.batch.logits[0] = True

    def feed(self, token: int) -> None:
        llama = self.llama
        position = llama.n_tokens
        self.batch.token[0] = token
        self.batch.pos[0] = position
        code = llama_cpp.llama_decode(self.ctx, self.batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code} at position {position}")
        llama.input_ids[position] = token
        llama.n_tokens = position + 1

    def close(self) -> None:
        if self.batch is not None:
            llama_cpp.llama_batch_free(self.batch)
            self.batch = None


def sample_tokens(llama, chain: SamplerChain, max_new: int) -> Iterator[int]:
    """Tokens from the evaluated prompt on, each fed back before the next is drawn. Stops after
    `max_new` tokens or when the consumer stops; a token handed on but not yet fed back is not
    in the cache (as with Llama.generate)."""
    decoder = Decoder(llama)
    sample, ctx, handle = llama_cpp.llama_sampler_sample, llama._ctx.ctx, chain.chain
    try:
        for produced in range(max_new):
            token = sample(handle, ctx, -1)
            yield token
            if produced + 1 < max_new:
                decoder.feed(token)
    finally:
        decoder.close()


class PieceReader:
    """A token's bytes (llama_token_to_piece into a buffer allocated once)."""

    def __init__(self, llama) -> None:
        self.vocab = llama._model.vocab
        self.buffer = ctypes.create_string_buffer(PIECE_BYTES)

    def __call__(self, token: int) -> bytes:
        n = llama_cpp.llama_token_to_piece(self.vocab, token, self.buffer, PIECE_BYTES, 0, False)
        if n < 0:  # a longer piece than the buffer: make room once
            self.buffer = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, self.buffer, -n, 0, False)
        return self.buffer.raw[:n]


# --- the OpenAI-compatible routes ----------------------------------------------------------------
def install(llama) -> None:
    """Make `llama.generate` (which create_completion and create_chat_completion call) run the native
    loop; what it cannot do (grammars, logits processors, mirostat, stopping criteria, logits of every
    token) goes to the original."""
    original = llama.generate

    def generate(tokens, top_k=40, top_p=0.95, min_p=0.05, typical_p=1.0, temp=0.80, repeat_penalty=1.0,
                 reset=True, frequency_penalty=0.0, presence_penalty=0.0, tfs_z=1.0, mirostat_mode=0,
                 mirostat_tau=5.0, mirostat_eta=0.1, penalize_nl=True, logits_processor=None,
                 stopping_criteria=None, grammar=None):
        if (grammar is not None or logits_processor is not None or stopping_criteria is not None or mirostat_mode
                or llama._logits_all or not reset):
            yield from original(tokens, top_k=top_k, top_p=top_p, min_p=min_p, typical_p=typical_p, temp=temp,
                                repeat_penalty=repeat_penalty, reset=reset, frequency_penalty=frequency_penalty,
                                presence_penalty=presence_penalty, tfs_z=tfs_z, mirostat_mode=mirostat_mode,
                                mirostat_tau=mirostat_tau, mirostat_eta=mirostat_eta, penalize_nl=penalize_nl,
                                logits_processor=logits_processor, stopping_criteria=stopping_criteria,
                                grammar=grammar)
            return
        feed_prompt(llama, tokens)
        chain = SamplerChain(llama, temperature=temp, top_k=top_k, top_p=top_p, min_p=min_p,
                             repeat_penalty=repeat_penalty, seed=llama._seed, typical_p=typical_p,
                             frequency_penalty=frequency_penalty, presence_penalty=presence_penalty)
        try:
            yield from sample_tokens(llama, chain, llama.n_ctx() - llama.n_tokens)
        finally:
            chain.close()

    llama.generate = generate
