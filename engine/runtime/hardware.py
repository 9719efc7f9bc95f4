"""What this machine has: cores, memory, GPUs, and whether this llama.cpp build can offload to them.

The probe never fails: anything it cannot find is reported as absent. It never loads llama.cpp (or
a CUDA library) into the calling process: whether the build can offload is read from which ggml
backend libraries the llama_cpp package ships. How many layers to offload is the fit's business
(engine.runtime.fit). The text parsers are separate functions so that a test can feed them another
machine's output.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

APPLE_GPU_SHARE = 2 / 3  # Metal may use about two thirds of unified memory
MiB = 2**20


@dataclass(frozen=True)
class GpuInfo:
    name: str
    vram_total: int
    vram_free: int
    backend: str  # "cuda" or "metal"


@dataclass(frozen=True)
class HardwareInfo:
    cpu_cores: int  # logical cores this process may use
    ram_total: int
    ram_available: int
    gpu_offload_supported: bool = False
    gpus: list[GpuInfo] = field(default_factory=list)
    system: str = ""
    machine: str = ""
    physical_cores: int | None = None

    @property
    def summary(self) -> str:
        """One line for people: cores, free RAM, GPUs and their free memory."""
        gpus = ", ".join(f"{g.name} ({g.vram_free / 1e9:.1f} GB free)" for g in self.gpus) if self.gpus else "no GPU"
        if self.gpus and not self.gpu_offload_supported:
            gpus += " (this llama.cpp build is CPU-only)"
        return f"{self.cpu_cores} cores, {self.ram_available / 1e9:.1f} GB of {self.ram_total / 1e9:.1f} GB RAM free, {gpus}"

    @property
    def backend(self) -> str:
        """Where offloaded layers would go: CPU, CUDA or Metal."""
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
    cores = info.cpu_cores if info else _logical_cores()
    return max(1, cores - 1)


def probe_hardware(check_offload: bool = True) -> HardwareInfo:
    """Probe this machine; never raises. `check_offload=False` assumes a found GPU can be used."""
    system, machine = platform.system(), platform.machine()
    total, available = _memory(system)
    gpus = _nvidia_gpus()
    if system == "Darwin" and machine == "arm64":
        gpus = [apple_gpu(total, available)]
    supported = bool(gpus) and (_offload_supported() if check_offload else True)
    return HardwareInfo(_logical_cores(), total, available, supported, gpus, system, machine,
                        _physical_cores(system))


def apple_gpu(ram_total: int, ram_available: int) -> GpuInfo:
    """Apple Silicon: the GPU shares the RAM; treat about two thirds of it as VRAM."""
    return GpuInfo("Apple Silicon GPU", int(ram_total * APPLE_GPU_SHARE), int(ram_available * APPLE_GPU_SHARE),
                   "metal")


# -- probes: each returns something sane or "absent" -------------------------------------------

def _logical_cores() -> int:
    """Cores this process may run on (a container or `taskset` can allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _physical_cores(system: str) -> int | None:
    try:
        if system == "Linux":
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                return parse_cpuinfo(f.read())
        if system == "Darwin":
            return int(_run(["sysctl", "-n", "hw.physicalcpu"])) or None
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return None


def _memory(system: str) -> tuple[int, int]:
    """(total, available) RAM in bytes; (0, 0) when unknown."""
    try:
        if system == "Linux" or os.path.exists("/proc/meminfo"):
            with open("/proc/meminfo", encoding="utf-8") as f:
                return parse_meminfo(f.read())
        if system == "Darwin":
            total = int(_run(["sysctl", "-n", "hw.memsize"]))
            try:
                available = parse_vm_stat(_run(["vm_stat"]))
            except (OSError, ValueError, subprocess.SubprocessError):
                available = 0
            return total, min(total, available) or total // 2
        if system == "Windows":
            return _windows_memory()
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return 0, 0


def parse_meminfo(text: str) -> tuple[int, int]:
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name.strip()] = int(parts[0]) * 1024  # kB
    total = values.get("MemTotal", 0)
    available = values.get("MemAvailable")
    if available is None:  # kernels before 3.14
        available = values.get("MemFree", 0) + values.get("Cached", 0)
    return total, min(available, total)


def parse_cpuinfo(text: str) -> int | None:
    """Distinct (physical id, core id) pairs; None where the kernel does not say (many ARM boards)."""
    cores, physical = set(), "0"
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if name == "physical id":
            physical = value
        elif name == "core id":
            cores.add((physical, value))
    return len(cores) or None


def parse_vm_stat(text: str) -> int:
    """macOS `vm_stat`: free + inactive + speculative + purgeable pages, in bytes."""
    lines = text.splitlines()
    page = 4096
    if lines and "page size of" in lines[0]:
        page = int(lines[0].split("page size of")[1].split()[0])
    pages = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip() in ("Pages free", "Pages inactive", "Pages speculative", "Pages purgeable"):
            pages += int(value.strip().rstrip("."))
    return pages * page


def _windows_memory() -> tuple[int, int]:
    import ctypes

    class MemoryStatusEx(ctypes.Structure):
        _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong), ("total", ctypes.c_ulonglong),
                    ("available", ctypes.c_ulonglong), ("page_total", ctypes.c_ulonglong),
                    ("page_available", ctypes.c_ulonglong), ("virtual_total", ctypes.c_ulonglong),
                    ("virtual_available", ctypes.c_ulonglong), ("extended", ctypes.c_ulonglong)]

    status = MemoryStatusEx(length=ctypes.sizeof(MemoryStatusEx))
    if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
        return int(status.total), int(status.available)
    return 0, 0


GPU_BACKEND_LIBRARIES = ("ggml-cuda", "ggml-metal", "ggml-vulkan", "ggml-hip", "ggml-sycl")


def _offload_supported() -> bool:
    """Whether the installed llama.cpp build has a GPU backend, from the libraries it ships.

    Found without importing llama_cpp: importing it would load its backends (and with them CUDA's
    libraries, hundreds of MB) into the app process, which only ever talks to model processes."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return False
    return has_gpu_backend([Path(p) for p in spec.submodule_search_locations])


def has_gpu_backend(package_dirs: list[Path]) -> bool:
    """True when a GPU backend library of ggml (CUDA, Metal, Vulkan, HIP, SYCL) is in the package's folders."""
    for folder in package_dirs:
        for lib in (folder / "lib", folder):
            if not lib.is_dir():
                continue
            for path in lib.iterdir():
                if any(name in path.name for name in GPU_BACKEND_LIBRARIES):
                    return True
    return False


def _nvidia_gpus() -> list[GpuInfo]:
    """NVIDIA GPUs from nvidia-ml-py (pynvml) when it is installed, else from `nvidia-smi`."""
    try:
        import pynvml
    except ImportError:
        return _nvidia_smi_gpus()
    try:
        pynvml.nvmlInit()
    except Exception:
        return []
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            gpus.append(GpuInfo(name, int(memory.total), int(memory.free), "cuda"))
        return gpus
    except Exception:
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _nvidia_smi_gpus() -> list[GpuInfo]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        return parse_nvidia_smi(_run(["nvidia-smi", "--query-gpu=name,memory.total,memory.free",
                                      "--format=csv,noheader,nounits"]))
    except (OSError, ValueError, subprocess.SubprocessError):
        return []


def parse_nvidia_smi(text: str) -> list[GpuInfo]:
    """`nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv,noheader,nounits` (MiB)."""
    gpus = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.rsplit(",", 2)]
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            gpus.append(GpuInfo(fields[0], int(fields[1]) * MiB, int(fields[2]) * MiB, "cuda"))
    return gpus


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=3, check=True).stdout
