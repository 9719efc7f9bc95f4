"""An independent BERT sentence embedder in numpy: the yardstick for the converter's GGUF in llama.cpp.

It shares nothing with the conversion or with llama.cpp: the weights come straight from the
safetensors file under their Hugging Face names, the tokens from the `tokenizers` package reading
tokenizer.json. Forward pass: word + position + token-type embeddings, LayerNorm, then per layer
post-norm self-attention and a GELU feed-forward, then mean pooling over the tokens and L2 norm
(what sentence-transformers' Transformer → Pooling(mean) → Normalize does). float64 throughout.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


class NumpyBert:
    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.config = json.loads((Path(model_dir) / "config.json").read_text())
        raw = load_file(str(Path(model_dir) / "model.safetensors"))
        self.w = {name.removeprefix("bert."): value.astype(np.float64) for name, value in raw.items()
                  if value.dtype.kind == "f"}
        self.tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def token_ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids  # [CLS] ... [SEP], by tokenizer.json's post-processor

    def embed(self, text: str) -> np.ndarray:
        ids = np.array(self.token_ids(text))
        w, eps = self.w, self.config.get("layer_norm_eps", 1e-12)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][: len(ids)]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        heads = self.config["num_attention_heads"]
        for i in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            attention = _self_attention(x, w, p + "attention.self.", heads)
            x = _layer_norm(x + _linear(attention, w, p + "attention.output.dense"),
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            hidden = _gelu(_linear(x, w, p + "intermediate.dense"))
            x = _layer_norm(x + _linear(hidden, w, p + "output.dense"),
                            w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        pooled = x.mean(axis=0)
        return pooled / np.linalg.norm(pooled)


def _linear(x: np.ndarray, w: dict, name: str) -> np.ndarray:
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def _layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gain + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU that BERT's "gelu" means."""
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _self_attention(x: np.ndarray, w: dict, prefix: str, heads: int) -> np.ndarray:
    n, width = x.shape
    size = width // heads

    def split(name: str) -> np.ndarray:  # (heads, tokens, size)
        return _linear(x, w, prefix + name).reshape(n, heads, size).transpose(1, 0, 2)

    q, k, v = split("query"), split("key"), split("value")
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(size)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    scores /= scores.sum(axis=-1, keepdims=True)
    return (scores @ v).transpose(1, 0, 2).reshape(n, width)
