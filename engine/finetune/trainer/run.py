"""One training run in the child: the model with LoRA, its data, optimizer and schedule, and a step.

`TrainingRun.build` loads everything a job's config names; `step(n)` does optimizer step n (all its
micro-batches); `evaluate()` is the held-out loss; `answer(questions)` the adapter's greedy replies
to the probe questions; `save`/`restore` a checkpoint (adapter weights, optimizer, schedule, random
states). The plan uses the same object to measure a few real steps.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict

from engine.finetune.dataset import Dataset
from engine.finetune.errors import DatasetEmpty
from engine.finetune.plan import BackendConfig, DeviceInfo, choose_backend
from engine.finetune.settings import TrainSettings
from engine.finetune.trainer import data
from engine.finetune.trainer import model as base_model
from engine.finetune.trainer.device import probe_device
from engine.finetune.trainer.setup import autocast, grad_scaler, make_optimizer

MAX_GRAD_NORM = 1.0
FINAL_LR_SHARE = 0.1  # the cosine schedule ends at a tenth of the learning rate
PROBE_TOKENS = 48


@dataclass
class TrainingRun:
    settings: TrainSettings
    device: DeviceInfo
    backend: BackendConfig
    tokenizer: object
    model: object
    optimizer: object
    scheduler: object
    scaler: object
    train: list[data.Tokenized]
    held_out: list[data.Tokenized]
    stats: dict
    total_steps: int

    @classmethod
    def build(cls, config: dict, dataset_folder: Path, emit) -> TrainingRun:
        settings = TrainSettings.from_dict(config["settings"])
        torch.set_num_threads(int(config.get("threads") or 1))
        device = probe_device()
        backend = choose_backend(device)
        emit({"type": "device", "device": device.to_dict(), "backend": backend.to_dict()})
        dense = base_model.dense_base(Path(config["base_model"]["path"]), Path(config["dense_cache"]), emit)
        emit({"type": "stage", "message": "Loading the model…"})
        tokenizer = base_model.load_tokenizer(dense)
        dataset = Dataset.read(dataset_folder, config["mode"])
        train, cut, dropped = data.tokenize_all(tokenizer, dataset.train, settings.seq_len)
        held_out, held_cut, held_dropped = data.tokenize_all(tokenizer, dataset.held_out, settings.seq_len)
        stats = data.token_stats(train, held_out, cut + held_cut, dropped + held_dropped)
        emit({"type": "dataset", **stats})
        if not train:
            raise DatasetEmpty(f"No training example has anything to learn within {settings.seq_len} tokens: "
                               f"{dropped} of {len(dataset.train)} have their answer beyond that length.",
                               "Raise the sequence length, or shorten the examples.")
        model = base_model.add_lora(base_model.load_base(dense, backend), settings)
        optimizer = make_optimizer(backend, model.parameters(), settings.learning_rate, settings.weight_decay)
        total = settings.total_steps(len(train))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(settings.warmup_steps, total))
        return cls(settings, device, backend, tokenizer, model, optimizer, scheduler, grad_scaler(backend),
                   train, held_out, stats, total)

    @property
    def torch_device(self) -> str:
        return self.backend.device

    def step(self, step: int, indices: list[int] | None = None) -> tuple[float, int, float]:
        """Optimizer step `step` (1-based): (mean loss per trained token, tokens seen, seconds)."""
        started = time.perf_counter()
        self.model.train()
        settings = self.settings
        if indices is None:
            indices = data.step_indices(len(self.train), settings.seed, step - 1, settings.examples_per_step)
        items = [self.train[i] for i in indices]
        micro = [items[i:i + settings.batch_size] for i in range(0, len(items), settings.batch_size)]
        weights = [sum(t.trained_tokens for t in batch) for batch in micro]
        total_weight = sum(weights) or 1
        loss_sum, tokens = 0.0, 0
        for batch, weight in zip(micro, weights, strict=True):
            inputs = data.collate(batch, self.tokenizer.pad_token_id, self.torch_device)
            with autocast(self.backend):
                loss = self.model(**inputs).loss * (weight / total_weight)
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            loss_sum += float(loss.detach())
            tokens += int(inputs["attention_mask"].sum())
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], MAX_GRAD_NORM)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum, tokens, time.perf_counter() - started

    @property
    def learning_rate(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Mean loss per trained token over the held-out examples (None when there are none)."""
        if not self.held_out:
            return None
        self.model.eval()
        total, weight = 0.0, 0
        size = self.settings.batch_size
        for start in range(0, len(self.held_out), size):
            batch = self.held_out[start:start + size]
            inputs = data.collate(batch, self.tokenizer.pad_token_id, self.torch_device)
            with autocast(self.backend):
                loss = float(self.model(**inputs).loss)
            n = sum(t.trained_tokens for t in batch)
            total += loss * n
            weight += n
        return total / weight if weight else None

    @torch.no_grad()
    def answer(self, questions: list[str], max_new_tokens: int = PROBE_TOKENS) -> list[str]:
        """The model's greedy reply to each question, through its chat template."""
        self.model.eval()
        answers = []
        for question in questions:
            prompt = data.render(self.tokenizer, [{"role": "user", "content": question}], generation_prompt=True)
            inputs = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt").to(self.torch_device)
            with autocast(self.backend):
                output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                             pad_token_id=self.tokenizer.pad_token_id, use_cache=True)
            answers.append(self.tokenizer.decode(output[0][inputs["input_ids"].shape[1]:],
                                                 skip_special_tokens=True).strip())
        return answers

    # --- checkpoints ----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        torch.save(get_peft_model_state_dict(self.model), folder / "adapter.pt")
        torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                    "scaler": self.scaler.state_dict() if self.scaler else None,
                    "rng": _rng_state()}, folder / "trainer.pt")

    def restore(self, folder: Path) -> None:
        # weights_only: tensors and plain values, never code (the optimizer, scheduler and RNG states are that)
        adapter = torch.load(folder / "adapter.pt", map_location=self.torch_device, weights_only=True)
        set_peft_model_state_dict(self.model, adapter)
        state = torch.load(folder / "trainer.pt", map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])

    def save_adapter(self, folder: Path) -> None:
        """The plain peft folder (adapter_config.json + adapter_model.safetensors) for use elsewhere."""
        self.model.save_pretrained(str(folder))


def _schedule(warmup: int, total: int):
    """Linear warmup, then a cosine down to FINAL_LR_SHARE of the rate."""
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return FINAL_LR_SHARE + (1 - FINAL_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def _rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
