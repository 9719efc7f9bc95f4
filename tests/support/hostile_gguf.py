"""Hostile GGUF files, written byte by byte in the tests (no binary blobs in the repository).

`HOSTILE` maps a case's name to (the file's bytes, words the refusal must contain). Each file differs
from a valid little model (`tiny_model_bytes`) in the one way its name says. `copy_with_metadata`
writes a copy of a real model with some metadata values replaced (a special token id...).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from engine.gguf.reader import read_header
from tests.support.gguf_files import _metadata_entries, _tensor_infos_end

U8, U32, STRING, ARRAY = 0, 4, 8, 9


def header(tensors: int, kvs: int, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, kvs)


def string(text: str) -> bytes:
    return struct.pack("<Q", len(text.encode())) + text.encode()


def kv_u32(key: str, value: int) -> bytes:
    return string(key) + struct.pack("<II", U32, value)


def kv_string(key: str, value: str) -> bytes:
    return string(key) + struct.pack("<I", STRING) + string(value)


def tensor_info(name: str, shape: tuple[int, ...], ggml_type: int = 0, offset: int = 0) -> bytes:
    return string(name) + struct.pack(f"<I{len(shape)}QIQ", len(shape), *shape, ggml_type, offset)


def model_bytes(*tensor_infos: bytes, data: bytes = b"", kv: bytes = b"", kv_count: int = 0,
                alignment: int = 32) -> bytes:
    """A little GGUF: metadata, tensor infos, padding to `alignment`, then `data`."""
    head = header(len(tensor_infos), kv_count) + kv + b"".join(tensor_infos)
    return head + b"\0" * (-len(head) % alignment) + data


def tiny_model_bytes() -> bytes:
    """A valid little model: an architecture and one 8x2 F32 tensor (what the hostile ones differ from)."""
    return model_bytes(tensor_info("a", (8, 2)), data=b"\0" * 64, kv=kv_string("general.architecture", "llama"),
                       kv_count=1)


HTML_ERROR_PAGE = (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body><h1>502 Bad "
                   b"Gateway</h1><p>The server returned an invalid response.</p></body></html>\n" * 20)

HOSTILE: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "is empty"),
    "an HTML error page saved as .gguf": (HTML_ERROR_PAGE, "not a GGUF file (magic b'<!DO'"),
    "random bytes": (os.urandom(4096), "not a GGUF file"),
    "truncated in the header": (tiny_model_bytes()[:20], "truncated: it has only 20 bytes"),
    "cut in the version": (b"GGUF\x03\0\0\0", "truncated: it has only 8 bytes"),
    "short and not GGUF": (b"hello", "not a GGUF file"),
    "version 99": (header(0, 0, version=99), "version 99"),
    "version 1": (header(0, 0, version=1), "version 1"),
    "big-endian": (b"GGUF" + struct.pack(">IQQ", 3, 0, 0), "big-endian"),
    "tensor count 2^63": (header(2**63, 0), "declares 2^63 tensors"),
    "key/value count 2^63": (header(0, 2**63), "declares 2^63 metadata entries"),
    "array count 2^62": (header(0, 1) + string("abcde") + struct.pack("<IIQ", ARRAY, U32, 2**62),
                         "declares 2^62 elements"),
    "string array count 2^62": (header(0, 1) + string("a") + struct.pack("<IIQ", ARRAY, STRING, 2**62),
                                "declares 2^62 strings"),
    "string length 2^60": (header(0, 1) + string("a") + struct.pack("<IQ", STRING, 2**60) + b"abc",
                           "runs past the end"),
    "key length 2^60": (header(0, 1) + struct.pack("<Q", 2**60) + b"abcdefghijklm", "runs past the end"),
    "a string of a string array 2^50 long": (header(0, 1) + string("a") + struct.pack("<IIQ", ARRAY, STRING, 3)
                                             + string("ok") + struct.pack("<Q", 2**50) + b"x" * 40, "string 2 of 3"),
    "array of arrays": (header(0, 1) + string("a") + struct.pack("<IIQ", ARRAY, ARRAY, 1) + b"\0" * 40,
                        "array of arrays"),
    "unknown value type": (header(0, 1) + string("a") + struct.pack("<I", 99) + b"\0" * 8, "unknown type 99"),
    "duplicate keys": (header(0, 2) + (string("a") + struct.pack("<IB", U8, 1)) * 2, "'a' appears twice"),
    "alignment 0": (model_bytes(kv=kv_u32("general.alignment", 0), kv_count=1), "general.alignment is 0"),
    "alignment 13": (model_bytes(kv=kv_u32("general.alignment", 13), kv_count=1), "general.alignment is 13"),
    "tensor offset -1": (model_bytes(tensor_info("t", (4,), offset=2**64 - 1), data=b"\0" * 64),
                         "starts at byte"),
    "shape -1": (model_bytes(tensor_info("t", (2**64 - 1, 1)), data=b"\0" * 64), "more values than a 64-bit"),
    "shape whose product overflows": (model_bytes(tensor_info("t", (2**32, 2**32)), data=b"\0" * 64),
                                      "more values than a 64-bit"),
    "five dimensions": (model_bytes(tensor_info("t", (1, 1, 1, 1, 1))), "5 dimensions"),
    "dimension count 2^31": (header(1, 0) + string("t") + struct.pack("<I", 2**31) + b"\0" * 40,
                             "2^31 dimensions"),
    "duplicate tensor": (model_bytes(tensor_info("t", (4,)), tensor_info("t", (4,), offset=32), data=b"\0" * 64),
                         "twice"),
    "tensor data past the end": (model_bytes(tensor_info("t", (1024,)), data=b"\0" * 100), "past the end"),
    "misaligned tensor": (model_bytes(tensor_info("t", (4,), offset=3), data=b"\0" * 64), "not aligned"),
    "row not a multiple of the block": (model_bytes(tensor_info("t", (33, 2), ggml_type=2), data=b"\0" * 64),
                                        "block"),
}


def copy_with_metadata(src: Path, dst: Path, values: dict[str, int]) -> Path:
    """A copy of `src` with these u32 metadata values replaced (or added); tensors and data as they are."""
    raw = Path(src).read_bytes()
    data_start = read_header(src).data_offset
    version, entries, kv_end = _metadata_entries(raw)
    _, _, tensor_count, _ = struct.unpack_from("<4sIQQ", raw, 0)
    kept = [raw[start:end] for key, start, end in entries if key not in values]
    kept += [kv_u32(key, value) for key, value in values.items()]
    tensor_infos = raw[kv_end:_tensor_infos_end(raw, kv_end, tensor_count)]
    body = struct.pack("<4sIQQ", b"GGUF", version, tensor_count, len(kept)) + b"".join(kept) + tensor_infos
    with open(dst, "wb") as out:
        out.write(body + b"\0" * (-len(body) % 32))  # the real model's alignment: 32, the default
        out.write(memoryview(raw)[data_start:])
    return Path(dst)
