"""What a GGUF file is: architecture, size, quantization, context, template.

Built on our bounded header reader (reader.py); the `gguf` package supplies only its constants.
Results are cached in-process by (path, size, mtime), so listing a library re-reads nothing; the
cache is shared by every thread (the library scans on a worker while a load inspects on another).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.errors import BadModelFile
from engine.gguf.reader import SkippedArray, read_header, read_string_item
from engine.gguf.splits import SPLIT_NAME, split_parts

CACHE_MAX = 256
GUESSED_FILE_TYPE = 1024  # llama.cpp ORs this into general.file_type when it guessed it

_cache: dict[tuple, ModelInfo] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class ModelInfo:
    """One model file (all present parts of a split one). Every field has a JSON-safe value."""

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
    value_length: int | None = None
    bos_token: str | None = None
    eos_token: str | None = None
    split_total: int = 1

    def to_dict(self, with_template: bool = False) -> dict:
        """The template stays out unless asked: it can be kilobytes, and the CLI's JSON stays small."""
        data = asdict(self)
        if not with_template:
            data.pop("chat_template")
        return data


def inspect_gguf(path: Path | str) -> ModelInfo:
    """Inspect a GGUF file (or a part of a split one); BadModelFile if it is not usable."""
    path = Path(path)
    key = _cache_key(path)
    if key is not None:
        with _cache_lock:
            cached = _cache.get(key)
        if cached is not None:
            return cached
    info = _inspect(path)  # outside the lock: two threads may inspect one new file, never corrupt the cache
    if key is not None:
        with _cache_lock:
            while len(_cache) >= CACHE_MAX:
                _cache.pop(next(iter(_cache)))
            _cache[key] = info
    return info


def _cache_key(path: Path) -> tuple | None:
    try:
        return tuple((str(p.resolve()), s.st_size, s.st_mtime_ns) for p in split_parts(path) or [path]
                     for s in [p.stat()]) if path.is_file() else None
    except OSError:
        return None


def _inspect(path: Path) -> ModelInfo:
    import gguf  # constants only

    header = read_header(path)
    parts = split_parts(path) or [path]
    first = SPLIT_NAME.match(parts[0].name)
    main_path = parts[0] if first and int(first["part"]) == 1 else path  # later parts carry no model metadata
    headers = {p: read_header(p) for p in parts if p != path}
    headers[path] = header
    main = headers[main_path]
    meta = main.metadata
    arch = _str(meta.get("general.architecture")) or "unknown"

    def arch_int(name: str) -> int | None:
        return _int(meta.get(f"{arch}.{name}"))

    types, types_2d = Counter(), Counter()
    parameters = weights = tensor_count = 0
    for part_header in headers.values():
        weights += max(0, part_header.file_size - part_header.data_offset)  # the tensor data
        tensor_count += len(part_header.tensors)
        for tensor in part_header.tensors:
            parameters += tensor.elements
            type_name = _type_name(tensor.ggml_type, gguf)
            types[type_name] += 1
            if len(tensor.shape) >= 2:
                types_2d[type_name] += 1
    tokens = meta.get("tokenizer.ggml.tokens")
    template = meta.get("tokenizer.chat_template")
    vocab_size = _length(tokens) or arch_int("vocab_size")
    bos, eos = (_token_id(meta.get(f"tokenizer.ggml.{name}_token_id"), vocab_size) for name in ("bos", "eos"))
    split_match = SPLIT_NAME.match(path.name)
    return ModelInfo(
        path=str(path), file_name=path.name, file_size=sum(h.file_size for h in headers.values()),
        architecture=arch, name=_str(meta.get("general.name")), parameters=parameters,
        quantization=_quantization(meta.get("general.file_type"), types_2d or types, gguf),
        tensor_types=dict(types.most_common()), tensor_count=tensor_count, weights_bytes=weights,
        context_length=arch_int("context_length"), block_count=arch_int("block_count"),
        embedding_length=arch_int("embedding_length"), head_count=arch_int("attention.head_count"),
        head_count_kv=arch_int("attention.head_count_kv") or arch_int("attention.head_count"),
        key_length=arch_int("attention.key_length"), value_length=arch_int("attention.value_length"),
        vocab_size=vocab_size,
        has_chat_template=bool(_str(template) and template.strip()), chat_template=_str(template),
        bos_token_id=bos, eos_token_id=eos,
        bos_token=_token_text(main_path, tokens, bos), eos_token=_token_text(main_path, tokens, eos),
        split_parts=len(parts), gguf_version=main.version,
        split_total=_int(meta.get("split.count")) or (int(split_match["total"]) if split_match else 1),
    )


def _int(value) -> int | None:
    """An integer field; per-layer arrays (some architectures) count as their largest value."""
    if type(value) is int:
        return value
    if isinstance(value, list) and value and all(type(v) is int for v in value):
        return max(value)
    return None


def _token_id(value, vocab_size: int | None) -> int | None:
    """A special token's id; None when the vocabulary has no such token (llama.cpp then uses its default)."""
    token = _int(value)
    if token is None or token < 0 or (vocab_size is not None and token >= vocab_size):
        return None
    return token


def _str(value) -> str | None:
    return value if isinstance(value, str) else None


def _length(array) -> int | None:
    if isinstance(array, SkippedArray):
        return array.length
    return len(array) if isinstance(array, list) else None


def _token_text(path: Path, tokens, token_id: int | None) -> str | None:
    """A token's text, found from the nearest checkpoint of the skipped vocabulary (≤ 1024 strings walked)."""
    if token_id is None or not isinstance(tokens, SkippedArray):
        return None
    try:
        return read_string_item(path, tokens, token_id)
    except (BadModelFile, OSError):
        return None


def _type_name(ggml_type: int, gguf) -> str:
    try:
        return gguf.GGMLQuantizationType(ggml_type).name
    except ValueError:
        return f"type{ggml_type}"


def _quantization(file_type, types: Counter, gguf) -> str:
    """general.file_type's name ("Q4_1"); without one, the most common type among the weight matrices."""
    if type(file_type) is int:
        try:
            name = gguf.LlamaFileType(file_type & ~GUESSED_FILE_TYPE).name
        except ValueError:
            name = None
        if name:
            return "F32" if name == "ALL_F32" else name.removeprefix("MOSTLY_")
    return types.most_common(1)[0][0] if types else "unknown"
