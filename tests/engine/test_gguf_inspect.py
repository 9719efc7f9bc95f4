"""GGUF inspection: the real model's values, and bad files that must fail fast with a clear reason."""

from __future__ import annotations

import os
import time

import gguf
import numpy as np
import pytest

from engine.errors import BadModelFile
from engine.gguf.inspect import ModelInfo, inspect_gguf
from engine.gguf.memory import estimate_memory
from engine.gguf.reader import SkippedArray, read_header
from engine.gguf.splits import split_parts


def test_real_model_matches_what_the_gguf_package_reads(smollm2_path):
    header = read_header(smollm2_path)
    reference = gguf.GGUFReader(smollm2_path)  # slow (~3 s) but trusted on a good file: once only
    fields = {k: v for k, v in reference.fields.items() if not k.startswith("GGUF.")}
    assert list(header.metadata) == list(fields)
    for key, value in header.metadata.items():
        if isinstance(value, SkippedArray):
            assert value.length == len(fields[key].data), key
            assert value.element_type == fields[key].types[-1], key
        elif isinstance(value, float):
            assert value == pytest.approx(fields[key].contents()), key
        else:
            assert value == fields[key].contents(), key
    assert [(t.name, t.shape, t.ggml_type, t.offset, t.nbytes) for t in header.tensors] == [
        (t.name, tuple(int(d) for d in t.shape), int(t.tensor_type), int(t.data_offset) - reference.data_offset,
         int(t.n_bytes)) for t in reference.tensors]
    assert header.data_offset == reference.data_offset

    info = inspect_gguf(smollm2_path)
    assert info.architecture == "llama" and info.quantization == "Q4_1"
    assert info.tensor_count == len(reference.tensors) == 272
    assert info.parameters == sum(int(t.n_elements) for t in reference.tensors)
    assert info.parameters == pytest.approx(134.5e6, rel=0.001)
    assert info.weights_bytes == sum(int(t.n_bytes) for t in reference.tensors)
    assert info.context_length == fields["llama.context_length"].contents() == 8192
    assert info.block_count == fields["llama.block_count"].contents() == 30
    assert info.head_count_kv == fields["llama.attention.head_count_kv"].contents()
    assert info.vocab_size == len(fields["tokenizer.ggml.tokens"].data)
    assert info.chat_template == fields["tokenizer.chat_template"].contents() and info.has_chat_template
    tokens = fields["tokenizer.ggml.tokens"]
    for token_id, text in ((info.bos_token_id, info.bos_token), (info.eos_token_id, info.eos_token)):
        assert text == bytes(tokens.parts[tokens.data[token_id]]).decode()
    assert info.file_size == smollm2_path.stat().st_size


def test_inspection_is_quick_and_cached(smollm2_path):
    inspect_gguf(smollm2_path)  # the gguf constants are imported once
    start = time.perf_counter()
    read_header(smollm2_path)
    # measured ~18 ms here; the bound only catches a return to reading the whole vocabulary (~3 s)
    assert time.perf_counter() - start < 1.0
    assert inspect_gguf(smollm2_path) is inspect_gguf(str(smollm2_path))


def test_dict_is_json_sized_and_rebuilds_the_info(smollm2_path):
    info = inspect_gguf(smollm2_path)
    data = info.to_dict()
    assert "chat_template" not in data and info.to_dict(with_template=True)["chat_template"] == info.chat_template
    assert ModelInfo(**info.to_dict(with_template=True)) == info
    assert (info.bos_token, info.eos_token) == ("<|im_start|>", "<|im_end|>")


def test_memory_estimate_grows_with_context(smollm2_path):
    info = inspect_gguf(smollm2_path)
    small, large = estimate_memory(info, 1024), estimate_memory(info, 8192)
    assert small.weights == large.weights == info.weights_bytes
    assert large.kv_cache == 8 * small.kv_cache
    # 2 (K,V) x 30 layers x 3 kv heads x 64 dims x 2 bytes per token
    assert small.kv_cache == 2 * 30 * 1024 * 3 * 64 * 2
    assert estimate_memory(info, 1024, kv_bytes_per_element=1).kv_cache == small.kv_cache // 2
    assert small.total == small.weights + small.kv_cache + small.overhead == small.to_dict()["total"]


def test_missing_path_and_directory_are_clear(tmp_path):
    with pytest.raises(BadModelFile, match="does not exist"):
        inspect_gguf(tmp_path / "nope.gguf")
    with pytest.raises(BadModelFile, match="not a file"):
        inspect_gguf(tmp_path)


def _write(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_split_model_counts_every_present_part(tmp_path):
    writer = gguf.GGUFWriter(tmp_path / "m.gguf", arch="llama", split_max_tensors=1)
    writer.add_block_count(2)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for name in ("a", "b", "c"):
        writer.add_tensor(name, np.zeros((4, 8), dtype=np.float16))
    _write(writer)
    parts = [tmp_path / f"m-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert split_parts(parts[0]) == parts
    first = inspect_gguf(parts[0])
    assert (first.tensor_count, first.parameters, first.split_parts, first.split_total) == (3, 96, 3, 3)
    assert first.file_size == sum(p.stat().st_size for p in parts)
    assert first.quantization == "F16" and first.block_count == 2
    later = inspect_gguf(parts[2])  # a later part: the model's metadata comes from the first
    assert later.architecture == "llama" and later.tensor_count == 3
    parts[1].unlink()
    partial = inspect_gguf(parts[0])
    assert (partial.split_parts, partial.split_total, partial.tensor_count) == (2, 3, 2)
    assert split_parts(tmp_path / "single.gguf") == [tmp_path / "single.gguf"]


def test_cache_sees_a_changed_file(tmp_path):
    path = tmp_path / "m.gguf"
    for count in (1, 2):
        writer = gguf.GGUFWriter(path, arch="llama")
        for i in range(count):
            writer.add_tensor(f"t{i}", np.zeros(8, dtype=np.float32))
        _write(writer)
        os.utime(path, ns=(count * 10**9, count * 10**9))
        assert inspect_gguf(path).tensor_count == count


def test_without_file_type_the_common_weight_type_names_the_quantization(tmp_path):
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_block_count(1)
    writer.add_tensor("a", np.zeros((4, 8), dtype=np.float16))
    writer.add_tensor("b", np.zeros((4, 8), dtype=np.float16))
    for norm in ("n1", "n2", "n3"):  # more 1-D F32 norms than weights: they do not count
        writer.add_tensor(norm, np.zeros(8, dtype=np.float32))
    _write(writer)
    info = inspect_gguf(path)
    assert info.quantization == "F16" and info.tensor_types == {"F32": 3, "F16": 2}
    assert info.parameters == 88 and not info.has_chat_template and info.chat_template is None
    assert info.bos_token is None and info.vocab_size is None


def test_all_f32_and_guessed_file_types(tmp_path):
    for file_type, expected in ((0, "F32"), (1024 | 2, "Q4_0")):
        path = tmp_path / f"ft{file_type}.gguf"
        writer = gguf.GGUFWriter(path, arch="llama")
        writer.add_uint32("general.file_type", file_type)
        writer.add_tensor("a", np.zeros((4, 8), dtype=np.float32))
        _write(writer)
        assert inspect_gguf(path).quantization == expected
