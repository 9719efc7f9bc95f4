"""GGUF files made in tests: a copy of a real model with another chat template (or none)."""

from __future__ import annotations

from pathlib import Path

import gguf

TEMPLATE_KEY = "tokenizer.chat_template"


def copy_with_chat_template(src: Path, dst: Path, template: str | None) -> Path:
    """Write a copy of `src` whose chat template is `template` (removed when None). Slow (~5 s): cache it."""
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(dst), arch=arch)
    for name, fld in reader.fields.items():
        if name.startswith("GGUF.") or name in (TEMPLATE_KEY, "general.architecture"):
            continue
        value_type = fld.types[0]
        if value_type == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, fld.contents(), value_type, sub_type=fld.types[-1])
        else:
            writer.add_key_value(name, fld.contents(), value_type)
    if template is not None:
        writer.add_string(TEMPLATE_KEY, template)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst
