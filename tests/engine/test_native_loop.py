"""The native generation loop gives the tokens llama-cpp-python gives for the same settings (greedy and
seeded), keeps the KV cache bookkeeping so the next turn reuses the prompt, and serves the OpenAI
route too: Ember's route and /v1/chat/completions answer alike. Multi-byte text split across tokens
comes out whole."""

from __future__ import annotations

from itertools import islice

import pytest

from engine.runtime.native_loop import PieceReader, SamplerChain, feed_prompt, install, sample_tokens
from engine.runtime.sampling import Sampling

pytestmark = pytest.mark.timeout(120)
PROMPT = "<|im_start|>user\nWrite a short poem about the sea.<|im_end|>\n<|im_start|>assistant\n"
N = 24


@pytest.fixture(scope="module")
def llama(smollm2_path):
    from llama_cpp import Llama

    model = Llama(str(smollm2_path), n_ctx=512, n_threads=1, n_threads_batch=1, verbose=False)
    yield model
    model.close()


def native(llama, tokens, *, temperature, seed=0, repeat_penalty=1.1):
    feed_prompt(llama, tokens)
    chain = SamplerChain(llama, temperature=temperature, top_k=40, top_p=0.95, min_p=0.05,
                         repeat_penalty=repeat_penalty, seed=seed)
    try:
        return list(sample_tokens(llama, chain, N))
    finally:
        chain.close()


def reference(llama, tokens, *, temperature, seed=0, repeat_penalty=1.1):
    llama.reset()
    llama.set_seed(seed)
    return list(islice(llama.generate(tokens, top_k=40, top_p=0.95, min_p=0.05, temp=temperature,
                                      repeat_penalty=repeat_penalty), N))


@pytest.mark.parametrize("temperature, seed", [(0.0, 0), (0.8, 7), (1.2, 123)])
def test_the_same_tokens_as_llama_cpp_python(llama, temperature, seed):
    tokens = llama.tokenize(PROMPT.encode(), add_bos=False, special=True)
    expected = reference(llama, tokens, temperature=temperature, seed=seed)
    llama.reset()
    assert native(llama, tokens, temperature=temperature, seed=seed) == expected
    llama.reset()
    assert native(llama, tokens, temperature=temperature, seed=seed) == expected  # a seed reproduces


def test_the_next_turn_reuses_the_cached_prompt(llama):
    tokens = llama.tokenize(PROMPT.encode(), add_bos=False, special=True)
    llama.reset()
    reply = native(llama, tokens, temperature=0.0)
    assert llama.n_tokens == len(tokens) + len(reply) - 1  # the last token is handed on, not yet fed back
    follow = tokens + reply + llama.tokenize(b"<|im_end|>\n<|im_start|>user\nAnd another?<|im_end|>\n",
                                             add_bos=False, special=True)
    assert feed_prompt(llama, follow) == len(tokens) + len(reply) - 1
    assert llama.n_tokens == len(follow)
    assert feed_prompt(llama, follow) == len(follow) - 1  # all cached: only the last is evaluated again


def test_multibyte_text_split_across_tokens_comes_out_whole(llama):
    import codecs

    text = "Grüße aus Zürich — 東京 🌊"
    pieces = PieceReader(llama)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    tokens = llama.tokenize(text.encode(), add_bos=False, special=False)
    assert any(len(pieces(t)) and not _whole_utf8(pieces(t)) for t in tokens)  # some tokens split a character
    assert "".join(decoder.decode(pieces(t)) for t in tokens) + decoder.decode(b"", final=True) == text


def _whole_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_the_installed_generate_is_the_native_loop_and_falls_back_for_grammars(llama):
    tokens = llama.tokenize(PROMPT.encode(), add_bos=False, special=True)
    expected = reference(llama, tokens, temperature=0.0)
    install(llama)
    try:
        llama.reset()
        assert list(islice(llama.generate(tokens, temp=0.0, repeat_penalty=1.1), N)) == expected
        from llama_cpp import LlamaGrammar

        digits = LlamaGrammar.from_string('root ::= [0-9]+', verbose=False)
        llama.reset()
        out = llama.detokenize(list(islice(llama.generate(tokens, temp=0.0, grammar=digits), 5))).decode()
        assert out.isdigit()  # the grammar path is llama-cpp-python's own
    finally:
        del llama.generate  # the class's method again


def test_ember_route_and_openai_route_answer_alike(shared_host):
    import openai

    messages = [{"role": "user", "content": "Name three colours."}]
    ours = "".join(e.text for e in shared_host.client().stream_chat(
        messages, Sampling(max_tokens=20, temperature=0.0, seed=1, repeat_penalty=1.1, top_k=40, top_p=0.95,
                           min_p=0.05)) if not e.stats)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{shared_host.port}/v1", api_key=shared_host.token,
                           max_retries=0)
    theirs = client.chat.completions.create(model="m", messages=messages, max_tokens=20, temperature=0.0,
                                            extra_body={"repeat_penalty": 1.1, "top_k": 40, "min_p": 0.05})
    assert theirs.choices[0].message.content.strip() == ours.strip()
