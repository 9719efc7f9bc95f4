"""A bounded reader of GGUF headers: metadata and tensor infos, never the tensor data.

Why our own: gguf.GGUFReader parses the whole vocabulary (about 3 s on a 135M model), hangs on a
tiny file that declares a 2^62-element array, and accepts a string length that runs past the end.
Here every count, length and offset is checked against the bytes that remain before it is used, long
arrays are skipped (only their type and length are kept), and any defect is a BadModelFile that says
what is wrong.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import BadModelFile

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
KEEP_ARRAY_MAX = 64  # short arrays of numbers are kept; longer ones are skipped

# value type -> (struct format, size) for fixed-size types
_SCALARS = {0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
            6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8)}
_STRING, _ARRAY = 8, 9
_MIN_TENSOR_INFO = 8 + 4 + 4 + 8  # empty name, no dims, type, offset


@dataclass(frozen=True)
class SkippedArray:
    """A long array whose values were not read (the vocabulary, merges, scores...)."""

    element_type: int
    length: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass
class GGUFHeader:
    version: int
    metadata: dict = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0
    file_size: int = 0


class _Cursor:
    def __init__(self, buffer, size: int, name: str) -> None:
        self.buf, self.size, self.pos, self.name = buffer, size, 0, name

    def need(self, count: int, what: str) -> None:
        if count < 0 or self.pos + count > self.size:
            raise BadModelFile(f"{self.name} is truncated or damaged: {what} needs {count} bytes at offset "
                               f"{self.pos}, but the file has {self.size} bytes.")

    def unpack(self, fmt: str, size: int, what: str):
        self.need(size, what)
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += size
        return value

    def string(self, what: str) -> str:
        length = self.unpack("<Q", 8, f"the length of {what}")
        self.need(length, f"{what} (declared {length} bytes)")
        raw = bytes(self.buf[self.pos:self.pos + length])
        self.pos += length
        return raw.decode("utf-8", "replace")

    def skip_string(self, what: str) -> None:
        length = self.unpack("<Q", 8, f"the length of {what}")
        self.need(length, f"{what} (declared {length} bytes)")
        self.pos += length


def read_header(path: Path) -> GGUFHeader:
    """Parse the header of a GGUF file, or raise BadModelFile saying what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise BadModelFile(f"{path} does not exist.", "Check the path.")
    if not path.is_file():
        raise BadModelFile(f"{path} is not a file.", "Pick a .gguf file.")
    size = path.stat().st_size
    if size < 24:
        raise BadModelFile(f"{path.name} is not a GGUF file: it has only {size} bytes.")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
        return _parse(_Cursor(buffer, size, path.name))


def _parse(c: _Cursor) -> GGUFHeader:
    magic = bytes(c.buf[0:4])
    if magic != GGUF_MAGIC:
        raise BadModelFile(f"{c.name} is not a GGUF file (it starts with {magic!r}, not b'GGUF').")
    c.pos = 4
    version = c.unpack("<I", 4, "the version")
    if version not in (2, 3):
        raise BadModelFile(f"{c.name} is GGUF version {version}; Ember reads versions 2 and 3.")
    tensor_count = c.unpack("<Q", 8, "the tensor count")
    kv_count = c.unpack("<Q", 8, "the metadata count")
    remaining = c.size - c.pos
    if kv_count * 12 > remaining:  # each entry needs at least a key length and a type
        raise BadModelFile(f"{c.name} is truncated or damaged: it declares {kv_count} metadata entries but has only {remaining} bytes left.")
    if tensor_count * _MIN_TENSOR_INFO > remaining:
        raise BadModelFile(f"{c.name} is truncated or damaged: it declares {tensor_count} tensors but has only {remaining} bytes left.")
    header = GGUFHeader(version=version, file_size=c.size)
    for index in range(kv_count):
        key = c.string(f"the key of metadata entry {index + 1} of {kv_count}")
        value_type = c.unpack("<I", 4, f"the type of {key!r}")
        header.metadata[key] = _value(c, value_type, key)
    for index in range(tensor_count):
        what = f"tensor info {index + 1} of {tensor_count}"
        name = c.string(f"the name of {what}")
        n_dims = c.unpack("<I", 4, f"the dimensions of {what}")
        if n_dims > 8:
            raise BadModelFile(f"{c.name} is damaged: {what} ({name}) declares {n_dims} dimensions.")
        shape = tuple(c.unpack("<Q", 8, f"a dimension of {what}") for _ in range(n_dims))
        ggml_type = c.unpack("<I", 4, f"the type of {what}")
        offset = c.unpack("<Q", 8, f"the data offset of {what}")
        header.tensors.append(TensorInfo(name, shape, ggml_type, offset))
    alignment = header.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise BadModelFile(f"{c.name} declares an invalid alignment {alignment!r}.")
    header.data_offset = (c.pos + alignment - 1) // alignment * alignment
    for tensor in header.tensors:
        if header.data_offset + tensor.offset > c.size:
            raise BadModelFile(f"{c.name} is truncated: the data of tensor {tensor.name} starts past the end "
                               f"of the file ({c.size} bytes).")
    return header


def _value(c: _Cursor, value_type: int, key: str):
    if value_type in _SCALARS:
        fmt, size = _SCALARS[value_type]
        return c.unpack(fmt, size, f"the value of {key!r}")
    if value_type == _STRING:
        return c.string(f"the value of {key!r}")
    if value_type == _ARRAY:
        element_type = c.unpack("<I", 4, f"the element type of {key!r}")
        length = c.unpack("<Q", 8, f"the length of {key!r}")
        remaining = c.size - c.pos
        if element_type in _SCALARS:
            size = _SCALARS[element_type][1]
            if length * size > remaining:
                raise BadModelFile(f"{c.name} is truncated or damaged: {key!r} declares {length} elements but only "
                                   f"{remaining} bytes remain.")
            if length <= KEEP_ARRAY_MAX:
                return [c.unpack(_SCALARS[element_type][0], size, key) for _ in range(length)]
            c.pos += length * size
            return SkippedArray(element_type, length)
        if element_type == _STRING:
            if length * 8 > remaining:
                raise BadModelFile(f"{c.name} is truncated or damaged: {key!r} declares {length} strings but only "
                                   f"{remaining} bytes remain.")
            for index in range(length):
                c.skip_string(f"string {index + 1} of {key!r}")
            return SkippedArray(element_type, length)
        raise BadModelFile(f"{c.name} has an array {key!r} of unsupported element type {element_type}.")
    raise BadModelFile(f"{c.name} is damaged: metadata {key!r} has unknown type {value_type}.")
