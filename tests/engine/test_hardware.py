"""The hardware probe and the GPU layer choice for described machines."""

from __future__ import annotations

from engine.hub.inspect import inspect_gguf
from engine.runtime.hardware import GpuInfo, HardwareInfo, choose_gpu_layers, default_threads, probe_hardware

GB = 2**30


def test_probe_reports_this_machine():
    info = probe_hardware()
    assert info.cpu_cores >= 1
    assert info.ram_total > info.ram_available > 0
    assert info.backend in ("CPU", "CUDA", "Metal")
    assert default_threads(info) == max(1, info.cpu_cores - 1)


def machine(vram_free: int, supported: bool = True) -> HardwareInfo:
    gpus = [GpuInfo("test GPU", 24 * GB, vram_free, "cuda")] if vram_free else []
    return HardwareInfo(8, 32 * GB, 16 * GB, supported, gpus)


def test_gpu_layers_for_described_machines(smollm2_path):
    model = inspect_gguf(smollm2_path)
    everything = model.block_count + 1
    assert choose_gpu_layers(model, machine(24 * GB), 4096) == everything
    partial = choose_gpu_layers(model, machine(200 * 2**20), 4096)
    assert 0 < partial < everything
    assert choose_gpu_layers(model, machine(0), 4096) == 0
    assert choose_gpu_layers(model, machine(24 * GB, supported=False), 4096) == 0
    assert machine(24 * GB).backend == "CUDA" and machine(24 * GB, False).backend == "CPU"
