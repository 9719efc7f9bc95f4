"""What torch can train on here: CUDA, Apple MPS or the CPU, with its memory and bf16 support."""

from __future__ import annotations

import importlib.util

import torch

from engine.finetune.plan import DeviceInfo
from engine.runtime.hardware import probe_hardware

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def probe_device() -> DeviceInfo:
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info(0)
        return DeviceInfo("cuda", torch.cuda.get_device_name(0), int(total), int(free),
                          bool(torch.cuda.is_bf16_supported()), importlib.util.find_spec("bitsandbytes") is not None)
    hardware = probe_hardware(check_offload=False)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return DeviceInfo("mps", "Apple Silicon GPU", hardware.ram_total, hardware.ram_available, _mps_bf16())
    return DeviceInfo("cpu", f"CPU ({torch.get_num_threads()} threads)", hardware.ram_total, hardware.ram_available)


def _mps_bf16() -> bool:
    try:
        torch.ones(1, dtype=torch.bfloat16, device="mps")
        return True
    except (RuntimeError, TypeError):
        return False


def torch_dtype(name: str) -> torch.dtype:
    return DTYPES[name]
