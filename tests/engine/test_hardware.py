"""The hardware probe, its text parsers, and the GPU layer choice for described machines."""

from __future__ import annotations

import json

from engine.gguf.inspect import ModelInfo, inspect_gguf
from engine.gguf.memory import estimate_memory
from engine.runtime.fit import choose_gpu_layers
from engine.runtime.hardware import (
    GpuInfo,
    HardwareInfo,
    apple_gpu,
    default_threads,
    has_gpu_backend,
    parse_cpuinfo,
    parse_meminfo,
    parse_nvidia_smi,
    parse_vm_stat,
    probe_hardware,
)

GB = 2**30


def test_probe_reports_this_machine():
    info = probe_hardware()
    assert info.cpu_cores >= 1
    assert info.physical_cores is None or 1 <= info.physical_cores <= info.cpu_cores * 4
    assert info.ram_total >= info.ram_available > 0
    assert info.backend in ("CPU", "CUDA", "Metal")
    assert default_threads(info) == max(1, info.cpu_cores - 1)
    assert default_threads() >= 1
    data = json.loads(json.dumps(info.to_dict()))
    assert data["backend"] == info.backend and data["cpu_cores"] == info.cpu_cores


def test_default_threads_leaves_one_core():
    assert default_threads(HardwareInfo(1, GB, GB)) == 1
    assert default_threads(HardwareInfo(16, GB, GB)) == 15


def machine(vram_free: int, supported: bool = True, vram_total: int = 24 * GB) -> HardwareInfo:
    gpus = [GpuInfo("test GPU", vram_total, vram_free, "cuda")] if vram_free else []
    return HardwareInfo(8, 32 * GB, 16 * GB, supported, gpus)


def big_model() -> ModelInfo:
    """Described like a Llama-3-8B Q4_K_M: 32 layers, GQA with 8 KV heads, ~4.6 GB of weights."""
    return ModelInfo(path="big.gguf", file_name="big.gguf", file_size=4_920_000_000, architecture="llama",
                     name="big", parameters=8_030_000_000, quantization="Q4_K_M", weights_bytes=4_900_000_000,
                     context_length=8192, block_count=32, embedding_length=4096, head_count=32, head_count_kv=8,
                     vocab_size=128256)


def test_gpu_layers_for_the_real_small_model(smollm2_path):
    model = inspect_gguf(smollm2_path)
    everything = model.block_count + 1
    assert choose_gpu_layers(model, machine(24 * GB), 4096) == everything
    partial = choose_gpu_layers(model, machine(200 * 2**20), 4096)
    assert 0 < partial < everything
    assert choose_gpu_layers(model, machine(0), 4096) == 0
    assert choose_gpu_layers(model, machine(24 * GB, supported=False), 4096) == 0
    assert choose_gpu_layers(None, machine(24 * GB), 4096) == 0
    assert machine(24 * GB).backend == "CUDA" and machine(24 * GB, False).backend == "CPU"


def test_gpu_layers_for_a_big_model():
    model = big_model()
    need = estimate_memory(model, 4096).total
    assert choose_gpu_layers(model, machine(24 * GB), 4096) == 33
    small_gpu = machine(2 * GB, vram_total=2 * GB)
    partial = choose_gpu_layers(model, small_gpu, 4096)
    assert 0 < partial < 33
    assert partial == int(33 * 2 * GB * 0.9 / need)  # the share of the layers that fits
    # just enough VRAM for everything but the 10% margin: not all layers
    assert choose_gpu_layers(model, machine(need, vram_total=need), 4096) < 33
    assert choose_gpu_layers(model, machine(int(need / 0.9) + 1), 4096) == 33
    # a longer context needs more KV cache, so fewer layers fit
    assert choose_gpu_layers(model, small_gpu, 8192) <= partial


def test_apple_silicon_shares_its_memory():
    total, available = 16 * GB, 12 * GB
    gpu = apple_gpu(total, available)
    assert gpu.backend == "metal" and gpu.vram_total == int(total * 2 / 3)
    mac = HardwareInfo(10, total, available, True, [gpu], "Darwin", "arm64", 10)
    assert mac.backend == "Metal" and mac.vram_free == int(available * 2 / 3)
    assert choose_gpu_layers(big_model(), mac, 4096) == 33


def test_summary_names_cores_memory_and_gpus():
    cpu = HardwareInfo(8, 16 * 10**9, 9 * 10**9)
    assert cpu.summary == "8 cores, 9.0 GB of 16.0 GB RAM free, no GPU"
    cuda = HardwareInfo(8, 16 * 10**9, 9 * 10**9, True, [GpuInfo("RTX 4070", 12 * 10**9, 11 * 10**9, "cuda")])
    assert cuda.summary.endswith("RTX 4070 (11.0 GB free)")
    no_offload = HardwareInfo(8, 16 * 10**9, 9 * 10**9, False, [GpuInfo("RTX 4070", 12 * 10**9, 11 * 10**9, "cuda")])
    assert "CPU-only" in no_offload.summary


def test_meminfo_parser():
    text = "MemTotal:       16318412 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\nCached: 5 kB\n"
    assert parse_meminfo(text) == (16318412 * 1024, 8000000 * 1024)
    old_kernel = "MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 200 kB\n"
    assert parse_meminfo(old_kernel) == (1000 * 1024, 300 * 1024)
    assert parse_meminfo("") == (0, 0)


def test_cpuinfo_parser_counts_physical_cores():
    two_sockets_with_smt = "".join(
        f"processor\t: {n}\nphysical id\t: {socket}\ncore id\t\t: {core}\n\n"
        for n, (socket, core) in enumerate([(s, c) for s in (0, 1) for c in (0, 1, 2, 3)] * 2))
    assert parse_cpuinfo(two_sockets_with_smt) == 8
    assert parse_cpuinfo("processor : 0\nBogoMIPS : 50.00\n") is None  # many ARM boards say nothing


def test_nvidia_smi_parser():
    text = "NVIDIA GeForce RTX 4090, 24564, 23000\nNVIDIA H100 80GB HBM3, 81559, 81000\n\n"
    gpus = parse_nvidia_smi(text)
    assert [g.name for g in gpus] == ["NVIDIA GeForce RTX 4090", "NVIDIA H100 80GB HBM3"]
    assert gpus[0].vram_total == 24564 * 2**20 and gpus[1].vram_free == 81000 * 2**20
    assert {g.backend for g in gpus} == {"cuda"}
    assert parse_nvidia_smi("No devices were found\n") == []


def test_vm_stat_parser():
    text = ("Mach Virtual Memory Statistics: (page size of 16384 bytes)\n"
            "Pages free:                               10000.\nPages active:                  99999.\n"
            "Pages inactive:                           20000.\nPages speculative:                   500.\n"
            "Pages purgeable:                            100.\n")
    assert parse_vm_stat(text) == (10000 + 20000 + 500 + 100) * 16384


def test_offload_support_is_read_from_the_shipped_backend_libraries(tmp_path):
    cpu_only, cuda = tmp_path / "cpu" / "llama_cpp", tmp_path / "cuda" / "llama_cpp"
    for package, names in ((cpu_only, ["libllama.so", "libggml-cpu.so", "libggml-base.so"]),
                           (cuda, ["libllama.so", "libggml-cpu.so", "libggml-cuda.so"])):
        (package / "lib").mkdir(parents=True)
        for name in names:
            (package / "lib" / name).write_bytes(b"")
    assert not has_gpu_backend([cpu_only])
    assert has_gpu_backend([cuda])


def test_probing_never_loads_llama_cpp_into_the_process():
    import subprocess
    import sys

    code = ("import sys; from engine.runtime.hardware import probe_hardware; probe_hardware(); "
            "print('llama_cpp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
