"""The plan's logic without a trainer: backends per device, memory, refusals, settings, and the CUDA/MPS setup.

No GPU is lent to CI: the QLoRA and MPS configurations are checked as configuration (what would be
built), with torch's device query mocked only in the one test that says so.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from engine.errors import InvalidInput
from engine.finetune.errors import PlanTooBig, SequenceTooLong, TrainingStackMissing
from engine.finetune.plan import (
    DeviceInfo,
    ModelShape,
    check_memory,
    check_sequence_length,
    choose_backend,
    estimate_memory,
    lora_parameters,
)
from engine.finetune.settings import PRESETS, TrainSettings, preset
from engine.finetune.trainer import device as trainer_device
from engine.finetune.trainer.setup import autocast, grad_scaler, load_kwargs, make_optimizer

GiB = 2**30
CUDA_AMPERE = DeviceInfo("cuda", "RTX 4090", 24 * GiB, 23 * GiB, bf16=True, bitsandbytes=True)
CUDA_TURING = DeviceInfo("cuda", "T4", 16 * GiB, 15 * GiB, bf16=False, bitsandbytes=True)
# a 7B llama-shaped model (Mistral 7B's dimensions)
SEVEN_B = ModelShape("llama", 7_241_732_096, 32, 4096, 14336, 32, 8, 32000, 32768)


def test_each_device_gets_its_backend():
    qlora = choose_backend(CUDA_AMPERE)
    assert (qlora.weights_dtype, qlora.compute_dtype, qlora.optimizer, qlora.gradient_checkpointing) == (
        "nf4", "bfloat16", "paged_adamw_8bit", True)
    assert choose_backend(CUDA_TURING).compute_dtype == "float16"  # no bf16 before compute capability 8
    no_bnb = choose_backend(DeviceInfo("cuda", "RTX 4090", 24 * GiB, 23 * GiB, bf16=True, bitsandbytes=False))
    assert not no_bnb.quantized and no_bnb.optimizer == "adamw" and "bitsandbytes" in no_bnb.notes[0]
    mps = choose_backend(DeviceInfo("mps", bf16=True))
    assert (mps.device, mps.compute_dtype, mps.weights_dtype, mps.optimizer) == ("mps", "bfloat16", "bfloat16", "adamw")
    assert choose_backend(DeviceInfo("mps", bf16=False)).compute_dtype == "float16"
    cpu = choose_backend(DeviceInfo("cpu"))
    assert (cpu.compute_dtype, cpu.weights_dtype, cpu.gradient_checkpointing) == ("float32", "float32", False)


def test_qlora_is_configured_as_nf4_with_a_paged_8bit_optimizer():
    kwargs = load_kwargs(choose_backend(CUDA_AMPERE))
    quantization = kwargs["quantization_config"]
    assert quantization.load_in_4bit and quantization.bnb_4bit_quant_type == "nf4"
    assert quantization.bnb_4bit_compute_dtype == torch.bfloat16 and quantization.bnb_4bit_use_double_quant
    assert kwargs["dtype"] == torch.bfloat16 and kwargs["device_map"] == {"": 0}
    with pytest.raises(TrainingStackMissing) as missing:  # bitsandbytes is not installed on this CPU machine
        make_optimizer(choose_backend(CUDA_AMPERE), [torch.nn.Parameter(torch.zeros(2))], 1e-4, 0.0)
    assert "bitsandbytes" in missing.value.message
    with pytest.warns(UserWarning):  # torch says CUDA is absent here, and disables what it built
        assert autocast(choose_backend(CUDA_TURING)).fast_dtype == torch.float16
        assert grad_scaler(choose_backend(CUDA_TURING)) is not None  # fp16 needs loss scaling
    assert grad_scaler(choose_backend(CUDA_AMPERE)) is None  # bf16 does not


def test_mps_and_cpu_load_in_their_dtype_with_adamw():
    assert load_kwargs(choose_backend(DeviceInfo("mps", bf16=False))) == {"use_safetensors": True,
                                                                          "dtype": torch.float16}
    cpu = choose_backend(DeviceInfo("cpu"))
    assert load_kwargs(cpu) == {"use_safetensors": True, "dtype": torch.float32}
    optimizer = make_optimizer(cpu, [torch.nn.Parameter(torch.zeros(2))], 1e-4, 0.0)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert autocast(cpu).__class__.__name__ == "nullcontext"


def test_the_device_query_reports_a_cuda_gpu(monkeypatch):
    """The one mock: torch's CUDA query answers as on an NVIDIA machine."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index=0: (20 * GiB, 24 * GiB))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "NVIDIA GeForce RTX 4090")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    device = trainer_device.probe_device()
    assert (device.kind, device.memory_total, device.memory_free, device.bf16) == ("cuda", 24 * GiB, 20 * GiB, True)
    assert choose_backend(device).name == ("QLoRA (CUDA)" if device.bitsandbytes else "LoRA (CUDA)")


def test_this_machine_trains_on_the_cpu():
    device = trainer_device.probe_device()
    assert device.kind == "cpu" and device.memory_free > 0


def test_memory_estimate_follows_the_backend_and_the_settings():
    settings = TrainSettings(rank=16, batch_size=4, seq_len=1024)
    qlora = estimate_memory(SEVEN_B, settings, choose_backend(CUDA_AMPERE))
    cpu = estimate_memory(SEVEN_B, settings, choose_backend(DeviceInfo("cpu")))
    assert 3.5 * GiB < qlora.weights < 5 * GiB  # 4-bit blocks, embeddings and head in 16 bits
    assert cpu.weights == SEVEN_B.parameters * 4
    assert qlora.optimizer * 4 == cpu.optimizer  # 8-bit states against fp32 ones
    assert qlora.activations < cpu.activations  # gradient checkpointing keeps a layer input, not all of it
    longer = estimate_memory(SEVEN_B, TrainSettings(rank=16, batch_size=4, seq_len=2048), choose_backend(CUDA_AMPERE))
    assert longer.activations > qlora.activations
    assert lora_parameters(SEVEN_B, 16, None) == 16 * 32 * (2 * (4096 + 4096) + 2 * (4096 + 1024) + 3 * (4096 + 14336))
    assert lora_parameters(SEVEN_B, 16, ("q_proj",)) == 16 * 32 * 8192


def test_a_plan_above_the_machine_is_refused_with_the_numbers_and_a_setting_that_fits():
    settings = TrainSettings(batch_size=8, seq_len=2048)
    small_gpu = DeviceInfo("cuda", "small", 8 * GiB, 7 * GiB, bf16=True, bitsandbytes=True)
    backend = choose_backend(small_gpu)
    memory = estimate_memory(SEVEN_B, settings, backend)
    with pytest.raises(PlanTooBig) as refused:
        check_memory(memory, small_gpu, settings, SEVEN_B, backend)
    assert "GB" in refused.value.message and "GPU memory free" in refused.value.message
    assert refused.value.hint.startswith("Try batch")
    laptop = DeviceInfo("cpu", "CPU", 8 * GiB, 6 * GiB)
    with pytest.raises(PlanTooBig) as refused:
        check_memory(estimate_memory(SEVEN_B, settings, choose_backend(laptop)), laptop, settings, SEVEN_B,
                     choose_backend(laptop))
    assert "smaller model" in refused.value.hint


def test_a_sequence_longer_than_the_context_is_refused():
    with pytest.raises(SequenceTooLong) as refused:
        check_sequence_length(TrainSettings(seq_len=65536), SEVEN_B)
    assert "65536" in refused.value.message and "32768" in refused.value.message


@pytest.mark.parametrize("change, word", [
    ({"rank": 0}, "Rank"), ({"learning_rate": 2.0}, "Learning rate"), ({"dropout": 1.5}, "Dropout"),
    ({"batch_size": 0}, "Batch size"), ({"target_modules": ("embed_tokens",)}, "embedding"),
    ({"target_modules": ("lm_head",)}, "output head"), ({"max_steps": 0}, "Steps"), ({"epochs": -1}, "Epochs")])
def test_settings_that_cannot_work_are_named(change, word):
    with pytest.raises(InvalidInput) as refused:
        TrainSettings.from_dict({**TrainSettings().to_dict(), **change}).checked()
    assert word in refused.value.message


def test_presets_and_steps():
    assert set(PRESETS) == {"quick", "balanced", "thorough"}
    for settings in PRESETS.values():
        settings.checked()
    assert PRESETS["quick"].rank < PRESETS["balanced"].rank < PRESETS["thorough"].rank
    assert preset("quick", seq_len=256).seq_len == 256
    assert TrainSettings(epochs=2, batch_size=4, grad_accumulation=2).total_steps(20) == 5  # ceil(2 × 20 / 8)
    assert TrainSettings(max_steps=7).total_steps(1000) == 7
    assert TrainSettings.from_dict(TrainSettings(target_modules=("q_proj",)).to_dict()).target_modules == ("q_proj",)


def test_a_python_without_the_training_stack_is_told_what_to_install(tmp_path):
    """A real interpreter without site-packages (-S -I): torch, peft and the rest are truly absent."""
    from engine.runtime.child import PROJECT_ROOT

    code = (f"import sys; sys.path.insert(0, {str(PROJECT_ROOT)!r})\n"
            "from engine.finetune.availability import require_training_stack\n"
            "from engine.finetune.errors import TrainingStackMissing\n"
            "try:\n    require_training_stack()\nexcept TrainingStackMissing as e:\n    print(e.message); print(e.hint)\n")
    out = subprocess.run([sys.executable, "-S", "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert "torch" in out.stdout and "peft" in out.stdout, out.stderr
    assert "-m pip install" in out.stdout and "README" in out.stdout
    from engine.finetune.availability import stack_status

    assert stack_status().ready  # and with the venv's packages, nothing is missing
