"""A LoRA adapter loads with the model and changes its output; a wrong file is refused before launch."""

from __future__ import annotations

import pytest

from engine.errors import BadModelFile
from engine.runtime.sampling import Sampling
from engine.runtime.supervisor import HostSettings, RuntimeHost
from tests.support.gguf_files import write_lora_adapter

pytestmark = pytest.mark.timeout(120)
HELLO = [{"role": "user", "content": "Say hello"}]
GREEDY = Sampling(max_tokens=12, temperature=0.0, seed=1)


def greedy_reply(model, tmp_path, lora=None) -> str:
    settings = HostSettings(model_path=str(model), context_length=256, gpu_layers=0, threads=1,
                            lora_path=str(lora) if lora else None)
    with RuntimeHost(settings, log_dir=tmp_path) as host:
        return "".join(e.text for e in host.client().stream_chat(HELLO, GREEDY) if not e.stats)


def test_adapter_changes_the_output_and_a_zero_adapter_does_not(smollm2_path, tmp_path):
    zero = write_lora_adapter(smollm2_path, tmp_path / "zero.gguf", scale=0.0)
    strong = write_lora_adapter(smollm2_path, tmp_path / "strong.gguf", scale=0.5,
                                targets=("attn_q", "attn_v", "ffn_down"))
    plain = greedy_reply(smollm2_path, tmp_path)
    assert greedy_reply(smollm2_path, tmp_path, zero) == plain
    assert greedy_reply(smollm2_path, tmp_path, strong) != plain


@pytest.mark.parametrize("kind", ["missing", "garbage", "a model, not an adapter"])
def test_wrong_adapter_is_refused_with_a_reason(smollm2_path, tmp_path, kind):
    lora = {"missing": tmp_path / "nope.gguf", "garbage": tmp_path / "garbage.gguf",
            "a model, not an adapter": smollm2_path}[kind]
    if kind == "garbage":
        lora.write_bytes(b"not a gguf at all" * 10)
    host = RuntimeHost(HostSettings(model_path=str(smollm2_path), lora_path=str(lora)), log_dir=tmp_path)
    with pytest.raises(BadModelFile) as info:
        host.start_blocking()
    assert info.value.message
    assert host.pid is None  # refused before any process started
