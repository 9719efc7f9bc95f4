"""The plan before training: which backend on this machine, how much memory, how long, or why not.

Pure Python, so the app can show it and tests can check it on any machine:
- `choose_backend(device)`: CUDA → QLoRA (4-bit NF4 base, bf16 or fp16 compute, paged 8-bit AdamW,
  gradient checkpointing); Apple MPS → LoRA in bf16 or fp16; CPU → LoRA in fp32. `device` is what
  torch reports in the trainer child (the app never imports torch).
- `estimate_memory(shape, settings, backend)`: weights, LoRA, gradients, optimizer, activations.
- `check_plan(...)`: the refusals, each with the numbers and what to change.
The figures that an estimate would only guess (time per step, the real peak) are measured on a few
real steps in the trainer child; `Plan` holds both.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from engine.finetune.errors import PlanTooBig, SequenceTooLong
from engine.finetune.settings import TrainSettings
from engine.gguf.inspect import ModelInfo
from engine.progress_text import human_duration, human_size

GiB = 2**30
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
PROCESS_OVERHEAD = {"cpu": int(0.6 * GiB), "mps": int(0.6 * GiB), "cuda": int(0.5 * GiB)}  # torch's own, CUDA context
SAFETY = 0.9  # plan to use at most this share of the free memory


@dataclass(frozen=True)
class DeviceInfo:
    """What torch sees in the trainer child (or, in tests, what a machine would report)."""

    kind: str  # "cuda", "mps" or "cpu"
    name: str = ""
    memory_total: int = 0  # VRAM for CUDA; RAM for CPU and MPS (unified memory)
    memory_free: int = 0
    bf16: bool = False  # the device computes in bfloat16 (CUDA compute capability 8+, recent MPS)
    bitsandbytes: bool = False  # 4-bit quantization is installed (CUDA only)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DeviceInfo:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class BackendConfig:
    """How the trainer sets torch up; `name` is what the page shows."""

    name: str  # "QLoRA (CUDA)", "LoRA (CUDA)", "LoRA (Apple MPS)", "LoRA (CPU)"
    device: str  # torch device: "cuda", "mps", "cpu"
    compute_dtype: str  # "bfloat16", "float16", "float32"
    weights_dtype: str  # how the frozen base is held: "nf4" or the compute dtype
    optimizer: str  # "paged_adamw_8bit" or "adamw"
    gradient_checkpointing: bool
    notes: tuple[str, ...] = ()

    @property
    def quantized(self) -> bool:
        return self.weights_dtype == "nf4"

    def to_dict(self) -> dict:
        return {**asdict(self), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: dict) -> BackendConfig:
        return cls(**{**data, "notes": tuple(data.get("notes", ()))})


def choose_backend(device: DeviceInfo) -> BackendConfig:
    if device.kind == "cuda":
        dtype = "bfloat16" if device.bf16 else "float16"
        if device.bitsandbytes:
            return BackendConfig("QLoRA (CUDA)", "cuda", dtype, "nf4", "paged_adamw_8bit", True)
        return BackendConfig("LoRA (CUDA)", "cuda", dtype, dtype, "adamw", True,
                             ("bitsandbytes is not installed: the base stays in 16 bits (more memory than "
                              "QLoRA). pip install bitsandbytes for 4-bit.",))
    if device.kind == "mps":
        dtype = "bfloat16" if device.bf16 else "float16"
        return BackendConfig("LoRA (Apple MPS)", "mps", dtype, dtype, "adamw", False)
    return BackendConfig("LoRA (CPU)", "cpu", "float32", "float32", "adamw", False,
                         ("No GPU that PyTorch can use: training runs on the CPU in fp32, which is slow.",))


# --- the model's shape and the memory it needs --------------------------------------------------

@dataclass(frozen=True)
class ModelShape:
    architecture: str
    parameters: int
    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    vocab: int
    context: int | None

    @property
    def head_dim(self) -> int:
        return self.hidden // max(1, self.heads)

    @classmethod
    def from_model_info(cls, info: ModelInfo, feed_forward_length: int | None = None) -> ModelShape:
        hidden = info.embedding_length or 0
        return cls(info.architecture, info.parameters, info.block_count or 0, hidden,
                   feed_forward_length or 4 * hidden, info.head_count or 1, info.head_count_kv or info.head_count or 1,
                   info.vocab_size or 32_000, info.context_length)


def lora_parameters(shape: ModelShape, rank: int, targets: tuple[str, ...] | None) -> int:
    """Trainable numbers: rank × (inputs + outputs) of each targeted projection, in every layer."""
    kv = shape.kv_heads * shape.head_dim
    sizes = {"q_proj": (shape.hidden, shape.hidden), "k_proj": (shape.hidden, kv), "v_proj": (shape.hidden, kv),
             "o_proj": (shape.hidden, shape.hidden), "gate_proj": (shape.hidden, shape.ffn),
             "up_proj": (shape.hidden, shape.ffn), "down_proj": (shape.ffn, shape.hidden)}
    chosen = targets or ATTENTION + MLP
    per_layer = sum(rank * sum(sizes.get(name, (shape.hidden, shape.hidden))) for name in chosen)
    return per_layer * shape.layers


@dataclass(frozen=True)
class MemoryPlan:
    weights: int
    lora: int
    gradients: int
    optimizer: int
    activations: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.lora + self.gradients + self.optimizer + self.activations + self.overhead

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total}

    def describe(self) -> str:
        parts = ", ".join(f"{name} {human_size(getattr(self, name))}" for name in
                          ("weights", "lora", "gradients", "optimizer", "activations", "overhead"))
        return f"{human_size(self.total)} ({parts})"


_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "nf4": 0.5 + 0.04}  # NF4: 4 bits + block scales


def estimate_memory(shape: ModelShape, settings: TrainSettings, backend: BackendConfig) -> MemoryPlan:
    """Peak memory of one training step at this batch and sequence length.

    Activations kept for the backward pass, per token and layer, in the compute dtype: about 10 × hidden
    (norms, q/k/v, attention output, residuals) + 4 × ffn (gate, up, their product, down's input) +
    heads × sequence (attention weights); with gradient checkpointing only each layer's input is kept,
    plus one layer recomputed. The logits (and their gradient and softmax) are 3 × vocab × 4 bytes per token.
    """
    embeddings = shape.vocab * shape.hidden
    if backend.quantized:  # bitsandbytes keeps the embeddings and the head in the compute dtype
        weights = int((shape.parameters - embeddings) * _DTYPE_BYTES["nf4"] + embeddings * 2)
    else:
        weights = int(shape.parameters * _DTYPE_BYTES[backend.weights_dtype])
    n_lora = lora_parameters(shape, settings.rank, settings.target_modules)
    lora = gradients = n_lora * 4  # adapters train in fp32 whatever the base's dtype
    optimizer = n_lora * (2 if backend.optimizer == "paged_adamw_8bit" else 8)
    tokens = settings.batch_size * settings.seq_len
    element = _DTYPE_BYTES.get(backend.compute_dtype, 4)
    per_layer_token = 10 * shape.hidden + 4 * shape.ffn + shape.heads * settings.seq_len
    if backend.gradient_checkpointing:
        kept = tokens * (shape.layers * shape.hidden + per_layer_token) * element
    else:
        kept = tokens * shape.layers * per_layer_token * element
    activations = int(kept + tokens * shape.vocab * 4 * 3)
    return MemoryPlan(weights, lora, gradients, optimizer, activations, PROCESS_OVERHEAD.get(backend.device, GiB))


# --- the plan and its refusals -------------------------------------------------------------------

@dataclass(frozen=True)
class TokenStats:
    """The dataset in the model's tokens, as the trainer tokenized it."""

    train_examples: int
    held_out_examples: int
    min_tokens: int
    max_tokens: int
    mean_tokens: float
    truncated: int  # examples cut at the sequence length
    dropped: int  # examples with nothing left to learn after the cut (an answer beyond the length)
    trained_tokens: int  # tokens with a loss (all of a text; the assistant's part of a chat)

    @classmethod
    def from_dict(cls, data: dict) -> TokenStats:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    backend: BackendConfig
    device: DeviceInfo
    settings: TrainSettings
    tokens: TokenStats
    total_steps: int
    memory: MemoryPlan  # the estimate
    measured_peak: int | None = None  # bytes, on a few real steps
    step_s: float | None = None  # measured seconds per optimizer step
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total_s(self) -> float | None:
        return self.step_s * self.total_steps if self.step_s is not None else None

    def lines(self) -> list[str]:
        """The plan in words, a line per figure."""
        out = [f"Backend: {self.backend.name} on {self.device.name or self.device.kind} "
               f"({self.backend.compute_dtype}, optimizer {self.backend.optimizer}"
               f"{', gradient checkpointing' if self.backend.gradient_checkpointing else ''})",
               f"Data: {self.tokens.train_examples} training and {self.tokens.held_out_examples} held-out examples, "
               f"{self.tokens.min_tokens}–{self.tokens.max_tokens} tokens (mean {self.tokens.mean_tokens:.0f})"
               + (f", {self.tokens.truncated} cut at {self.settings.seq_len}" if self.tokens.truncated else "")
               + (f", {self.tokens.dropped} dropped (no answer within the length)" if self.tokens.dropped else ""),
               f"Steps: {self.total_steps} (batch {self.settings.batch_size} × accumulation "
               f"{self.settings.grad_accumulation}, sequence length {self.settings.seq_len})",
               f"Memory (estimate): {self.memory.describe()}"]
        if self.measured_peak is not None:
            out.append(f"Memory (measured on real steps): {human_size(self.measured_peak)} at peak")
        if self.step_s is not None:
            out.append(f"Time: {self.step_s:.2f} s per step (measured), about {human_duration(self.total_s)} in all")
        out.extend(self.backend.notes)
        out.extend(self.notes)
        return out

    def to_dict(self) -> dict:
        return {"backend": self.backend.to_dict(), "device": self.device.to_dict(),
                "settings": self.settings.to_dict(), "tokens": self.tokens.to_dict(),
                "total_steps": self.total_steps, "memory": self.memory.to_dict(),
                "measured_peak": self.measured_peak, "step_s": self.step_s, "total_s": self.total_s,
                "notes": list(self.notes)}


def check_sequence_length(settings: TrainSettings, shape: ModelShape) -> None:
    if shape.context and settings.seq_len > shape.context:
        raise SequenceTooLong(
            f"The sequence length {settings.seq_len} is longer than the model's context of {shape.context} tokens.",
            f"Choose a sequence length of at most {shape.context} tokens.")


def check_memory(memory: MemoryPlan, device: DeviceInfo, settings: TrainSettings, shape: ModelShape,
                 backend: BackendConfig) -> None:
    """PlanTooBig when the estimate does not fit the device's free memory, with a setting that would."""
    available = int(device.memory_free * SAFETY)
    if memory.total <= available:
        return
    where = "GPU memory" if device.kind == "cuda" else "memory"
    advice = []
    for batch, seq in ((max(1, settings.batch_size // 2), settings.seq_len), (1, settings.seq_len),
                       (1, max(16, settings.seq_len // 2)), (1, max(16, settings.seq_len // 4))):
        smaller = TrainSettings.from_dict({**settings.to_dict(), "batch_size": batch, "seq_len": seq})
        if estimate_memory(shape, smaller, backend).total <= available:
            accumulation = max(1, math.ceil(settings.examples_per_step / batch))
            advice.append(f"batch {batch} with gradient accumulation {accumulation} and sequence length {seq} "
                          f"would need {human_size(estimate_memory(shape, smaller, backend).total)}")
            break
    hint = (f"Try {advice[0]}." if advice else
            "Even batch 1 at a quarter of the length does not fit: use a smaller model"
            + (" or a machine with a GPU." if device.kind == "cpu" else "."))
    raise PlanTooBig(f"Training would need about {memory.describe()}, but this machine has "
                     f"{human_size(device.memory_free)} of {where} free (Ember plans for at most {human_size(available)}).",
                     hint)
