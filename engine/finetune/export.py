"""A peft LoRA folder written as a llama.cpp GGUF adapter, and stored with its record in EMBER_HOME/adapters/.

Pure numpy (no torch): peft's A (rank × inputs) and B (outputs × rank) go in as they are, named
`blk.N.<tensor>.weight.lora_a` / `.lora_b` after the base's GGUF names (gguf.TensorNameMap), with
`adapter.lora.alpha`, so llama.cpp scales by alpha / rank as peft does. One subtlety decides whether
the adapter is right: llama.cpp's converter stores the rows of Q and K of llama-family models
permuted (each head's two rotary halves interleaved), and transformers undoes that when it loads the
GGUF, so the trained B of q_proj and k_proj is in Hugging Face order and must be permuted the same
way. Without it the adapter loads and its answers look almost right while the logits drift; only
the self-test's teacher-forced comparison catches it.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import time
from pathlib import Path

import gguf
import numpy as np

from engine.finetune.adapter_record import AdapterRecord, list_adapters, open_adapter  # noqa: F401 (re-exported)
from engine.finetune.errors import ExportFailed
from engine.finetune.weights_files import require_safetensors
from engine.gguf.reader import read_header
from engine.paths import EmberPaths

# GGUF architectures whose converter permutes the rows of Q and K (and transformers un-permutes them).
QK_PERMUTED = {"llama"}
_PEFT_NAME = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])(?:\.default)?\.weight$")
_SAFETENSORS_TYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "<u2"}  # BF16: fp32's top half


def permute_rows(weights: np.ndarray, heads: int) -> np.ndarray:
    """The row order llama.cpp's converter gives Q (heads = attention heads) or K (heads = KV heads):
    within each head, the rows of the two rotary halves interleaved."""
    rows = weights.shape[0]
    if rows % (2 * heads):
        raise ExportFailed(f"A projection with {rows} outputs cannot be split into {heads} heads.")
    return (weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


DAMAGED_HINT = "Save the adapter again with peft's save_pretrained, or train it again."


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as float32 (F32, F16, BF16 and F64 are what adapters use).
    A file that is not one, or whose header does not match its bytes, is refused with what is wrong."""
    data = Path(path).read_bytes()
    if len(data) < 8:
        raise ExportFailed(f"{path.name} is not a safetensors file.", DAMAGED_HINT)
    (size,) = struct.unpack_from("<Q", data)
    if size > len(data) - 8:
        raise ExportFailed(f"{path.name} is damaged (its header runs past the end).", DAMAGED_HINT)
    try:
        header = json.loads(data[8:8 + size])
    except ValueError:
        header = None
    if not isinstance(header, dict):
        raise ExportFailed(f"{path.name} is damaged (its header is not a JSON table of tensors).", DAMAGED_HINT)
    body = memoryview(data)[8 + size:]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            (start, end), dtype, shape = meta["data_offsets"], meta["dtype"], tuple(int(n) for n in meta["shape"])
        except (TypeError, KeyError, ValueError):
            raise ExportFailed(f"{path.name} is damaged (tensor {name} has no dtype, shape and offsets).",
                               DAMAGED_HINT) from None
        if dtype not in _SAFETENSORS_TYPES:
            raise ExportFailed(f"{path.name} holds {dtype} tensors, which an adapter should not.")
        itemsize = np.dtype(_SAFETENSORS_TYPES[dtype]).itemsize
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(body)):
            raise ExportFailed(f"{path.name} is damaged (tensor {name} lies outside the file).", DAMAGED_HINT)
        if end - start != math.prod(shape) * itemsize or any(n < 0 for n in shape):
            raise ExportFailed(f"{path.name} is damaged (tensor {name} has {end - start} bytes for the shape "
                               f"{list(shape)}).", DAMAGED_HINT)
        array = np.frombuffer(body[start:end], _SAFETENSORS_TYPES[dtype])
        array = (array.astype(np.uint32) << 16).view(np.float32) if dtype == "BF16" else array.astype(np.float32)
        out[name] = array.reshape(shape)
    return out


def read_peft_config(peft_folder: Path) -> dict:
    try:
        config = json.loads((peft_folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportFailed(f"{peft_folder} has no readable adapter_config.json ({exc}).",
                           "Pick a folder written by peft's save_pretrained.") from exc
    if config.get("peft_type", "LORA") != "LORA":
        raise ExportFailed(f"The adapter is a {config.get('peft_type')} adapter; llama.cpp loads LoRA adapters only.")
    if config.get("use_dora"):
        raise ExportFailed("The adapter uses DoRA, which llama.cpp adapters cannot carry.",
                           "Train a plain LoRA adapter.")
    if config.get("alpha_pattern"):
        raise ExportFailed("The adapter has a different alpha per module; a GGUF adapter holds one alpha.",
                           "Train with one lora_alpha for every module.")
    if config.get("modules_to_save"):
        raise ExportFailed(f"The adapter also trains whole modules ({', '.join(config['modules_to_save'])}), "
                           "which llama.cpp adapters cannot carry.", "Train LoRA on projections only.")
    return config


def write_gguf_adapter(peft_folder: Path, base_gguf: Path, out_path: Path, *, permute: bool = True) -> dict:
    """Write the GGUF adapter; returns what was written (tensor count, alpha, rank, permuted).

    `permute=False` leaves Q and K in Hugging Face order: only for showing what the self-test catches."""
    config = read_peft_config(peft_folder)
    weights_path = require_safetensors(peft_folder)
    meta = read_header(base_gguf).metadata
    arch = str(meta.get("general.architecture", ""))
    layers = int(meta.get(f"{arch}.block_count", 0))
    heads = int(meta.get(f"{arch}.attention.head_count", 0) or 0)
    kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads) or heads)
    try:
        arch_enum = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    except StopIteration:
        raise ExportFailed(f"The gguf package does not know the {arch!r} architecture.") from None
    names = gguf.get_tensor_name_map(arch_enum, layers)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, array in read_safetensors(weights_path).items():
        match = _PEFT_NAME.match(name)
        if not match:
            raise ExportFailed(f"The adapter holds {name}, which is not a LoRA matrix.")
        gguf_name = names.get_name(f"{match['module']}.weight", try_suffixes=(".weight",))
        if gguf_name is None:
            raise ExportFailed(f"The adapter's module {match['module']} has no counterpart in {arch} GGUF files.")
        pairs.setdefault(gguf_name, {})[match["part"]] = array
    rank = int(config["r"])
    alpha = float(config["lora_alpha"])
    if config.get("use_rslora"):  # peft scales by alpha / sqrt(r), llama.cpp by alpha / r
        alpha *= math.sqrt(rank)
    permuted = permute and arch in QK_PERMUTED
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    writer = gguf.GGUFWriter(str(tmp), arch=arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    writer.add_string("general.name", out_path.parent.name)
    for gguf_name, parts in sorted(pairs.items()):
        if set(parts) != {"A", "B"}:
            raise ExportFailed(f"{gguf_name} has only its lora_{''.join(parts)} matrix.")
        a, b = parts["A"], parts["B"]
        if permuted and ".attn_q." in gguf_name:
            b = permute_rows(b, heads)
        elif permuted and ".attn_k." in gguf_name:
            b = permute_rows(b, kv_heads)
        writer.add_tensor(f"{gguf_name}.lora_a", np.ascontiguousarray(a, dtype=np.float32))
        writer.add_tensor(f"{gguf_name}.lora_b", np.ascontiguousarray(b, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out_path)
    return {"tensors": 2 * len(pairs), "alpha": alpha, "rank": rank, "architecture": arch, "qk_permuted": permuted}


def store_adapter(paths: EmberPaths, name: str, peft_folder: Path, base_gguf: Path, record: dict, *,
                  permute: bool = True) -> AdapterRecord:
    """EMBER_HOME/adapters/<name>/: adapter.gguf, peft/ (a copy), adapter.json (its record)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "adapter"
    folder = paths.adapters / slug
    number = 1
    while folder.exists():
        number += 1
        folder = paths.adapters / f"{slug}-{number}"
    tmp = paths.adapters / f".{folder.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        written = write_gguf_adapter(peft_folder, base_gguf, tmp / "adapter.gguf", permute=permute)
        shutil.copytree(peft_folder, tmp / "peft")
        full = {"name": folder.name, "created_at": time.time(), **record, "gguf": written}
        (tmp / "adapter.json").write_text(json.dumps(full, indent=1), encoding="utf-8")
        tmp.replace(folder)
    except BaseException:  # a refused or failed adapter leaves nothing behind in the adapters folder
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return AdapterRecord(folder.name, folder, folder / "adapter.gguf", folder / "peft", full)


def update_record(adapter: AdapterRecord, **values) -> AdapterRecord:
    record = {**adapter.record, **values}
    tmp = adapter.folder / ".adapter.json.tmp"
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    tmp.replace(adapter.json_path)
    return AdapterRecord(adapter.name, adapter.folder, adapter.gguf, adapter.peft, record)
