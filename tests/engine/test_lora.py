"""A LoRA adapter loads with the model and changes its output; a wrong file is refused before launch."""

from __future__ import annotations

import pytest

from engine.errors import BadModelFile, InvalidInput
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


def test_adapter_and_scale_change_on_the_running_model(smollm2_path, tmp_path):
    """The host swaps the adapter in place: the same replies as a host loaded with it, without a reload."""
    strong = write_lora_adapter(smollm2_path, tmp_path / "strong.gguf", scale=0.5,
                                targets=("attn_q", "attn_v", "ffn_down"))
    loaded_with_it = greedy_reply(smollm2_path, tmp_path, strong)
    settings = HostSettings(model_path=str(smollm2_path), context_length=256, gpu_layers=0, threads=1)
    with RuntimeHost(settings, log_dir=tmp_path) as host:
        client = host.client()

        def reply() -> str:
            return "".join(e.text for e in client.stream_chat(HELLO, GREEDY) if not e.stats)

        plain = reply()
        assert client.set_adapter(strong, 1.0) == {"lora": str(strong), "lora_scale": 1.0}
        assert reply() == loaded_with_it != plain
        client.set_adapter(strong, 0.3)
        weaker = reply()
        assert weaker != loaded_with_it
        client.set_adapter(None)
        assert reply() == plain
        with pytest.raises(InvalidInput) as refused:
            client.set_adapter(smollm2_path, 1.0)  # a model, not an adapter
        assert "not a LoRA adapter" in refused.value.message
        assert reply() == plain  # the host is still up, with what it had
        assert client.info()["lora"] is None


def test_scale_given_at_load(smollm2_path, tmp_path):
    strong = write_lora_adapter(smollm2_path, tmp_path / "strong.gguf", scale=0.5, targets=("attn_q", "ffn_down"))
    settings = HostSettings(model_path=str(smollm2_path), context_length=256, gpu_layers=0, threads=1,
                            lora_path=str(strong), lora_scale=0.0)
    with RuntimeHost(settings, log_dir=tmp_path) as host:
        at_zero = "".join(e.text for e in host.client().stream_chat(HELLO, GREEDY) if not e.stats)
        assert host.info["lora_scale"] == 0.0
    assert at_zero == greedy_reply(smollm2_path, tmp_path)


def test_use_adapter_sends_only_changes_and_keeps_the_process(smollm2_path, tmp_path):
    """A chat's adapter is put on once: asking for what is on already sends nothing (the KV cache stays)."""
    strong = write_lora_adapter(smollm2_path, tmp_path / "strong.gguf", scale=0.5,
                                targets=("attn_q", "attn_v", "ffn_down"))
    settings = HostSettings(model_path=str(smollm2_path), context_length=256, gpu_layers=0, threads=1)
    with RuntimeHost(settings, log_dir=tmp_path) as host:
        client, pid = host.client(), host.pid

        def reply() -> str:
            return "".join(e.text for e in client.stream_chat(HELLO, GREEDY) if not e.stats)

        plain = reply()
        assert host.adapter is None
        assert host.use_adapter(strong, 1.0) is True
        assert host.adapter == (str(strong), 1.0)
        tuned = reply()
        assert tuned != plain
        assert host.use_adapter(strong, 1.0) is False  # on already: nothing sent
        assert host.use_adapter(None, 1.0) is True and host.adapter is None
        assert host.use_adapter(strong, 0.0) is False  # strength 0 is the model as it is: still nothing on
        assert client.info()["lora"] is None
        assert reply() == plain
        assert host.use_adapter(strong, 1.0) is True
        assert reply() == tuned
        assert host.pid == pid  # never reloaded


def test_use_adapter_refused_keeps_the_previous_state(smollm2_path, tmp_path):
    settings = HostSettings(model_path=str(smollm2_path), context_length=256, gpu_layers=0, threads=1)
    with RuntimeHost(settings, log_dir=tmp_path) as host:
        with pytest.raises(InvalidInput):
            host.use_adapter(smollm2_path, 1.0)  # a model, not an adapter
        assert host.adapter is None
