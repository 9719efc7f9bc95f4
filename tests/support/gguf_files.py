"""GGUF files made in tests: a copy of a real model with another chat template (or none)."""

from __future__ import annotations

from pathlib import Path

import gguf

TEMPLATE_KEY = "tokenizer.chat_template"


def copy_with_chat_template(src: Path, dst: Path, template: str | None) -> Path:
    """Write a copy of `src` whose chat template is `template` (removed when None).

    Every other metadata entry keeps its value, type and place; every tensor keeps its raw bytes and
    type. Slow (~3 s on SmolLM2: GGUFReader reads the vocabulary): make it once per test session.
    """
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(dst), arch=arch)
    for name, fld in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        if name == TEMPLATE_KEY:
            if template is not None:
                writer.add_string(TEMPLATE_KEY, template)
            continue
        if name == gguf.Keys.General.ALIGNMENT:
            writer.add_custom_alignment(int(fld.contents()))
            continue
        value_type = fld.types[0]
        if value_type == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, fld.contents(), value_type, sub_type=fld.types[-1])
        else:
            writer.add_key_value(name, fld.contents(), value_type)
    if template is not None and TEMPLATE_KEY not in reader.fields:
        writer.add_string(TEMPLATE_KEY, template)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(dst)


def write_lora_adapter(base: Path, dst: Path, rank: int = 4, targets: tuple[str, ...] = ("attn_q",),
                       scale: float = 0.0) -> Path:
    """Write a real LoRA adapter GGUF for `base` (llama.cpp's adapter layout) on the `targets` weights.

    lora_b is `scale` everywhere (0 by default: the adapter loads but changes nothing).
    """
    import numpy as np

    from engine.gguf.reader import read_header

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
