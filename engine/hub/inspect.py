"""What a GGUF file is: architecture, size, quantization, context, template; and the memory it needs.

Built on our bounded header reader (gguf_reader.py); the `gguf` package supplies only its constants.
Results are cached in-process by (path, size, mtime), so listing a library re-reads nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.errors import BadModelFile
from engine.hub.gguf_reader import SkippedArray, read_header

SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$", re.I)

_cache: dict[tuple[str, int, int], ModelInfo] = {}


@dataclass(frozen=True)
class ModelInfo:
    path: str
    file_name: str
    file_size: int
    architecture: str
    name: str | None
    parameters: int
    quantization: str
    tensor_types: dict = field(default_factory=dict)
    tensor_count: int = 0
    weights_bytes: int = 0
    context_length: int | None = None
    block_count: int | None = None
    embedding_length: int | None = None
    head_count: int | None = None
    head_count_kv: int | None = None
    key_length: int | None = None
    vocab_size: int | None = None
    has_chat_template: bool = False
    chat_template: str | None = None
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    split_parts: int = 1
    gguf_version: int = 3

    def to_dict(self, with_template: bool = False) -> dict:
        data = asdict(self)
        if not with_template:
            data.pop("chat_template")
        return data


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes needed to run a model: weights + KV cache (f16) + a compute allowance."""

    weights: int
    kv_cache: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.overhead


def inspect_gguf(path: Path | str) -> ModelInfo:
    """Inspect a GGUF file (or the first part of a split one); BadModelFile if it is not usable."""
    path = Path(path)
    stat = path.stat() if path.is_file() else None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns) if stat else None
    if key and key in _cache:
        return _cache[key]
    info = _inspect(path)
    if key:
        _cache[key] = info
    return info


def split_parts(path: Path) -> list[Path]:
    """All present parts of a split GGUF (`name-00001-of-00003.gguf`), or just the file."""
    match = SPLIT_NAME.match(path.name)
    if not match:
        return [path]
    total = int(match["total"])
    parts = [path.with_name(f"{match['stem']}-{i:05d}-of-{total:05d}.gguf") for i in range(1, total + 1)]
    return [p for p in parts if p.is_file()]


def _inspect(path: Path) -> ModelInfo:
    import gguf  # constants only

    header = read_header(path)
    meta = header.metadata
    arch = str(meta.get("general.architecture") or "unknown")

    def arch_key(name: str):
        value = meta.get(f"{arch}.{name}")
        return value if isinstance(value, int) else None

    types = Counter()
    parameters = weights = 0
    for tensor in header.tensors:
        parameters += tensor.elements
        try:
            type_name = gguf.GGMLQuantizationType(tensor.ggml_type).name
            block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(tensor.ggml_type)]
            weights += tensor.elements // block * size
        except (ValueError, KeyError):
            type_name = f"type{tensor.ggml_type}"
        types[type_name] += 1
    parts = split_parts(path)
    tokens = meta.get("tokenizer.ggml.tokens")
    template = meta.get("tokenizer.chat_template")
    return ModelInfo(
        path=str(path), file_name=path.name, file_size=sum(p.stat().st_size for p in parts),
        architecture=arch, name=meta.get("general.name") if isinstance(meta.get("general.name"), str) else None,
        parameters=parameters, quantization=_quantization(meta.get("general.file_type"), types, gguf),
        tensor_types=dict(types.most_common()), tensor_count=len(header.tensors), weights_bytes=weights,
        context_length=arch_key("context_length"), block_count=arch_key("block_count"),
        embedding_length=arch_key("embedding_length"), head_count=arch_key("attention.head_count"),
        head_count_kv=arch_key("attention.head_count_kv") or arch_key("attention.head_count"),
        key_length=arch_key("attention.key_length"),
        vocab_size=tokens.length if isinstance(tokens, SkippedArray) else (len(tokens) if isinstance(tokens, list) else None),
        has_chat_template=isinstance(template, str) and bool(template.strip()),
        chat_template=template if isinstance(template, str) else None,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"), eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        split_parts=len(parts), gguf_version=header.version,
    )


def _quantization(file_type, types: Counter, gguf) -> str:
    if isinstance(file_type, int):
        try:
            return gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_")
        except ValueError:
            pass
    # no (or an unknown) file type: the most common type among the 2-D weight tensors
    return types.most_common(1)[0][0] if types else "unknown"


def estimate_memory(info: ModelInfo, context_length: int, kv_bytes_per_element: int = 2) -> MemoryEstimate:
    """weights + KV cache + overhead.

    KV cache = 2 (K and V) × layers × context × kv_heads × head_dim × bytes per element, with
    head_dim = key_length or embedding / heads. Overhead: compute buffers and logits, roughly
    5% of the weights plus 64 MB plus vocab × 4 bytes × 512 (one batch of logits).
    """
    weights = info.weights_bytes or info.file_size
    kv = 0
    if info.block_count and info.head_count and info.embedding_length:
        head_dim = info.key_length or info.embedding_length // info.head_count
        kv = 2 * info.block_count * context_length * (info.head_count_kv or info.head_count) * head_dim
        kv *= kv_bytes_per_element
    overhead = int(weights * 0.05) + 64 * 2**20 + (info.vocab_size or 32000) * 4 * 512
    return MemoryEstimate(weights=weights, kv_cache=kv, overhead=overhead)


@dataclass(frozen=True)
class AdapterInfo:
    path: str
    architecture: str
    adapter_type: str
    alpha: float | None
    tensor_count: int


def inspect_adapter(path: Path | str, model: ModelInfo | None = None) -> AdapterInfo:
    """Check a LoRA adapter GGUF before llama.cpp sees it (a bad one can crash the host outright)."""
    path = Path(path)
    header = read_header(path)
    meta = header.metadata
    info = AdapterInfo(str(path), str(meta.get("general.architecture", "unknown")),
                       str(meta.get("adapter.type", "")), meta.get("adapter.lora.alpha"), len(header.tensors))
    if meta.get("general.type") != "adapter" or info.adapter_type != "lora":
        raise BadModelFile(f"{path.name} is a GGUF file but not a LoRA adapter.",
                           "Pick an adapter exported for this model (general.type = adapter).")
    if model is not None and info.architecture != model.architecture:
        raise BadModelFile(f"The adapter {path.name} is for {info.architecture} models, not {model.architecture}.",
                           "Pick an adapter trained on this model.")
    return info
