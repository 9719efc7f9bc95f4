"""What this machine can run: cores, memory, GPUs, and how many layers to offload.

The probe never fails: anything it cannot find is reported as absent. `choose_gpu_layers` takes a
HardwareInfo, so tests (and the Models page's "fits this machine") can describe any machine.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field

VRAM_MARGIN = 0.9  # use at most 90% of free VRAM


@dataclass(frozen=True)
class GpuInfo:
    name: str
    vram_total: int
    vram_free: int
    backend: str  # "cuda" or "metal"


@dataclass(frozen=True)
class HardwareInfo:
    cpu_cores: int
    ram_total: int
    ram_available: int
    gpu_offload_supported: bool = False
    gpus: list[GpuInfo] = field(default_factory=list)
    system: str = ""
    machine: str = ""

    @property
    def backend(self) -> str:
        if self.gpu_offload_supported and self.gpus:
            return "Metal" if self.gpus[0].backend == "metal" else "CUDA"
        return "CPU"

    @property
    def vram_free(self) -> int:
        return sum(g.vram_free for g in self.gpus) if self.gpu_offload_supported else 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["backend"] = self.backend
        return data


def default_threads(info: HardwareInfo | None = None) -> int:
    """cores − 1 (at least 1): one core stays free for the window."""
    cores = info.cpu_cores if info else (os.cpu_count() or 2)
    return max(1, cores - 1)


def _memory() -> tuple[int, int]:
    try:
        values = {}
        with open("/proc/meminfo") as f:
            for line in f:
                name, rest = line.split(":", 1)
                values[name] = int(rest.split()[0]) * 1024
        return values.get("MemTotal", 0), values.get("MemAvailable", values.get("MemFree", 0))
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            total = int(subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True,
                                       timeout=2).stdout.strip())
            return total, total // 2  # macOS reports no simple "available"; assume half
        except (OSError, ValueError, subprocess.SubprocessError):
            return 0, 0
    if platform.system() == "Windows":
        import ctypes

        class Status(ctypes.Structure):
            _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong), ("total", ctypes.c_ulonglong),
                        ("avail", ctypes.c_ulonglong), ("pt", ctypes.c_ulonglong), ("pa", ctypes.c_ulonglong),
                        ("vt", ctypes.c_ulonglong), ("va", ctypes.c_ulonglong), ("ve", ctypes.c_ulonglong)]

        status = Status(length=ctypes.sizeof(Status))
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            return status.total, status.avail
    return 0, 0


def _offload_supported() -> bool:
    try:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:
        return False


def _nvidia_gpus() -> list[GpuInfo]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            gpus.append(GpuInfo(name.decode() if isinstance(name, bytes) else name,
                                int(memory.total), int(memory.free), "cuda"))
        pynvml.nvmlShutdown()
        return gpus
    except Exception:
        return []


def probe_hardware(check_offload: bool = True) -> HardwareInfo:
    """Probe this machine. `check_offload=False` avoids importing llama_cpp (slow) in the app process."""
    total, available = _memory()
    system, machine = platform.system(), platform.machine()
    gpus = _nvidia_gpus()
    if system == "Darwin" and machine == "arm64":
        # unified memory: Metal can use about two thirds of it
        gpus = [GpuInfo("Apple Silicon GPU", total * 2 // 3, available * 2 // 3, "metal")]
    # llama_cpp is imported only when there is a GPU to offload to
    supported = bool(gpus) and (_offload_supported() if check_offload else True)
    return HardwareInfo(os.cpu_count() or 1, total, available, supported, gpus, system, machine)


def choose_gpu_layers(model, hw: HardwareInfo, context_length: int) -> int:
    """All layers (+ the output layer) when weights + KV fit in free VRAM, a proportional part when not, else 0."""
    if not hw.gpu_offload_supported or not hw.gpus or model is None:
        return 0
    from engine.hub.inspect import estimate_memory

    layers = (model.block_count or 0) + 1
    need = estimate_memory(model, context_length).total
    room = hw.vram_free * VRAM_MARGIN
    if need <= room:
        return layers
    return max(0, int(layers * room / need))
