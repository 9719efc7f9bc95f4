"""The test helper that copies a real GGUF with another chat template: other tests rely on it."""

from __future__ import annotations

import hashlib

import pytest

from engine.gguf.inspect import inspect_gguf
from engine.gguf.reader import read_header
from tests.support.gguf_files import TEMPLATE_KEY, copy_with_chat_template

TEMPLATE = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"


def _data_digest(path, header) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(header.data_offset)
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.timeout(120)
def test_copy_has_the_new_template_and_everything_else(smollm2_path, tmp_path):
    copy = copy_with_chat_template(smollm2_path, tmp_path / "copy.gguf", TEMPLATE)
    assert copy == tmp_path / "copy.gguf"
    info, original = inspect_gguf(copy), inspect_gguf(smollm2_path)
    assert info.chat_template == TEMPLATE and info.has_chat_template
    assert info.tensor_count == original.tensor_count and info.parameters == original.parameters
    source, copied = read_header(smollm2_path), read_header(copy)
    assert list(copied.metadata) == list(source.metadata)  # same keys, same order
    assert {k: v for k, v in copied.metadata.items() if k != TEMPLATE_KEY} == {
        k: v for k, v in source.metadata.items() if k != TEMPLATE_KEY}
    assert copied.tensors == source.tensors
    assert _data_digest(copy, copied) == _data_digest(smollm2_path, source)


@pytest.mark.timeout(120)
def test_copy_without_a_template(smollm2_path, tmp_path):
    copy = copy_with_chat_template(smollm2_path, tmp_path / "none.gguf", None)
    info = inspect_gguf(copy)
    assert not info.has_chat_template and info.chat_template is None
    assert TEMPLATE_KEY not in read_header(copy).metadata
    assert info.tensor_count == inspect_gguf(smollm2_path).tensor_count
