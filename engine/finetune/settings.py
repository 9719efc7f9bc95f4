"""What a fine-tune does: LoRA shape, optimisation, length; presets, checks, and the step count.

Plain data: the page edits it, the job folder stores it (config.json), the trainer child reads it.
Target modules are Hugging Face module names; None means every linear projection of attention and
the MLP. Embeddings and the output head are never trained: llama.cpp's LoRA adapters cannot carry them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from engine.errors import InvalidInput

# What a user may never target: llama.cpp applies adapters to matrix multiplications of the blocks only.
FORBIDDEN_TARGETS = ("embed_tokens", "lm_head", "wte", "wpe", "embed_out", "word_embeddings", "output")


@dataclass(frozen=True)
class TrainSettings:
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None  # None: attention + MLP projections
    learning_rate: float = 2e-4
    epochs: float = 3.0  # used when max_steps is None
    max_steps: int | None = None
    batch_size: int = 4
    grad_accumulation: int = 1
    seq_len: int = 512
    warmup_steps: int = 10
    weight_decay: float = 0.0
    seed: int = 0
    eval_every: int = 25  # steps between held-out evaluations (and probe answers)
    checkpoint_every: int = 25  # steps between checkpoints (one is also written at the end)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules) if self.target_modules is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainSettings:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in (data or {}).items() if k in known}
        if values.get("target_modules") is not None:
            values["target_modules"] = tuple(values["target_modules"])
        return cls(**values)

    @property
    def examples_per_step(self) -> int:
        return self.batch_size * self.grad_accumulation

    def total_steps(self, train_examples: int) -> int:
        """Optimizer steps for a dataset of this many training examples."""
        if self.max_steps is not None:
            return self.max_steps
        return max(1, math.ceil(self.epochs * train_examples / self.examples_per_step))

    def checked(self) -> TrainSettings:
        """Itself, or InvalidInput naming the first setting that cannot work and what to choose."""
        _between("Rank", self.rank, 1, 512, "8 to 64 is usual")
        _positive("Alpha", self.alpha, "usually twice the rank")
        if not 0 <= self.dropout < 1:
            raise InvalidInput(f"Dropout {self.dropout} is not between 0 and 1.", "0 to 0.1 is usual.")
        if not 0 < self.learning_rate < 1:
            raise InvalidInput(f"Learning rate {self.learning_rate} is out of range.", "1e-4 to 2e-3 is usual for LoRA.")
        if self.max_steps is None:
            _positive("Epochs", self.epochs, "1 to 5 is usual")
        else:
            _between("Steps", self.max_steps, 1, 10_000_000, "give at least one step")
        _between("Batch size", self.batch_size, 1, 4096, "1 to 16 is usual")
        _between("Gradient accumulation", self.grad_accumulation, 1, 4096, "1 means none")
        _between("Sequence length", self.seq_len, 16, 1_048_576, "128 to 2048 tokens is usual")
        _between("Warmup steps", self.warmup_steps, 0, 10_000_000, "0 means none")
        _between("Evaluation interval", self.eval_every, 1, 10_000_000, "in steps")
        _between("Checkpoint interval", self.checkpoint_every, 1, 10_000_000, "in steps")
        if self.weight_decay < 0:
            raise InvalidInput("Weight decay cannot be negative.", "0 to 0.1 is usual.")
        for name in self.target_modules or ():
            if name in FORBIDDEN_TARGETS or "embed" in name:
                raise InvalidInput(f"The target module {name!r} is an embedding or the output head.",
                                   "llama.cpp adapters carry only the blocks' projections: leave it out.")
        if self.target_modules is not None and not self.target_modules:
            raise InvalidInput("No target module is chosen.", "Choose at least one, or leave the default.")
        return self


PRESETS: dict[str, TrainSettings] = {
    # a first look: one pass, a small adapter, a higher rate so a few steps show an effect
    "quick": TrainSettings(rank=8, alpha=16, dropout=0.0, learning_rate=5e-4, epochs=1, warmup_steps=5),
    "balanced": TrainSettings(rank=16, alpha=32, dropout=0.05, learning_rate=2e-4, epochs=3, warmup_steps=10),
    # more capacity and passes, a gentler rate and accumulation for steadier steps
    "thorough": TrainSettings(rank=32, alpha=64, dropout=0.05, learning_rate=1e-4, epochs=5, grad_accumulation=2,
                              warmup_steps=20),
}


def preset(name: str, **overrides) -> TrainSettings:
    if name not in PRESETS:
        raise InvalidInput(f"There is no preset named {name!r}.", f"Choose one of: {', '.join(PRESETS)}.")
    return replace(PRESETS[name], **overrides)


def _between(label: str, value, low, high, advice: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"{label} {value!r} is not a whole number from {low} to {high}.", f"{advice.capitalize()}.")


def _positive(label: str, value, advice: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or math.isinf(value):
        raise InvalidInput(f"{label} {value!r} must be a positive number.", f"{advice.capitalize()}.")
