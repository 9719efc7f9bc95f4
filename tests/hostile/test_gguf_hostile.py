"""Hostile GGUF files: refused with a reason that says what is wrong, before anything trusts them.

Ember's own header reader (engine/gguf/reader.py) checks every count, length and offset against the
bytes that remain before using it, so a file that claims 2^63 entries costs nothing to refuse. The
library and the model host both inspect a file before taking it: a hostile one is refused there, the
library keeps what it had, no model process starts. A file the reader accepts but llama.cpp does not
costs only its own process: the supervisor says why and the next model loads.
"""

from __future__ import annotations

import os
import shutil
import tracemalloc

import gguf
import numpy as np
import pytest

from engine.errors import BadModelFile, EmberError, InvalidInput
from engine.gguf.adapter import inspect_adapter
from engine.gguf.inspect import inspect_gguf
from engine.gguf.reader import read_header
from engine.runtime.sampling import Sampling
from engine.runtime.supervisor import HostSettings, RuntimeHost
from tests.support.gguf_files import write_lora_adapter, write_tiny_model
from tests.support.hostile_gguf import HOSTILE, copy_with_metadata, tiny_model_bytes

pytestmark = pytest.mark.timeout(120)

READER_PEAK_BYTES = 1_000_000  # Python objects the reader may make for a tiny hostile file (mmap not counted)


def host_settings(path, **more) -> HostSettings:
    return HostSettings(model_path=str(path), context_length=256, gpu_layers=0, threads=1, **more)


def test_the_little_model_the_hostile_files_differ_from_is_valid(tmp_path):
    path = tmp_path / "good.gguf"
    path.write_bytes(tiny_model_bytes())
    assert [(t.name, t.shape, t.nbytes) for t in read_header(path).tensors] == [("a", (8, 2), 64)]
    assert inspect_gguf(path).architecture == "llama"


@pytest.mark.parametrize("name", list(HOSTILE))
def test_the_reader_refuses_it_without_allocating_what_it_claims(tmp_path, name):
    data, reason = HOSTILE[name]
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(BadModelFile) as info:
            inspect_gguf(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "bad.gguf" in info.value.message and reason in info.value.message, info.value.message
    assert info.value.hint, "the user must be told what to do"
    assert peak < READER_PEAK_BYTES, f"{peak:,} bytes allocated to refuse a {len(data)}-byte file"


@pytest.mark.parametrize("name", list(HOSTILE))
def test_adding_it_to_the_library_or_loading_it_is_refused_and_nothing_is_lost(library, tmp_path, name):
    path = tmp_path / "bad.gguf"
    path.write_bytes(HOSTILE[name][0])
    before = [(e.path, e.error) for e in library.scan()]
    with pytest.raises(BadModelFile, match="bad.gguf"):
        library.add_file(path)
    assert [(e.path, e.error) for e in library.scan()] == before
    host = RuntimeHost(host_settings(path), log_dir=tmp_path)
    with pytest.raises(BadModelFile, match="bad.gguf"):
        host.start_blocking()
    assert host.pid is None, "a model process was started for a file Ember had refused"


def test_a_folder_of_hostile_files_lists_each_with_its_reason_and_the_good_model_stays(library, smollm2_path,
                                                                                      tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    files = {}
    for index, (name, (data, reason)) in enumerate(HOSTILE.items()):
        files[f"hostile-{index:02d}.gguf"] = (name, reason)
        (folder / f"hostile-{index:02d}.gguf").write_bytes(data)
    library.add_folder(folder)
    entries = {e.name: e for e in library.scan()}
    assert entries[smollm2_path.name].info is not None and entries[smollm2_path.name].error is None
    for file_name, (name, reason) in files.items():
        assert entries[file_name].info is None and reason in entries[file_name].error, (name, entries[file_name])


@pytest.fixture(scope="module")
def real_model_bytes(smollm2_path):
    return smollm2_path.read_bytes()


@pytest.mark.parametrize("where", ["in the header", "in the metadata", "in the tensor infos", "at half",
                                   "one byte short"])
def test_a_truncated_real_model_is_refused_as_truncated(real_model_bytes, smollm2_path, tmp_path, where):
    header = read_header(smollm2_path)
    size = len(real_model_bytes)
    cut = {"in the header": 20, "in the metadata": header.tensor_info_offset // 2,
           "in the tensor infos": (header.tensor_info_offset + header.data_offset) // 2,
           "at half": size // 2, "one byte short": size - 1}[where]
    path = tmp_path / "cut.gguf"
    path.write_bytes(memoryview(real_model_bytes)[:cut])
    with pytest.raises(BadModelFile, match="truncated") as info:
        inspect_gguf(path)
    assert "cut.gguf" in info.value.message
    host = RuntimeHost(host_settings(path), log_dir=tmp_path)
    with pytest.raises(BadModelFile, match="truncated"):
        host.start_blocking()
    assert host.pid is None


@pytest.mark.timeout(30)
def test_truncated_copies_fail_at_every_cut(smollm2_path, real_model_bytes, tmp_path):
    header = read_header(smollm2_path)
    infos, data_start = header.tensor_info_offset, header.data_offset
    cuts = {
        "in the header": (10, 20),
        "in the metadata": (100, 5_000, 800_000, 1_500_000, infos - 3),
        "in the tensor infos": (infos + 5, (infos + data_start) // 2, data_start - 40),
        "in the tensor data": (data_start + 4096,),
    }
    for section, points in cuts.items():
        for cut in points:
            path = tmp_path / f"cut{cut}.gguf"
            path.write_bytes(real_model_bytes[:cut])
            with pytest.raises(BadModelFile) as info:
                read_header(path)
            message = info.value.message
            assert "truncated" in message, (section, cut, message)
            if section == "in the tensor infos":
                assert "tensor info" in message, message
            path.unlink()


def reply(host):
    stats = None
    for event in host.client().stream_chat([{"role": "user", "content": "Hi"}], Sampling(max_tokens=8, seed=1)):
        stats = event.stats or stats
    return stats


def test_a_special_token_id_past_the_vocabulary_is_ignored_and_the_model_still_answers(smollm2_path, tmp_path):
    vocab = inspect_gguf(smollm2_path).vocab_size
    path = copy_with_metadata(smollm2_path, tmp_path / "bad-tokens.gguf",
                              {"tokenizer.ggml.bos_token_id": vocab, "tokenizer.ggml.padding_token_id": 2**32 - 1,
                               "tokenizer.ggml.unknown_token_id": 10**9})
    info = inspect_gguf(path)
    assert info.bos_token_id is None and info.bos_token is None  # not read past the vocabulary
    assert info.eos_token_id is not None and info.eos_token == "<|im_end|>"
    with RuntimeHost(host_settings(path), log_dir=tmp_path) as host:  # llama.cpp falls back to its default ids
        stats = reply(host)
    assert stats.stop_reason in ("stop", "length")


def test_a_split_model_with_a_part_missing_is_refused_by_name(library, tmp_path):
    writer = gguf.GGUFWriter(tmp_path / "m.gguf", arch="llama", split_max_tensors=1)
    writer.add_block_count(3)
    for name in ("a", "b", "c"):
        writer.add_tensor(name, np.zeros((4, 8), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    first = tmp_path / "m-00001-of-00003.gguf"
    (tmp_path / "m-00002-of-00003.gguf").unlink()
    with pytest.raises(BadModelFile, match="split in 3 files; 1 is missing: m-00002-of-00003.gguf") as info:
        library.add_file(first)
    assert "Download the missing parts" in info.value.hint
    assert library.repo.get(str(first.resolve())) is None
    host = RuntimeHost(host_settings(first), log_dir=tmp_path)
    with pytest.raises(BadModelFile, match="missing"):
        host.start_blocking()
    assert host.pid is None


@pytest.fixture
def other_base_adapter(tmp_path):
    """A LoRA adapter for another llama model (64-wide attention, not SmolLM2's 576)."""
    base = tmp_path / "other-base.gguf"
    writer = gguf.GGUFWriter(str(base), arch="llama")
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return write_lora_adapter(base, tmp_path / "other-lora.gguf")


def test_a_lora_adapter_for_another_base_model_is_refused_before_llama_cpp(smollm2_path, other_base_adapter,
                                                                          tmp_path):
    with pytest.raises(BadModelFile, match="made for another model: its blk.0.attn_q.weight is 64 wide"):
        inspect_adapter(other_base_adapter, inspect_gguf(smollm2_path))
    host = RuntimeHost(host_settings(smollm2_path, lora_path=str(other_base_adapter)), log_dir=tmp_path)
    with pytest.raises(BadModelFile, match="made for another model"):
        host.start_blocking()
    assert host.pid is None


def test_a_lora_adapter_for_another_base_model_is_refused_by_the_running_host(shared_host, other_base_adapter):
    before = shared_host.adapter
    with pytest.raises(InvalidInput, match="made for another model"):
        shared_host.use_adapter(other_base_adapter, 1.0)
    assert shared_host.adapter == before
    assert reply(shared_host).stop_reason in ("stop", "length")


def test_a_file_the_reader_accepts_but_llama_cpp_refuses_costs_only_its_process(shared_host, tmp_path):
    path = write_tiny_model(tmp_path / "no-weights.gguf")  # a valid header; no layers llama.cpp could run
    host = RuntimeHost(host_settings(path), log_dir=tmp_path)
    with pytest.raises(EmberError) as info:
        host.start_blocking()
    assert info.value.message and info.value.hint
    assert host.pid is not None and not host._process.alive
    assert reply(shared_host).stop_reason in ("stop", "length"), "the other model process is still serving"


def test_a_model_file_replaced_by_garbage_after_it_was_listed_is_refused_at_load(library, tmp_path, smollm2_path):
    path = tmp_path / "was-good.gguf"
    shutil.copyfile(smollm2_path, path)
    library.add_file(path)
    with open(path, "r+b") as f:  # the same size, the header overwritten (a sync tool, a bad disk...)
        f.write(os.urandom(4096))
    host = RuntimeHost(host_settings(path), log_dir=tmp_path)
    with pytest.raises(BadModelFile, match="not a GGUF file"):
        host.start_blocking()
    assert host.pid is None
