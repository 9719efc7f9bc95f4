"""A tiny GGUF shaped like the recommended embedding model (Granite Embedding 97M Multilingual R2).

The real file cannot be downloaded in the tests, so this writes one with its traits and random
weights: architecture "modern-bert", the SiLU feed-forward switch (`modern-bert.hidden_activation`),
the BPE pre-tokenizer "granite-embed-multi-97m", CLS pooling, 384 dimensions and a 32,768-token
trained context. Loading it proves the bundled llama.cpp knows each of those; it proves nothing
about the real weights.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

ARCH = "modern-bert"
DIMENSIONS = 384
TRAINED_CONTEXT = 32_768
_HEADS, _LAYERS, _FFN = 6, 3, 128  # three layers: two local (sliding window), one global


def _byte_tokens() -> list[str]:
    """The 256 one-byte tokens of a byte-level BPE vocabulary, as GPT-2's byte-to-text table spells them."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def write_granite_like_gguf(dest: Path, activation: str = "silu", seed: int = 0) -> Path:
    """Write the file (a few MB, well under a second); `activation` is the feed-forward's ("silu", "gelu")."""
    rng = np.random.default_rng(seed)
    tokens = ["[CLS]", "[SEP]", "[PAD]", "[UNK]", *_byte_tokens(), "\u0120t", "\u0120th"]
    types = [gguf.TokenType.CONTROL] * 4 + [gguf.TokenType.NORMAL] * (len(tokens) - 4)
    writer = gguf.GGUFWriter(str(dest), ARCH)
    writer.add_name("granite-like test model")
    writer.add_context_length(TRAINED_CONTEXT)
    writer.add_embedding_length(DIMENSIONS)
    writer.add_block_count(_LAYERS)
    writer.add_feed_forward_length(_FFN)
    writer.add_head_count(_HEADS)
    writer.add_head_count_kv(_HEADS)
    writer.add_layer_norm_eps(1e-5)
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.CLS)
    writer.add_rope_freq_base(160_000.0)
    writer.add_sliding_window(128)
    writer.add_uint32(f"{ARCH}.attention.sliding_window_pattern", 3)
    writer.add_string(f"{ARCH}.hidden_activation", activation)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("granite-embed-multi-97m")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(["\u0120 t", "\u0120t h"])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_sep_token_id(1)
    writer.add_pad_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)
    writer.add_add_sep_token(True)

    def matrix(name: str, rows: int, cols: int) -> None:  # numpy (rows, cols) is ggml's {cols, rows}
        writer.add_tensor(name, (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32))

    def ones(name: str) -> None:
        writer.add_tensor(name, np.ones(DIMENSIONS, np.float32))

    matrix("token_embd.weight", len(tokens), DIMENSIONS)
    ones("token_embd_norm.weight")
    ones("output_norm.weight")
    for layer in range(_LAYERS):
        if layer:  # the first layer has no attention norm (identity), as in ModernBERT
            ones(f"blk.{layer}.attn_norm.weight")
        matrix(f"blk.{layer}.attn_qkv.weight", 3 * DIMENSIONS, DIMENSIONS)
        matrix(f"blk.{layer}.attn_output.weight", DIMENSIONS, DIMENSIONS)
        matrix(f"blk.{layer}.ffn_up.weight", 2 * _FFN, DIMENSIONS)  # a gated pair: value and gate
        matrix(f"blk.{layer}.ffn_down.weight", DIMENSIONS, _FFN)
        ones(f"blk.{layer}.ffn_norm.weight")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dest
