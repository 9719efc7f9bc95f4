"""Will this file run on this machine, how many layers go to the GPU, and how fast? Before and after download.

Before download only the file name and size are known, so the model's shape comes from rules of
thumb (below); after download `inspect_gguf` gives the real layers and KV cache size. Memory is
weights + KV cache (f16) at the chosen context + compute buffers, as engine.gguf.memory counts it.
`layers_on_gpu` is the one rule for the GPU split: the fit shows it and the runtime host loads with it.

Speed: generating a token reads every weight once, so tokens/s ≈ bandwidth × EFFICIENCY / weight
bytes (RAM bandwidth measured once on this machine; GPU bandwidth assumed). After a chat, the
measured speed calibrates later estimates: they are multiplied by the ratio measured / predicted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.config import load_settings, update_settings
from engine.gguf.inspect import ModelInfo
from engine.gguf.memory import MemoryEstimate, compute_allowance, estimate_memory
from engine.paths import EmberPaths
from engine.runtime.bandwidth import memory_bandwidth
from engine.runtime.hardware import HardwareInfo, probe_hardware

VRAM_MARGIN = 0.9  # use at most 90% of free VRAM
EFFICIENCY = 0.6  # llama.cpp decode reaches roughly 50-70% of the memory bandwidth
CUDA_BANDWIDTH_ASSUMED = 300e9  # a mid-range card; calibration corrects it after the first chat
CALIBRATION_KEY = "speed_calibration"

# Bits per weight of common GGUF quantizations (llama.cpp's figures, embeddings included, rounded).
BITS_PER_WEIGHT = {
    "F32": 32, "F16": 16, "BF16": 16, "Q8_0": 8.5, "Q6_K": 6.6, "Q5_K_M": 5.7, "Q5_K_S": 5.5, "Q5_1": 6.0,
    "Q5_0": 5.5, "Q4_K_M": 4.85, "Q4_K_S": 4.6, "Q4_K_XL": 5.0, "Q4_1": 5.0, "Q4_0": 4.5, "IQ4_NL": 4.5,
    "IQ4_XS": 4.3, "Q3_K_L": 4.3, "Q3_K_M": 3.9, "Q3_K_S": 3.5, "IQ3_M": 3.7, "IQ3_XS": 3.3, "IQ3_XXS": 3.1,
    "Q2_K": 3.0, "IQ2_M": 2.7, "IQ2_S": 2.5, "IQ2_XS": 2.3, "IQ2_XXS": 2.1, "IQ1_M": 1.8, "IQ1_S": 1.6,
    "MXFP4": 4.25,
}
DEFAULT_BITS = 5.0
KV_PER_TOKEN_PER_SQRT_B = 48 * 1024  # f16 K+V bytes per token ≈ 48 KiB × √(parameters in billions)
LAYERS_BY_SIZE = [(1.5, 24), (4, 28), (10, 32), (20, 40), (40, 64), (80, 80), (float("inf"), 126)]
GUESSED_VOCAB = 65_536

LABELS = {"full_gpu": "full GPU offload", "partial": "partial ({n} layers)", "cpu": "CPU only",
          "none": "does not fit"}


@dataclass(frozen=True)
class ModelShape:
    """What the fit needs to know about a model; `from_header` False means estimated from name and size."""

    weights: int
    layers: int
    memory: MemoryEstimate
    from_header: bool


def guess_shape(file_size: int, quantization: str | None, context_length: int) -> ModelShape:
    """Rules of thumb from size and quantization (GQA models such as Llama 3, Qwen 2.5, Mistral).

    parameters ≈ size × 8 / bits per weight; layers from a size table; KV cache ≈ 48 KiB per token ×
    √(billions of parameters) (Llama 3 8B: 128 KiB; older models without GQA need up to 4× more).
    """
    bits = BITS_PER_WEIGHT.get((quantization or "").upper(), DEFAULT_BITS)
    billions = file_size * 8 / bits / 1e9
    layers = next(n for limit, n in LAYERS_BY_SIZE if billions <= limit)
    kv = int(KV_PER_TOKEN_PER_SQRT_B * math.sqrt(max(billions, 0.01)) * context_length)
    overhead = compute_allowance(file_size, GUESSED_VOCAB)
    return ModelShape(file_size, layers, MemoryEstimate(file_size, kv, overhead), from_header=False)


def shape_from_info(info: ModelInfo, context_length: int) -> ModelShape:
    memory = estimate_memory(info, context_length)
    return ModelShape(memory.weights, info.block_count or guess_shape(info.file_size, info.quantization, 1).layers,
                      memory, from_header=True)


def layers_on_gpu(need: int, layers: int, hw: HardwareInfo) -> int:
    """How many of `layers` to offload: all when `need` bytes fit in 90% of the free VRAM, else the share
    that fits; 0 on CPU or with a build that cannot offload."""
    room = hw.vram_free * VRAM_MARGIN if hw.gpu_offload_supported and hw.gpus else 0
    if room <= 0:
        return 0
    if need <= room:
        return layers
    return max(0, min(layers, int(layers * room / need)))


def gpu_share(gpu_layers: int, layers: int) -> float:
    """The share of the weights on the GPU (-1 layers: all of them, as llama.cpp reads it)."""
    return 1.0 if gpu_layers < 0 else min(1.0, gpu_layers / layers) if layers else 0.0


def choose_gpu_layers(model: ModelInfo | None, hw: HardwareInfo, context_length: int) -> int:
    """GPU layers for an inspected model: its blocks + the output layer, as llama.cpp counts them."""
    if model is None:
        return 0
    layers = (model.block_count or 0) + 1
    return layers_on_gpu(estimate_memory(model, context_length).total, layers, hw)


@dataclass(frozen=True)
class FitEstimate:
    kind: str  # full_gpu, partial, cpu, none
    gpu_layers: int
    total_layers: int
    memory: MemoryEstimate
    ram_needed: int
    vram_needed: int
    tokens_per_s: float | None
    speed_source: str  # estimate, calibrated, measured
    from_header: bool
    context_length: int

    @property
    def fits(self) -> bool:
        return self.kind != "none"

    @property
    def label(self) -> str:
        return LABELS[self.kind].format(n=self.gpu_layers)

    @property
    def speed_label(self) -> str:
        if not self.tokens_per_s or not self.fits:
            return "-"
        word = {"measured": "measured", "calibrated": "estimate, calibrated"}.get(self.speed_source, "estimate")
        digits = 1 if self.tokens_per_s < 10 else 0
        return f"≈ {self.tokens_per_s:.{digits}f} tokens/s ({word})"

    def to_dict(self) -> dict:
        return {"fit": self.kind, "label": self.label, "gpu_layers": self.gpu_layers,
                "total_layers": self.total_layers, "memory_total": self.memory.total,
                "weights": self.memory.weights, "kv_cache": self.memory.kv_cache, "ram_needed": self.ram_needed,
                "vram_needed": self.vram_needed, "tokens_per_s": self.tokens_per_s,
                "speed_source": self.speed_source, "from_header": self.from_header,
                "context_length": self.context_length}


def gpu_bandwidth(hw: HardwareInfo, ram_bandwidth: float) -> float:
    """Metal shares the RAM (the CPU copy is a floor for it); CUDA's is assumed, then calibrated."""
    return ram_bandwidth if hw.backend == "Metal" else CUDA_BANDWIDTH_ASSUMED


def predict_tokens_per_s(weights: int, gpu_share: float, hw: HardwareInfo, ram_bandwidth: float,
                         efficiency: float = EFFICIENCY) -> float:
    """1 / (time to read the CPU's share of the weights + time to read the GPU's share)."""
    seconds = weights * (1 - gpu_share) / (ram_bandwidth * efficiency)
    if gpu_share:
        seconds += weights * gpu_share / (gpu_bandwidth(hw, ram_bandwidth) * efficiency)
    return 1 / seconds if seconds > 0 else 0.0


def estimate_fit(hw: HardwareInfo, context_length: int, *, file_size: int | None = None,
                 quantization: str | None = None, info: ModelInfo | None = None,
                 bandwidth: float | None = None, calibration: float = 1.0,
                 measured_tps: float | None = None) -> FitEstimate:
    """Fit and speed of one model: from its header (`info`) when downloaded, else from size + quantization."""
    if info is not None:
        shape = shape_from_info(info, context_length)
    elif file_size:
        shape = guess_shape(file_size, quantization, context_length)
    else:
        raise ValueError("estimate_fit needs the file size or the inspected model")
    need, layers = shape.memory.total, shape.layers + 1  # + the output layer, as llama.cpp counts
    gpu_layers = layers_on_gpu(need, layers, hw)
    share = gpu_share(gpu_layers, layers)
    vram = int(need * share)
    ram = need - vram
    if ram > hw.ram_available:
        kind = "none"
    else:
        kind = "full_gpu" if gpu_layers >= layers else "partial" if gpu_layers else "cpu"
    speed, source = None, "estimate"
    if measured_tps:
        speed, source = measured_tps, "measured"
    elif bandwidth:
        speed = predict_tokens_per_s(shape.weights, share, hw, bandwidth) * calibration
        source = "calibrated" if calibration != 1.0 else "estimate"
    return FitEstimate(kind, gpu_layers, layers, shape.memory, ram, vram, speed, source, shape.from_header,
                       context_length)


def speed_calibration(paths: EmberPaths, backend: str) -> float:
    """The ratio measured / predicted tokens/s seen on this machine for this backend (1.0 before any)."""
    entry = load_settings(paths.settings).get(CALIBRATION_KEY, {}, kind=dict).get(backend)
    ratio = entry.get("ratio") if isinstance(entry, dict) else None
    return float(ratio) if isinstance(ratio, (int, float)) and ratio > 0 else 1.0


def record_measured_speed(paths: EmberPaths, measured_tps: float, predicted_tps: float, backend: str, *,
                          model_path: str | None = None, models_repo=None) -> float:
    """Remember a measured speed: the model's own figure (when `models_repo` is given) and the ratio
    measured / predicted (a running mean over the last few chats) that calibrates later estimates.
    `predicted_tps` is the uncalibrated prediction. Returns the new ratio."""
    if models_repo is not None and model_path:
        models_repo.set_measured_speed(model_path, measured_tps)
    if measured_tps <= 0 or predicted_tps <= 0:
        return speed_calibration(paths, backend)
    ratio = measured_tps / predicted_tps
    result = {}

    def change(settings) -> None:
        table = dict(settings.get(CALIBRATION_KEY, {}, kind=dict))
        old = table.get(backend)
        old = old if isinstance(old, dict) else {}  # a hand-edited entry of another type starts afresh
        samples, old_ratio = old.get("samples", 0), old.get("ratio", ratio)
        n = min(samples, 4) if isinstance(samples, int) and samples > 0 else 0  # the last ~5 measurements count
        old_ratio = old_ratio if isinstance(old_ratio, (int, float)) and old_ratio > 0 else ratio
        new = (float(old_ratio) * n + ratio) / (n + 1)
        table[backend] = {"ratio": new, "samples": n + 1}
        settings.set(CALIBRATION_KEY, table)
        result["ratio"] = new

    update_settings(paths.settings, change)
    return result["ratio"]


MIN_TOKENS_TO_LEARN = 32  # a shorter reply measures start-up more than decoding speed


def learn_from_reply(paths: EmberPaths, models_repo, model_path: str, info: ModelInfo, gpu_layers: int,
                     context_length: int, completion_tokens: int, tokens_per_s: float | None, *,
                     hw: HardwareInfo | None = None, bandwidth: float | None = None) -> float | None:
    """After a chat reply: keep the model's measured tokens/s and calibrate this machine's estimates by
    comparing it with what `estimate_fit` would have predicted for the same model and GPU layers.
    Returns the new calibration ratio, or None when the reply was too short to measure anything."""
    if completion_tokens < MIN_TOKENS_TO_LEARN or not tokens_per_s:
        return None
    if hw is None:
        hw = probe_hardware()
    if bandwidth is None:
        bandwidth = memory_bandwidth(paths)
    shape = shape_from_info(info, context_length)
    share = gpu_share(gpu_layers, shape.layers + 1)
    predicted = predict_tokens_per_s(shape.weights, share, hw, bandwidth)
    return record_measured_speed(paths, tokens_per_s, predicted, hw.backend, model_path=model_path,
                                 models_repo=models_repo)
