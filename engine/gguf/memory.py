"""What a model needs to run: weights + KV cache + a compute allowance. The one definition of each.

Used for a downloaded file (from its header) and, by the fit, for a file not downloaded yet (from
rules of thumb); both take the compute allowance from `compute_allowance`.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_VOCAB = 32_000  # when the header does not say


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes needed to run a model: weights + KV cache + a compute allowance (see estimate_memory)."""

    weights: int
    kv_cache: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.overhead

    def to_dict(self) -> dict:
        return {"weights": self.weights, "kv_cache": self.kv_cache, "overhead": self.overhead, "total": self.total}


def compute_allowance(weights: int, vocab_size: int | None) -> int:
    """Compute buffers and one batch of logits: 5% of the weights + 64 MiB + vocab × 4 bytes × 512."""
    return int(weights * 0.05) + 64 * 2**20 + (vocab_size or DEFAULT_VOCAB) * 4 * 512


def kv_cache_bytes(block_count: int, context_length: int, kv_heads: int, key_length: int, value_length: int,
                   bytes_per_element: float = 2) -> int:
    """n_layers × context × n_kv_heads × (key_length + value_length) × bytes per element (f16 = 2)."""
    return int(block_count * max(0, context_length) * kv_heads * (key_length + value_length) * bytes_per_element)


def estimate_memory(info, context_length: int, kv_bytes_per_element: float = 2) -> MemoryEstimate:
    """Memory to run an inspected model (`engine.gguf.inspect.ModelInfo`) at `context_length`, as llama.cpp lays it out.

    weights  = the tensor data (every part's data section, loaded or mapped whole)
    kv_cache = `kv_cache_bytes`, with head_dim = key_length, else embedding_length / head_count
    overhead = `compute_allowance`
    """
    weights = info.weights_bytes or info.file_size
    kv = 0
    if info.block_count and info.head_count and info.embedding_length:
        head_dim = info.embedding_length // info.head_count
        key = info.key_length or head_dim
        value = info.value_length or info.key_length or head_dim
        kv = kv_cache_bytes(info.block_count, context_length, info.head_count_kv or info.head_count, key, value,
                            kv_bytes_per_element)
    return MemoryEstimate(weights=weights, kv_cache=kv, overhead=compute_allowance(weights, info.vocab_size))
