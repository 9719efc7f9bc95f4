"""A bounded reader of GGUF headers: metadata and tensor infos, never the tensor data.

Why our own: gguf.GGUFReader parses the whole vocabulary (about 3 s on a 135M model), hangs on a
tiny file that declares a 2^62-element array, and accepts a string length that runs past the end.
Here every count, length and offset is checked against the bytes that remain before it is used;
long arrays and string arrays are walked over (only their type and length are kept), and any defect
is a BadModelFile that says what is wrong. The `gguf` package supplies only its constants.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import BadModelFile

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
KEEP_ARRAY_MAX = 64  # short arrays of numbers are kept; longer ones are skipped
MAX_DIMS = 4  # GGML_MAX_DIMS: llama.cpp refuses more
CHECKPOINT_EVERY = 1024  # string arrays remember the offset of every 1024th string

# value type -> struct format character and size, for the fixed-size types
_SCALARS = {0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4),
            6: ("f", 4), 7: ("?", 1), 10: ("Q", 8), 11: ("q", 8), 12: ("d", 8)}
_STRING, _ARRAY = 8, 9
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_MIN_KV = 8 + 4 + 1  # key length, value type, the smallest value
_MIN_TENSOR_INFO = 8 + 4 + 4 + 8  # name length, dimension count, type, offset


@dataclass(frozen=True)
class SkippedArray:
    """A long array whose values were not read (the vocabulary, merges, scores...)."""

    element_type: int
    length: int
    offset: int = field(default=0, compare=False)  # file offset of the first element
    checkpoints: tuple[int, ...] = field(default=(), compare=False, repr=False)  # strings: every 1024th


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # ggml order: shape[0] is the row length
    ggml_type: int
    offset: int  # relative to the start of the data section
    nbytes: int | None = None  # None for a type this `gguf` package does not know

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
    tensor_info_offset: int = 0  # where the tensor infos start (the end of the metadata)


def read_header(path: Path | str) -> GGUFHeader:
    """Parse the header of a GGUF file, or raise BadModelFile saying what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise BadModelFile(f"{path} does not exist.", "Check the path.")
    if not path.is_file():
        raise BadModelFile(f"{path} is not a file.", "Pick a .gguf file.")
    try:
        with open(path, "rb") as f:
            size = _file_size(f)
            if size < 24:
                raise _too_short(path.name, f.read(4), size)
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                return _Reader(buffer, size, path.name).parse()
    except OSError as exc:
        raise BadModelFile(f"{path.name} cannot be read: {exc.strerror or exc}.",
                           "Check that the file is readable.") from exc


def read_string_item(path: Path | str, array: SkippedArray, index: int) -> str | None:
    """String `index` of a skipped string array (a token's text), walking at most 1024 strings."""
    if array.element_type != _STRING or not 0 <= index < array.length or not array.checkpoints:
        return None
    path = Path(path)
    with open(path, "rb") as f:
        size = _file_size(f)
        if size < 24:  # replaced since it was read: nothing to map
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            reader = _Reader(buffer, size, path.name)
            reader.pos = array.checkpoints[index // CHECKPOINT_EVERY]
            for _ in range(index % CHECKPOINT_EVERY):
                reader.skip(reader.u64("a string length"), "a string")
            return reader.string(f"string {index} of the array")


def _too_short(name: str, start: bytes, size: int) -> BadModelFile:
    if size == 0:
        return BadModelFile(f"{name} is empty (0 bytes), not a GGUF file.")
    if start == GGUF_MAGIC:
        return BadModelFile(f"{name} is truncated: it has only {size} bytes, fewer than a GGUF header's 24.")
    return BadModelFile(f"{name} is not a GGUF file: it has only {size} bytes.")


def _file_size(f) -> int:
    return os.fstat(f.fileno()).st_size


def _count(n: int) -> str:
    """2^62 reads better than 4611686018427387904 in a message."""
    if n >= 2**20 and n & (n - 1) == 0:
        return f"2^{n.bit_length() - 1}"
    return f"{n:,}"


class _Reader:
    def __init__(self, buffer, size: int, name: str) -> None:
        self.buf, self.size, self.pos, self.name = buffer, size, 0, name

    # -- errors -------------------------------------------------------------------------------
    def damaged(self, message: str) -> BadModelFile:
        return BadModelFile(f"{self.name} is damaged: {message}.")

    def truncated(self, what: str, count: int) -> BadModelFile:
        return BadModelFile(f"{self.name} is truncated or damaged: {what} runs past the end of the file "
                            f"({_count(count)} bytes at offset {self.pos:,}; the file has {self.size:,} bytes).")

    def check_count(self, count: int, each: int, what: str) -> None:
        """`count` items of at least `each` bytes must fit in what remains, before any loop over them."""
        remaining = self.size - self.pos
        if count * each > remaining:
            raise BadModelFile(f"{self.name} is truncated or damaged: it declares {_count(count)} {what} "
                               f"but only {remaining:,} bytes remain (the file has {self.size:,} bytes).")

    # -- primitives ---------------------------------------------------------------------------
    def need(self, count: int, what: str) -> None:
        if self.pos + count > self.size:
            raise self.truncated(what, count)

    def skip(self, count: int, what: str) -> None:
        self.need(count, what)
        self.pos += count

    def u32(self, what: str) -> int:
        self.need(4, what)
        value = _U32.unpack_from(self.buf, self.pos)[0]
        self.pos += 4
        return value

    def u64(self, what: str) -> int:
        self.need(8, what)
        value = _U64.unpack_from(self.buf, self.pos)[0]
        self.pos += 8
        return value

    def string(self, what: str) -> str:
        length = self.u64(f"the length of {what}")
        self.need(length, what)
        raw = self.buf[self.pos:self.pos + length]
        self.pos += length
        return raw.decode("utf-8", "replace")

    # -- sections -----------------------------------------------------------------------------
    def parse(self) -> GGUFHeader:
        magic = bytes(self.buf[0:4])
        if magic != GGUF_MAGIC:
            raise BadModelFile(f"{self.name} is not a GGUF file (magic {magic!r}, expected b'GGUF').")
        self.pos = 4
        version = self.u32("the version")
        if version not in SUPPORTED_VERSIONS:
            if int.from_bytes(version.to_bytes(4, "little"), "big") in SUPPORTED_VERSIONS:
                raise BadModelFile(f"{self.name} is a big-endian GGUF file; Ember reads little-endian ones.")
            raise BadModelFile(f"{self.name} is GGUF version {version}; Ember reads versions 2 and 3.",
                               "Convert the model again with a current llama.cpp.")
        tensor_count = self.u64("the tensor count")
        kv_count = self.u64("the metadata count")
        self.check_count(kv_count, _MIN_KV, "metadata entries")
        self.check_count(tensor_count, _MIN_TENSOR_INFO, "tensors")
        header = GGUFHeader(version=version, file_size=self.size)
        self.read_metadata(kv_count, header.metadata)
        header.tensor_info_offset = self.pos
        self.check_count(tensor_count, _MIN_TENSOR_INFO, "tensor infos")
        self.read_tensor_infos(tensor_count, header.tensors)
        alignment = header.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if type(alignment) is not int or alignment <= 0 or alignment & (alignment - 1):
            raise self.damaged(f"general.alignment is {alignment!r}, not a power of two")
        header.data_offset = (self.pos + alignment - 1) // alignment * alignment
        self.check_tensor_data(header, alignment)
        return header

    def read_metadata(self, kv_count: int, metadata: dict) -> None:
        for index in range(kv_count):
            key = self.string(f"the key of metadata entry {index + 1} of {kv_count}")
            if key in metadata:
                raise self.damaged(f"the metadata key {key!r} appears twice")
            value_type = self.u32(f"the type of {key!r}")
            metadata[key] = self.value(value_type, key)

    def value(self, value_type: int, key: str):
        if value_type in _SCALARS:
            char, size = _SCALARS[value_type]
            self.need(size, f"the value of {key!r}")
            value = struct.unpack_from("<" + char, self.buf, self.pos)[0]
            self.pos += size
            return value
        if value_type == _STRING:
            return self.string(f"the value of {key!r}")
        if value_type != _ARRAY:
            raise self.damaged(f"the metadata {key!r} has unknown type {value_type}")
        element_type = self.u32(f"the element type of {key!r}")
        length = self.u64(f"the length of {key!r}")
        if element_type in _SCALARS:
            char, size = _SCALARS[element_type]
            self.check_count(length, size, f"elements in {key!r}")
            start = self.pos
            self.pos += length * size
            if length <= KEEP_ARRAY_MAX:
                return list(struct.unpack_from(f"<{length}{char}", self.buf, start))
            return SkippedArray(element_type, length, start)
        if element_type == _STRING:
            self.check_count(length, 8, f"strings in {key!r}")
            return self.skip_strings(key, length)
        if element_type == _ARRAY:
            raise self.damaged(f"the metadata {key!r} is an array of arrays, which llama.cpp does not read")
        raise self.damaged(f"the array {key!r} has unknown element type {element_type}")

    def skip_strings(self, key: str, length: int) -> SkippedArray:
        """Walk over `length` strings, checking each length against the end of the file.

        A tight loop (the vocabulary has tens of thousands of strings); it remembers the offset of every
        1024th string so that one token's text can be found later without walking them all.
        """
        buf, pos, end, unpack = self.buf, self.pos, self.size, _U64.unpack_from
        start, checkpoints = pos, []
        for first in range(0, length, CHECKPOINT_EVERY):
            checkpoints.append(pos)
            for index in range(first, min(length, first + CHECKPOINT_EVERY)):
                if pos + 8 > end:
                    self.pos = pos
                    raise self.truncated(f"the length of string {index + 1:,} of {length:,} in {key!r}", 8)
                string_length = unpack(buf, pos)[0]
                if pos + 8 + string_length > end:
                    self.pos = pos + 8
                    raise self.truncated(f"string {index + 1:,} of {length:,} in {key!r}", string_length)
                pos += 8 + string_length
        self.pos = pos
        return SkippedArray(_STRING, length, start, tuple(checkpoints))

    def read_tensor_infos(self, tensor_count: int, tensors: list[TensorInfo]) -> None:
        names: set[str] = set()
        for index in range(tensor_count):
            what = f"tensor info {index + 1} of {tensor_count}"
            name = self.string(f"the name of {what}")
            if name in names:
                raise self.damaged(f"the tensor name {name!r} appears twice")
            names.add(name)
            n_dims = self.u32(f"the dimension count of {what} ({name})")
            if n_dims > MAX_DIMS:
                raise self.damaged(f"{what} ({name}) declares {_count(n_dims)} dimensions (at most {MAX_DIMS})")
            self.need(8 * n_dims + 12, f"{what} ({name})")
            shape = struct.unpack_from(f"<{n_dims}Q", self.buf, self.pos)
            ggml_type, offset = struct.unpack_from("<IQ", self.buf, self.pos + 8 * n_dims)
            self.pos += 8 * n_dims + 12
            elements = 1
            for dim in shape:  # llama.cpp reads them as signed 64-bit: -1 is 2^64 - 1 here
                elements *= dim
                if dim >= 2**63 or elements >= 2**63:
                    raise self.damaged(f"{what} ({name}) has the shape {list(shape)}, more values than a 64-bit "
                                       "count holds")
            tensors.append(TensorInfo(name, tuple(shape), ggml_type, offset))

    def check_tensor_data(self, header: GGUFHeader, alignment: int) -> None:
        """Every tensor's data must lie, aligned, inside the file; its size comes from gguf's block sizes."""
        import gguf  # constants only (imported here: it costs ~0.15 s the first time)

        for index, tensor in enumerate(header.tensors):
            if header.data_offset + tensor.offset > self.size:
                raise BadModelFile(f"{self.name} is truncated or damaged: the data of tensor {tensor.name} starts "
                                   f"at byte {header.data_offset + tensor.offset:,}, past the end of the file "
                                   f"({self.size:,} bytes).")
            if tensor.offset % alignment:
                raise self.damaged(f"the data of tensor {tensor.name} is not aligned to {alignment} bytes")
            nbytes = None
            try:
                block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(tensor.ggml_type)]
            except (ValueError, KeyError):
                block = None  # a type newer than this gguf package: the start is still checked
            if block:
                if tensor.shape and tensor.shape[0] % block:
                    raise self.damaged(f"tensor {tensor.name} has rows of {tensor.shape[0]} values, not a multiple "
                                       f"of its type's block of {block}")
                nbytes = tensor.elements // block * type_size
                header.tensors[index] = TensorInfo(tensor.name, tensor.shape, tensor.ggml_type, tensor.offset,
                                                   nbytes)
            end = header.data_offset + tensor.offset + (nbytes or 0)
            if end > self.size:
                raise BadModelFile(f"{self.name} is truncated: the data of tensor {tensor.name} ends at byte "
                                   f"{end:,}, past the end of the file ({self.size:,} bytes).")
