"""GGUF inspection: the real model's values, and bad files that must fail fast with a clear reason."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import gguf
import pytest

from engine.errors import BadModelFile
from engine.hub.gguf_reader import read_header
from engine.hub.inspect import estimate_memory, inspect_gguf, split_parts

ROOT = Path(__file__).resolve().parents[2]


def test_real_model_matches_what_the_gguf_package_reads(smollm2_path):
    info = inspect_gguf(smollm2_path)
    reference = gguf.GGUFReader(smollm2_path)  # slow (~3 s) but trusted on a good file
    assert info.architecture == reference.fields["general.architecture"].contents() == "llama"
    assert info.tensor_count == len(reference.tensors)
    assert info.parameters == sum(int(t.n_elements) for t in reference.tensors)
    assert info.quantization == "Q4_1"
    assert info.context_length == reference.fields["llama.context_length"].contents()
    assert info.block_count == reference.fields["llama.block_count"].contents()
    assert info.head_count_kv == reference.fields["llama.attention.head_count_kv"].contents()
    assert info.vocab_size == len(reference.fields["tokenizer.ggml.tokens"].data)
    assert info.chat_template == reference.fields["tokenizer.chat_template"].contents()
    assert info.has_chat_template
    assert info.eos_token_id == reference.fields["tokenizer.ggml.eos_token_id"].contents()
    assert info.file_size == smollm2_path.stat().st_size
    assert 130e6 < info.parameters < 140e6


def test_memory_estimate_grows_with_context(smollm2_path):
    info = inspect_gguf(smollm2_path)
    small, large = estimate_memory(info, 1024), estimate_memory(info, 8192)
    assert small.weights == large.weights == info.weights_bytes
    assert large.kv_cache == 8 * small.kv_cache
    # 2 (K,V) x 30 layers x 3 kv heads x 64 dims x 2 bytes per token
    assert small.kv_cache == 2 * 30 * 1024 * 3 * 64 * 2


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _header(tensors: int, kvs: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, tensors, kvs)


def _key(name: str) -> bytes:
    return struct.pack("<Q", len(name)) + name.encode()


BAD_FILES = {
    "random bytes": os.urandom(4096),
    "empty": b"",
    "absurd tensor count": _header(2**62, 0),
    "absurd metadata count": _header(0, 2**62),
    "huge array": _header(0, 1) + _key("a") + struct.pack("<IIQ", 9, 4, 2**62),
    "huge string": _header(0, 1) + _key("a") + struct.pack("<IQ", 8, 2**60) + b"abc",
    "huge string array": _header(0, 1) + _key("a") + struct.pack("<IIQ", 9, 8, 2**40),
    "unknown type": _header(0, 1) + _key("a") + struct.pack("<I", 99),
    "version 99": b"GGUF" + struct.pack("<IQQ", 99, 0, 0),
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_fail_fast_with_a_reason(tmp_path, name):
    path = _write(tmp_path / "bad.gguf", BAD_FILES[name])
    with pytest.raises(BadModelFile) as info:
        inspect_gguf(path)
    assert info.value.message and "bad.gguf" in info.value.message


@pytest.mark.timeout(20)
def test_truncated_copies_fail_at_every_cut(smollm2_path, tmp_path):
    data = smollm2_path.read_bytes()[:2_000_000]
    header_end = 8 + 16
    for cut in (10, header_end + 5, 1000, 100_000, 1_500_000):
        path = _write(tmp_path / f"cut{cut}.gguf", data[:cut])
        with pytest.raises(BadModelFile) as info:
            read_header(path)
        assert "truncated" in info.value.message or "not a GGUF" in info.value.message


def test_missing_path_and_directory_are_clear(tmp_path):
    with pytest.raises(BadModelFile, match="does not exist"):
        inspect_gguf(tmp_path / "nope.gguf")
    with pytest.raises(BadModelFile, match="not a file"):
        inspect_gguf(tmp_path)


def test_split_parts_are_one_model(tmp_path):
    for i in (1, 2, 3):
        (tmp_path / f"m-0000{i}-of-00003.gguf").write_bytes(b"x" * i)
    assert len(split_parts(tmp_path / "m-00001-of-00003.gguf")) == 3
    assert split_parts(tmp_path / "single.gguf") == [tmp_path / "single.gguf"]


def test_written_gguf_without_file_type_uses_the_common_tensor_type(tmp_path):
    import numpy as np

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_block_count(1)
    writer.add_tensor("a", np.zeros((4, 8), dtype=np.float16))
    writer.add_tensor("b", np.zeros((4, 8), dtype=np.float16))
    writer.add_tensor("c", np.zeros(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    info = inspect_gguf(path)
    assert info.quantization == "F16"
    assert info.parameters == 72 and not info.has_chat_template


def ember(*args):
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def test_cli_inspect_json(smollm2_path):
    result = ember("inspect", str(smollm2_path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["architecture"] == "llama" and data["quantization"] == "Q4_1"
    assert isinstance(data["parameters"], int) and data["has_chat_template"] is True
    assert data["file_size"] == smollm2_path.stat().st_size and data["context_length"] == 8192


def test_cli_inspect_text_and_bad_file(smollm2_path, tmp_path):
    result = ember("inspect", str(smollm2_path))
    assert result.returncode == 0 and "Q4_1" in result.stdout and "memory at 4096 ctx" in result.stdout
    bad = _write(tmp_path / "bad.gguf", b"nope" * 10)
    result = ember("inspect", str(bad), "--json")
    assert result.returncode == 1
    assert "not a GGUF file" in json.loads(result.stdout)["error"]
    result = ember("inspect", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
