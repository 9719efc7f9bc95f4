"""Export of a peft adapter to a GGUF adapter: names, shapes, alpha, the Q/K row order, refusals."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from safetensors.torch import save_file as save_torch_file
from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

from engine.finetune.errors import ExportFailed
from engine.finetune.export import (
    list_adapters,
    permute_rows,
    read_safetensors,
    store_adapter,
    write_gguf_adapter,
)
from engine.gguf.adapter import inspect_adapter
from engine.gguf.inspect import inspect_gguf
from engine.gguf.reader import read_header
from engine.paths import EmberPaths

RANK = 4
# SmolLM2-135M: 576 wide, 9 heads of 64, 3 KV heads, MLP 1536
SHAPES = {"self_attn.q_proj": (576, 576), "self_attn.k_proj": (576, 192), "mlp.down_proj": (1536, 576)}


def peft_folder(path, *, layers=(0, 3), config=None):
    rng = np.random.default_rng(0)
    tensors = {}
    for layer in layers:
        for module, (n_in, n_out) in SHAPES.items():
            stem = f"base_model.model.model.layers.{layer}.{module}"
            tensors[f"{stem}.lora_A.weight"] = rng.standard_normal((RANK, n_in)).astype(np.float32)
            tensors[f"{stem}.lora_B.weight"] = rng.standard_normal((n_out, RANK)).astype(np.float32)
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "adapter_model.safetensors"))
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": RANK, "lora_alpha": 8,
                                                          "use_dora": False, **(config or {})}))
    return tensors


def test_the_qk_order_is_the_inverse_of_what_transformers_undoes_on_load():
    """transformers un-permutes llama's Q and K when it reads a GGUF; the export must permute them back."""
    undo = LlamaTensorProcessor(config={"num_attention_heads": 9, "num_key_value_heads": 3})
    q = np.random.default_rng(1).standard_normal((576, 8))
    k = np.random.default_rng(2).standard_normal((192, 8))
    assert np.array_equal(undo._reverse_permute_weights(permute_rows(q, 9), 9, 9), q)
    assert np.array_equal(undo._reverse_permute_weights(permute_rows(k, 3), 9, 3), k)
    assert not np.array_equal(permute_rows(q, 9), q)


def test_safetensors_are_read_in_every_float_type_an_adapter_uses(tmp_path):
    values = torch.linspace(-3, 3, 24).reshape(4, 6)
    save_torch_file({"f32": values, "f16": values.half(), "bf16": values.bfloat16()}, str(tmp_path / "a.safetensors"))
    read = read_safetensors(tmp_path / "a.safetensors")
    assert np.array_equal(read["f32"], values.numpy())
    assert np.allclose(read["f16"], values.numpy(), atol=2e-3)
    assert np.array_equal(read["bf16"], values.bfloat16().float().numpy())  # exact: bf16 is fp32's top half
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "a.safetensors").read_bytes()[:60])
    with pytest.raises(ExportFailed):
        read_safetensors(tmp_path / "cut.safetensors")


@pytest.mark.parametrize(("header", "body", "said"), [
    (b"{garbage", b"", "header is not a JSON table"),
    (b"[1, 2]", b"", "header is not a JSON table"),
    (json.dumps({"a": {"dtype": "F32"}}).encode(), b"", "tensor a has no dtype, shape and offsets"),
    (json.dumps({"a": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 8]}}).encode(), bytes(8),
     "tensor a has 8 bytes for the shape [4, 4]"),
    (json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 80]}}).encode(), bytes(8),
     "tensor a lies outside the file"),
])
def test_a_damaged_safetensors_header_is_refused_with_what_is_wrong(tmp_path, header, body, said):
    path = tmp_path / "adapter_model.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + body)
    with pytest.raises(ExportFailed) as refused:
        read_safetensors(path)
    assert said in refused.value.message and "save_pretrained" in refused.value.hint


def test_the_adapter_is_written_with_llama_cpp_names_alpha_and_permuted_q_and_k(smollm2_path, tmp_path):
    tensors = peft_folder(tmp_path / "peft")
    written = write_gguf_adapter(tmp_path / "peft", smollm2_path, tmp_path / "adapter.gguf")
    assert written == {"tensors": 12, "alpha": 8.0, "rank": RANK, "architecture": "llama", "qk_permuted": True}
    info = inspect_adapter(tmp_path / "adapter.gguf", inspect_gguf(smollm2_path))
    assert info.alpha == 8.0 and info.tensor_count == 12
    header = read_header(tmp_path / "adapter.gguf")
    names = {t.name for t in header.tensors}
    assert {"blk.0.attn_q.weight.lora_a", "blk.3.attn_k.weight.lora_b", "blk.3.ffn_down.weight.lora_a"} <= names
    import gguf

    reader = gguf.GGUFReader(str(tmp_path / "adapter.gguf"))
    stored = {t.name: np.array(t.data) for t in reader.tensors}
    stem = "base_model.model.model.layers.3"
    assert np.array_equal(stored["blk.3.attn_q.weight.lora_b"], permute_rows(tensors[f"{stem}.self_attn.q_proj.lora_B.weight"], 9))
    assert np.array_equal(stored["blk.3.attn_k.weight.lora_b"], permute_rows(tensors[f"{stem}.self_attn.k_proj.lora_B.weight"], 3))
    assert np.array_equal(stored["blk.3.ffn_down.weight.lora_b"], tensors[f"{stem}.mlp.down_proj.lora_B.weight"])
    assert np.array_equal(stored["blk.3.attn_q.weight.lora_a"], tensors[f"{stem}.self_attn.q_proj.lora_A.weight"])
    plain = write_gguf_adapter(tmp_path / "peft", smollm2_path, tmp_path / "plain.gguf", permute=False)
    assert not plain["qk_permuted"]


def test_rslora_scale_is_carried_in_alpha(smollm2_path, tmp_path):
    peft_folder(tmp_path / "peft", config={"use_rslora": True})
    written = write_gguf_adapter(tmp_path / "peft", smollm2_path, tmp_path / "adapter.gguf")
    assert written["alpha"] == pytest.approx(8 * RANK ** 0.5)  # llama.cpp: alpha / r == peft: 8 / sqrt(r)


@pytest.mark.parametrize("config, words", [({"use_dora": True}, "DoRA"), ({"peft_type": "IA3"}, "LoRA adapters"),
                                           ({"modules_to_save": ["lm_head"]}, "whole modules"),
                                           ({"alpha_pattern": {"q_proj": 4}}, "one alpha")])
def test_adapters_llama_cpp_cannot_carry_are_refused(smollm2_path, tmp_path, config, words):
    peft_folder(tmp_path / "peft", config=config)
    with pytest.raises(ExportFailed) as refused:
        write_gguf_adapter(tmp_path / "peft", smollm2_path, tmp_path / "adapter.gguf")
    assert words in refused.value.message
    assert not (tmp_path / "adapter.gguf").exists()


def test_an_adapter_is_stored_with_its_record_and_listed(smollm2_path, tmp_path, ember_home):
    paths = EmberPaths(ember_home).ensure()
    peft_folder(tmp_path / "peft")
    first = store_adapter(paths, "My notes", tmp_path / "peft", smollm2_path, {"dataset_hash": "abc"})
    second = store_adapter(paths, "My notes", tmp_path / "peft", smollm2_path, {"dataset_hash": "def"})
    assert (first.name, second.name) == ("My-notes", "My-notes-2")
    assert first.gguf.is_file() and (first.peft / "adapter_config.json").is_file()
    assert json.loads(first.json_path.read_text())["dataset_hash"] == "abc"
    assert [a.name for a in list_adapters(paths)] == ["My-notes", "My-notes-2"]


def test_an_adapter_that_cannot_be_written_leaves_nothing_in_the_adapters_folder(smollm2_path, tmp_path, ember_home):
    paths = EmberPaths(ember_home).ensure()
    peft_folder(tmp_path / "peft")
    weights = tmp_path / "peft" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])  # cut short, as by a full disk or a broken copy
    with pytest.raises(ExportFailed):
        store_adapter(paths, "My notes", tmp_path / "peft", smollm2_path, {"dataset_hash": "abc"})
    assert list(paths.adapters.iterdir()) == [] and list_adapters(paths) == []
