"""Ember's generation loop (generation.run_generation on native_loop.py) as both routes use it: stop
strings split across tokens are held back and cut, a cancel stops it within one token, a seed
reproduces, the second turn evaluates only its new tokens; and the host's /v1/chat/completions runs in
the same loop (what it cannot do goes on to llama-cpp-python's route)."""

from __future__ import annotations

import http.client
import json

import pytest

from engine.runtime import generation
from engine.runtime.generation import run_generation
from engine.runtime.native_loop import PieceReader, SamplerChain, feed_prompt, sample_tokens
from engine.runtime.openai_chat import FINGERPRINT
from engine.runtime.sampling import Sampling
from engine.runtime.templates import choose_renderer

pytestmark = pytest.mark.timeout(120)
POEM = [{"role": "user", "content": "Write a short poem about the sea."}]


@pytest.fixture(scope="module")
def model(smollm2_path):
    """An in-process model and its chat template, as the host has them."""
    from llama_cpp import Llama

    llama = Llama(str(smollm2_path), n_ctx=1024, n_threads=1, n_threads_batch=1, verbose=False)
    yield llama, choose_renderer(llama, None)
    llama.close()


def generate(model, messages, *, fresh=True, **sampling) -> tuple[list[dict], dict]:
    """(the text batches emitted, the done stats) of one reply; `fresh`: from an empty KV cache (a prompt
    read in another split of batches may differ in the last bits of its logits)."""
    llama, renderer = model
    if fresh:
        llama.reset()
    events: list[dict] = []
    run_generation(llama, renderer, {"messages": messages, "sampling": Sampling(**sampling).to_dict()},
                   events.append, lambda: False)
    assert "done" in events[-1], events[-1]
    return [e for e in events if "t" in e], events[-1]["done"]


def text_of(batches: list[dict]) -> str:
    return "".join(b["t"] for b in batches)


def test_a_stop_string_split_across_tokens_is_held_back_and_cut(model, monkeypatch):
    llama, renderer = model
    monkeypatch.setattr(generation, "BATCH_S", 0.0)  # every token handed on at once: nothing hides a leak
    tokens = generation.render_prompt(llama, renderer, POEM)[1]
    llama.reset()
    feed_prompt(llama, tokens)
    chain = SamplerChain(llama, temperature=0.0, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1, seed=0)
    try:
        pieces = [PieceReader(llama)(t).decode("utf-8", "replace") for t in sample_tokens(llama, chain, 30)]
    finally:
        chain.close()
    whole = "".join(pieces)

    def spanning(k: int) -> str:  # two characters of token k and two of token k + 1
        return pieces[k][-2:] + pieces[k + 1][:2]

    k = next(k for k in range(3, len(pieces) - 1)
             if all(len(p) >= 2 and p.isascii() for p in pieces[k:k + 2])
             and whole.find(spanning(k)) == len("".join(pieces[:k + 1])) - 2)  # its first occurrence
    stop = spanning(k)

    batches, done = generate(model, POEM, max_tokens=30, temperature=0.0, stop=(stop,))
    assert done["stop_reason"] == "stop"
    assert text_of(batches) == whole[:whole.find(stop)]  # nothing of the stop string was ever handed on


def test_a_cancel_stops_within_one_token(model, monkeypatch):
    monkeypatch.setattr(generation, "BATCH_S", 0.0)
    emitted: list[int] = []

    def should_stop() -> bool:
        return len(emitted) >= 3

    llama, renderer = model
    events: list[dict] = []

    def emit(event: dict) -> None:
        events.append(event)
        if "t" in event:
            emitted.append(event["n"])

    run_generation(llama, renderer, {"messages": POEM, "sampling": Sampling(max_tokens=200, seed=1).to_dict()},
                   emit, should_stop)
    done = events[-1]["done"]
    assert done["stop_reason"] == "cancelled"
    assert done["completion_tokens"] == 3  # the token drawn after the cancel is not counted or handed on


def test_a_seed_reproduces_and_another_seed_differs(model):
    first = text_of(generate(model, POEM, max_tokens=24, temperature=1.0, seed=42)[0])
    again = text_of(generate(model, POEM, max_tokens=24, temperature=1.0, seed=42)[0])
    other = text_of(generate(model, POEM, max_tokens=24, temperature=1.0, seed=43)[0])
    assert first == again
    assert first != other


def last_logits(llama):
    import llama_cpp
    import numpy as np

    pointer = llama_cpp.llama_get_logits_ith(llama._ctx.ctx, -1)
    return np.ctypeslib.as_array(pointer, shape=(llama.n_vocab(),)).copy()


def test_a_prompt_read_from_the_cache_gives_the_same_logits_and_replies_as_one_read_afresh(model):
    """A regenerate reads the prompt from the KV cache and evaluates only its last token: the first sample
    must see the very logits the first reply saw, so a greedy reply and a seeded one come back the same
    (read in one many-token batch, this prompt's logits differed in the last bits, and greedy picked
    another first word)."""
    llama, renderer = model
    colours = [{"role": "user", "content": "Name three colours."}]
    tokens = generation.render_prompt(llama, renderer, colours)[1]
    llama.reset()
    assert feed_prompt(llama, tokens) == 0
    afresh = last_logits(llama)
    assert feed_prompt(llama, tokens) == len(tokens) - 1  # from the cache, the last token read again
    assert (last_logits(llama) == afresh).all()
    for sampling in ({"temperature": 0.0, "repeat_penalty": 1.1}, {"temperature": 0.8, "seed": 4}):
        first, stats = generate(model, colours, max_tokens=24, **sampling)
        again, warm = generate(model, colours, fresh=False, max_tokens=24, **sampling)
        assert (stats["cached_tokens"], warm["cached_tokens"]) == (0, len(tokens) - 1)
        assert text_of(again) == text_of(first)


def test_the_second_turn_evaluates_only_its_new_tokens(model):
    llama, renderer = model
    llama.reset()
    messages = [{"role": "user", "content": "Name a colour."}]
    batches, first = generate(model, messages, max_tokens=12, temperature=0.0)
    assert first["cached_tokens"] == 0
    messages += [{"role": "assistant", "content": text_of(batches)}, {"role": "user", "content": "And another?"}]
    _, second = generate(model, messages, fresh=False, max_tokens=12, temperature=0.0)
    new = second["prompt_tokens"] - first["prompt_tokens"] - first["completion_tokens"]
    assert second["cached_tokens"] >= first["prompt_tokens"]
    assert second["prompt_tokens"] - second["cached_tokens"] <= new + 4, second  # the new turn, a token or two more


@pytest.mark.parametrize("temperature, seed, repeat_penalty", [(0.0, 0, 1.5), (1.0, 11, 1.5), (0.8, 4, 0.9)])
def test_strong_or_weak_penalties_give_llama_cpp_pythons_tokens(model, temperature, seed, repeat_penalty):
    """The wide top-k put before the penalties (only where they lower logits) keeps every token."""
    from itertools import islice

    llama, renderer = model
    tokens = generation.render_prompt(llama, renderer, [{"role": "user", "content": "Count from 1 to 30."}])[1]
    llama.reset()
    llama.set_seed(seed)
    expected = list(islice(llama.generate(tokens, top_k=40, top_p=0.95, min_p=0.05, temp=temperature,
                                          repeat_penalty=repeat_penalty), 48))
    llama.reset()
    feed_prompt(llama, tokens)
    chain = SamplerChain(llama, temperature=temperature, top_k=40, top_p=0.95, min_p=0.05,
                         repeat_penalty=repeat_penalty, seed=seed)
    try:
        assert list(sample_tokens(llama, chain, 48)) == expected
    finally:
        chain.close()


# --- the host's OpenAI-compatible route -------------------------------------------------------------------
def openai_client(host):
    import openai

    return openai.OpenAI(base_url=f"http://127.0.0.1:{host.port}/v1", api_key=host.token, max_retries=0)


def test_the_openai_route_streams_through_the_same_loop(shared_host):
    messages = [{"role": "user", "content": "Name three colours."}]
    ours = "".join(e.text for e in shared_host.client().stream_chat(
        messages, Sampling(max_tokens=20, temperature=0.0)) if not e.stats)
    chunks = list(openai_client(shared_host).chat.completions.create(
        model="smollm2", messages=messages, max_tokens=20, temperature=0.0, stream=True,
        stream_options={"include_usage": True}))
    assert {c.system_fingerprint for c in chunks} == {FINGERPRINT}  # every chunk made by Ember's loop
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ours
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 20 and chunks[-1].usage.prompt_tokens > 5
    whole = openai_client(shared_host).chat.completions.create(
        model="smollm2", messages=messages, max_tokens=20, temperature=0.0)
    assert whole.system_fingerprint == FINGERPRINT and whole.model == "smollm2"
    assert whole.choices[0].message.content == ours and whole.usage.completion_tokens == 20


def test_what_the_loop_does_not_do_goes_to_llama_cpp_python(shared_host):
    answer = openai_client(shared_host).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Say yes."}], max_tokens=4, temperature=0.0,
        logit_bias={"1": 0.5})
    assert answer.system_fingerprint is None and answer.choices[0].message.content  # its route, its reply


@pytest.mark.parametrize("body, status, says", [
    ({"messages": [{"role": "user", "content": "Hi"}], "temperature": 9}, 400, "temperature"),
    ({"messages": [{"role": "user", "content": "word " * 3000}]}, 400, "context"),
])
def test_the_openai_route_refuses_bad_requests_readably(shared_host, body, status, says):
    conn = http.client.HTTPConnection("127.0.0.1", shared_host.port, timeout=60)
    conn.request("POST", "/v1/chat/completions", json.dumps(body),
                 {"Authorization": f"Bearer {shared_host.token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    assert response.status == status
    assert says in data["error"]["message"]


def test_a_client_leaving_the_openai_stream_frees_the_model(shared_host):
    """The reply stops with the connection: the next request is served at once, not after 2000 tokens."""
    headers = {"Authorization": f"Bearer {shared_host.token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", shared_host.port, timeout=60)
    conn.request("POST", "/v1/chat/completions", json.dumps({
        "messages": [{"role": "user", "content": "Write a very long story."}], "stream": True, "max_tokens": 2000,
        "temperature": 3.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "seed": 1}), headers)  # noise: no early end
    response = conn.getresponse()
    lines = [response.readline() for _ in range(6)]
    assert all(line.startswith(b"data: {") or line == b"\n" for line in lines), lines
    conn.close()  # gone mid-reply
    answer = openai_client(shared_host).with_options(timeout=15.0).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Say hi."}], max_tokens=4)
    assert answer.choices[0].message.content
