"""A backend (plan.BackendConfig) turned into torch objects: how the base loads, the optimizer, autocast.

Kept apart from the training loop so that the CUDA and MPS configurations can be checked on a CPU
machine: building a BitsAndBytesConfig needs no GPU, only the optimizer needs bitsandbytes itself.
"""

from __future__ import annotations

import contextlib

import torch

from engine.finetune.errors import TrainingStackMissing
from engine.finetune.plan import BackendConfig
from engine.finetune.trainer.device import torch_dtype


def load_kwargs(backend: BackendConfig) -> dict:
    """Keyword arguments of `from_pretrained` for the frozen base on this backend (safetensors only, never a pickle)."""
    dtype = torch_dtype(backend.compute_dtype)
    return {"use_safetensors": True, **_placement(backend, dtype)}


def _placement(backend: BackendConfig, dtype) -> dict:
    if backend.quantized:
        from transformers import BitsAndBytesConfig

        return {"quantization_config": BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype,
                    bnb_4bit_use_double_quant=True),
                "dtype": dtype, "device_map": {"": 0}}
    if backend.device == "cuda":
        return {"dtype": dtype, "device_map": {"": 0}}
    return {"dtype": dtype}  # CPU and MPS: loaded on the CPU, then moved


def make_optimizer(backend: BackendConfig, parameters, learning_rate: float, weight_decay: float):
    params = [p for p in parameters if p.requires_grad]
    if backend.optimizer == "paged_adamw_8bit":
        try:
            import bitsandbytes
        except ImportError as exc:
            raise TrainingStackMissing("QLoRA needs bitsandbytes, which is not installed.",
                                       "pip install bitsandbytes (NVIDIA GPUs only).") from exc
        return bitsandbytes.optim.PagedAdamW8bit(params, lr=learning_rate, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)


def autocast(backend: BackendConfig):
    """Mixed precision on a GPU (the LoRA weights stay fp32, the base computes in 16 bits); none on the CPU."""
    if backend.device in ("cuda", "mps") and backend.compute_dtype != "float32":
        return torch.autocast(backend.device, dtype=torch_dtype(backend.compute_dtype))
    return contextlib.nullcontext()


def grad_scaler(backend: BackendConfig):
    """fp16 gradients underflow without loss scaling (bf16 has fp32's range and needs none)."""
    if backend.device == "cuda" and backend.compute_dtype == "float16":
        return torch.amp.GradScaler("cuda")
    return None
