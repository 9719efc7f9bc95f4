"""Embeddings on a real model: all-MiniLM-L6-v2 converted to GGUF by engine.gguf.convert_bert, served by
a runtime host with role "embedding", checked against an independent numpy forward pass of the same weights."""

from __future__ import annotations

import http.client
import json
import threading
import time

import gguf
import numpy as np
import pytest

from engine.errors import Cancelled, HostStartFailed, InvalidInput, UnsupportedModel
from engine.gguf.convert_bert import convert_bert, read_vocab
from engine.gguf.reader import read_header
from engine.jobs import CancelToken
from engine.runtime.supervisor import HostSettings, RuntimeHost
from tests.support.numpy_bert import NumpyBert

pytestmark = pytest.mark.timeout(120)

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on stage.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Le café est très chaud ce matin, n'est-ce pas ?",
    "東京は日本の首都です。",
    "Hi",
]


@pytest.fixture(scope="session")
def reference(minilm_dir) -> NumpyBert:
    return NumpyBert(minilm_dir)


# --- the converter ------------------------------------------------------------------------------------

def test_converted_file_has_what_llamas_bert_loader_needs(minilm_gguf):
    meta = read_header(minilm_gguf).metadata
    assert meta["general.architecture"] == "bert"
    assert meta["bert.attention.causal"] is False
    assert meta["bert.pooling_type"] == gguf.PoolingType.MEAN
    assert (meta["bert.context_length"], meta["bert.embedding_length"], meta["bert.block_count"]) == (512, 384, 6)
    assert meta["tokenizer.ggml.model"] == "bert"
    assert (meta["tokenizer.ggml.bos_token_id"], meta["tokenizer.ggml.eos_token_id"]) == (101, 102)  # CLS, SEP
    tensors = {t.name: t for t in read_header(minilm_gguf).tensors}
    assert len(tensors) == 5 + 16 * 6  # embeddings + norm, 16 per layer; pooler and position_ids dropped
    assert tensors["blk.5.ffn_down.weight"].ggml_type == gguf.GGMLQuantizationType.F16
    assert tensors["position_embd.weight"].ggml_type == gguf.GGMLQuantizationType.F32


def test_a_cancelled_conversion_leaves_no_file(minilm_dir, tmp_path):
    cancel = CancelToken()
    folder = tmp_path / "out"
    folder.mkdir()
    for progress in convert_bert(minilm_dir, folder / "half.gguf", cancel=cancel):
        if progress.done == 10:
            cancel.cancel()
    assert list(folder.iterdir()) == []


def test_vocab_txt_alone_gives_the_same_vocabulary_as_tokenizer_json(minilm_dir, tmp_path):
    """Older BERT folders have only vocab.txt (and tokenizer_config.json for the special tokens)."""
    folder = tmp_path / "old-style"
    folder.mkdir()
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).symlink_to(minilm_dir / name)
    old, new = read_vocab(folder, 30522), read_vocab(minilm_dir, 30522)
    assert old.tokens == new.tokens and old.types == new.types and old.special == new.special
    assert new.tokens[101] == "[CLS]" and new.tokens[2088] == "\u2581world" and new.tokens[2075] == "ing"


def test_a_cased_model_is_refused(minilm_dir, tmp_path):
    folder = tmp_path / "cased"
    folder.mkdir()
    (folder / "vocab.txt").symlink_to(minilm_dir / "vocab.txt")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    with pytest.raises(UnsupportedModel, match="cased"):
        read_vocab(folder, 30522)


def test_a_model_that_is_not_bert_is_refused_before_writing(tmp_path):
    source = tmp_path / "model"
    source.mkdir()
    (source / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(UnsupportedModel, match="only BERT"):
        for _ in convert_bert(source, tmp_path / "out.gguf"):
            pass
    assert not (tmp_path / "out.gguf").exists()


# --- the host ---------------------------------------------------------------------------------------

def test_the_converted_model_loads_as_an_embedding_model(embedding_host):
    info = embedding_host.client().info()
    assert info["role"] == "embedding"
    assert (info["n_embd"], info["pooling"], info["n_ctx"]) == (384, "mean", 512)


def test_embeddings_agree_with_an_independent_numpy_bert(embedding_client, reference):
    vectors = embedding_client.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    cosines = [float(v @ reference.embed(text)) for v, text in zip(vectors, SENTENCES, strict=True)]
    assert min(cosines) >= 0.99, dict(zip(SENTENCES, cosines, strict=True))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_batch_gives_the_same_vectors_as_one_text_at_a_time(embedding_client):
    """Packed texts must not see each other's tokens. (Only rounding differs: the f16 matrix products
    run on batches of another size; a text that attended to its neighbours would be off by ~0.1.)"""
    together = embedding_client.embed(SENTENCES)
    alone = np.stack([embedding_client.embed([text])[0] for text in SENTENCES])
    cosines = np.sum(together * alone, axis=1)
    assert cosines.min() > 0.99999, cosines


def test_close_sentences_score_higher_than_unrelated_ones(embedding_client):
    a, close, far = embedding_client.embed([
        "How do I bake bread at home?",
        "What is a simple recipe for homemade bread?",
        "The stock market fell sharply on Tuesday.",
    ])
    cat, kitten, car = embedding_client.embed(["A cat sleeps on the sofa.", "A kitten naps on the couch.",
                                               "The car needs new tyres."])
    assert a @ close > a @ far + 0.3
    assert cat @ kitten > cat @ car + 0.3


def test_unnormalized_vectors_point_the_same_way(embedding_client):
    raw = embedding_client.embed(SENTENCES[:2], normalize=False)
    unit = embedding_client.embed(SENTENCES[:2])
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    assert np.allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), unit, atol=1e-5)


@pytest.mark.parametrize("texts, says", [
    ([], "non-empty list of strings"),
    (["fine", 3], "item 1 is a int"),
    ("just a string", "non-empty list of strings"),
    (["word " * 2000], "has 2002 tokens, but this model embeds at most 512"),
])
def test_bad_input_is_a_clear_error_and_the_host_stays_usable(embedding_client, texts, says):
    with pytest.raises(InvalidInput, match=says):
        embedding_client.embed(texts)
    assert embedding_client.embed(["still here"]).shape == (1, 384)


def test_cancel_of_a_large_batch_returns_at_once_and_frees_the_host(embedding_client):
    texts = [f"Sentence {i} is one of many about the weather by the sea." for i in range(6000)]  # ≈ 1 min
    cancel = CancelToken()
    threading.Timer(0.3, cancel.cancel).start()
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        embedding_client.embed(texts, cancel)
    cancelled_after = time.perf_counter() - started
    assert cancelled_after < 0.3 + 0.5
    # the host stopped that batch: the next request is not queued behind a minute of work
    started = time.perf_counter()
    assert embedding_client.embed(["next"]).shape == (1, 384)
    assert time.perf_counter() - started < 5


def test_the_openai_route_still_serves_other_programs(embedding_host):
    conn = http.client.HTTPConnection("127.0.0.1", embedding_host.port, timeout=60)
    conn.request("POST", "/v1/embeddings", json.dumps({"input": ["hello world"]}),
                 {"Authorization": f"Bearer {embedding_host.token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    assert response.status == 200
    assert len(data["data"][0]["embedding"]) == 384


def test_a_chat_host_says_it_does_not_embed(host_client):
    with pytest.raises(InvalidInput, match="started for chat"):
        host_client.embed(["hello"])


def test_a_chat_model_with_role_embedding_is_refused_readably(smollm2_path, tmp_path):
    """Decided: refuse. A chat GGUF declares no pooling; llama.cpp would give one vector per token."""
    host = RuntimeHost(HostSettings(model_path=str(smollm2_path), context_length=512, gpu_layers=0, threads=1,
                                    role="embedding"), log_dir=tmp_path)
    with pytest.raises(HostStartFailed, match="is not an embedding model") as info:
        host.start_blocking()
    assert "Pick an embedding model" in info.value.message
    assert not host.alive


def test_an_unknown_role_is_refused_before_starting(minilm_gguf):
    host = RuntimeHost(HostSettings(model_path=str(minilm_gguf), role="rerank"))
    with pytest.raises(InvalidInput, match="role"):
        host.start_blocking()
    assert host.pid is None
