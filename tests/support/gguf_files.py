"""GGUF files made in tests: a copy of a real model with another chat template (or none), a LoRA adapter."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf

from engine.gguf.reader import read_header

TEMPLATE_KEY = "tokenizer.chat_template"


def write_tiny_model(path: Path) -> Path:
    """A tiny GGUF that inspects as a model (llama, context 256, one tensor); it would not run."""
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_context_length(256)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def copy_with_chat_template(src: Path, dst: Path, template: str | None, tensors: bool = True) -> Path:
    """Write a copy of `src` whose chat template is `template` (removed when None).

    Only the metadata is rewritten: every other entry keeps its bytes and place, the tensor infos and
    the tensor data are copied as they are (the data offsets are relative, so only the padding before
    the data changes). Fast (a file copy). With `tensors=False` the copy has the metadata alone: a
    ~2 MB file that llama.cpp opens with `vocab_only=True` (the tokenizer and the template, no weights).
    """
    raw = Path(src).read_bytes()
    version, entries, kv_end = _metadata_entries(raw)
    header = read_header(src)
    kept, found = [], False
    for key, start, end in entries:
        if key != TEMPLATE_KEY:
            kept.append(raw[start:end])
        elif template is not None:
            kept.append(_string_entry(TEMPLATE_KEY, template))
            found = True
    if template is not None and not found:
        kept.append(_string_entry(TEMPLATE_KEY, template))
    tensor_infos = raw[kv_end:_tensor_infos_end(raw, kv_end, len(header.tensors))] if tensors else b""
    body = struct.pack("<4sIQQ", b"GGUF", version, len(header.tensors) if tensors else 0, len(kept))
    body += b"".join(kept) + tensor_infos
    alignment = header.metadata.get(gguf.Keys.General.ALIGNMENT, 32)
    with open(dst, "wb") as out:
        out.write(body)
        if tensors:
            out.write(b"\0" * (-len(body) % alignment))
            out.write(memoryview(raw)[header.data_offset:])
    return Path(dst)


_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # value type -> size
_STRING, _ARRAY = 8, 9


def _metadata_entries(raw: bytes) -> tuple[int, list[tuple[str, int, int]], int]:
    """(version, [(key, start, end) of each metadata entry], end of the metadata) of a GGUF file's bytes."""
    magic, version, _, kv_count = struct.unpack_from("<4sIQQ", raw, 0)
    assert magic == b"GGUF", "not a GGUF file"
    pos, entries = 24, []
    for _ in range(kv_count):
        start = pos
        (key_len,) = struct.unpack_from("<Q", raw, pos)
        key = raw[pos + 8:pos + 8 + key_len].decode()
        (value_type,) = struct.unpack_from("<I", raw, pos + 8 + key_len)
        pos = _skip_value(raw, pos + 12 + key_len, value_type)
        entries.append((key, start, pos))
    return version, entries, pos


def _skip_value(raw: bytes, pos: int, value_type: int) -> int:
    if value_type in _FIXED:
        return pos + _FIXED[value_type]
    if value_type == _STRING:
        return pos + 8 + struct.unpack_from("<Q", raw, pos)[0]
    assert value_type == _ARRAY, f"unknown GGUF value type {value_type}"
    element_type, count = struct.unpack_from("<IQ", raw, pos)
    pos += 12
    if element_type in _FIXED:
        return pos + count * _FIXED[element_type]
    for _ in range(count):
        pos = _skip_value(raw, pos, element_type)
    return pos


def _tensor_infos_end(raw: bytes, pos: int, count: int) -> int:
    for _ in range(count):
        pos += 8 + struct.unpack_from("<Q", raw, pos)[0]  # name
        (dims,) = struct.unpack_from("<I", raw, pos)
        pos += 4 + 8 * dims + 4 + 8  # dimensions, type, offset
    return pos


def _string_entry(key: str, value: str) -> bytes:
    k, v = key.encode(), value.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<I", _STRING) + struct.pack("<Q", len(v)) + v


def write_lora_adapter(base: Path, dst: Path, rank: int = 4, targets: tuple[str, ...] = ("attn_q",),
                       scale: float = 0.0) -> Path:
    """Write a real LoRA adapter GGUF for `base` (llama.cpp's adapter layout) on the `targets` weights.

    lora_b is `scale` everywhere (0 by default: the adapter loads but changes nothing).
    """
    import numpy as np

    header = read_header(base)
    writer = gguf.GGUFWriter(str(dst), arch=header.metadata["general.architecture"])
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    rng = np.random.default_rng(0)
    for tensor in header.tensors:
        if not any(f".{t}.weight" in tensor.name for t in targets) or len(tensor.shape) != 2:
            continue
        n_in, n_out = tensor.shape  # ggml order: ne[0] is the input size
        stem = tensor.name.removesuffix(".weight")
        writer.add_tensor(f"{stem}.weight.lora_a", rng.standard_normal((rank, n_in)).astype(np.float32) * 0.01)
        writer.add_tensor(f"{stem}.weight.lora_b", np.full((n_out, rank), scale, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst
