"""The base model in PyTorch: a dense copy of the GGUF (made once, cached), loaded for the backend, with LoRA.

Training against the dequantized weights of the very GGUF the user chats with makes the adapter fit
the model llama.cpp runs. transformers dequantizes a GGUF at load (about 20 s for 135M parameters
here) and refuses to train or save a model it marks as GGUF-quantized, so the dense copy is saved
once, in safetensors, under EMBER_HOME/finetune/base/<sha256>/, and every later load (0.1 s) and
the QLoRA load (bitsandbytes cannot be combined with a GGUF file) start from it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine.finetune.errors import ArchitectureNotTrainable
from engine.finetune.plan import BackendConfig
from engine.finetune.settings import FORBIDDEN_TARGETS, TrainSettings
from engine.finetune.trainer.setup import load_kwargs
from engine.finetune.weights_files import require_safetensors
from engine.gguf.reader import read_header

READY = "ember-dense.json"  # written last: a folder without it is a conversion that did not finish
DENSE_FP32_MAX_PARAMETERS = 2_000_000_000  # above this the copy is fp16 (half the disk; the values fit)
NOT_CAUSAL = {"t5", "t5encoder", "umt5", "bert", "nomic-bert", "jina-bert-v2"}


def trainable_architectures() -> set[str]:
    """GGUF architectures this transformers can load as a causal language model."""
    names: set[str] = set()
    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
        names |= set(GGUF_SUPPORTED_ARCHITECTURES)
    except ImportError:
        pass
    try:
        from transformers.integrations.gguf.utils import GGUF_ARCHS
        names |= set(GGUF_ARCHS)
    except ImportError:
        pass
    names |= {name.replace("_", "") for name in names} | {name.replace("_", "-") for name in names}
    return names - NOT_CAUSAL - {"general", "tokenizer"}


def check_architecture(gguf_path: Path) -> str:
    arch = str(read_header(gguf_path).metadata.get("general.architecture", "unknown"))
    if arch not in trainable_architectures():
        raise ArchitectureNotTrainable(
            f"transformers cannot load {arch} models from a GGUF file, so Ember cannot train {gguf_path.name} "
            "directly.",
            "Download the model's original Hugging Face repository (safetensors) on the Models page and train "
            "from that: the adapter will still work with this GGUF.")
    return arch


def dense_base(gguf_path: Path, cache: Path, emit) -> Path:
    """The dense copy of `gguf_path` in `cache` (made now if missing). Returns the folder."""
    if (cache / READY).is_file():
        return cache
    check_architecture(gguf_path)
    emit({"type": "stage", "message": f"Converting {gguf_path.name} for PyTorch (once per model)…"})
    tmp = cache.with_name(f"{cache.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except ValueError as exc:
        if "not supported" in str(exc):
            raise ArchitectureNotTrainable(f"transformers cannot load {gguf_path.name}: {exc}") from exc
        raise
    parameters = sum(p.numel() for p in model.parameters())
    if parameters > DENSE_FP32_MAX_PARAMETERS:
        model = model.to(torch.float16)
    # Loaded from a GGUF, the model is marked as quantized and refuses to save; its weights are dense now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / READY).write_text(json.dumps({"gguf": str(gguf_path), "parameters": parameters}), encoding="utf-8")
    cache.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, cache)
    except OSError:  # another job made it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
        if not (cache / READY).is_file():
            raise
    return cache


def load_tokenizer(dense: Path):
    tokenizer = AutoTokenizer.from_pretrained(str(dense))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base(dense: Path, backend: BackendConfig):
    """The frozen base, on the backend's device, in its dtype (4-bit NF4 for QLoRA)."""
    model = AutoModelForCausalLM.from_pretrained(str(dense), **load_kwargs(backend))
    if backend.device == "mps":
        model = model.to("mps")
    if backend.quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=backend.gradient_checkpointing)
    elif backend.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model.config.use_cache = False
    return model


def target_modules(model, settings: TrainSettings) -> list[str]:
    """The user's targets, or the distinct names of the linear layers inside the blocks."""
    if settings.target_modules:
        return list(settings.target_modules)
    names = set()
    for full_name, module in model.named_modules():
        leaf = full_name.rsplit(".", 1)[-1]
        is_linear = isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt")
        if is_linear and "." in full_name and leaf not in FORBIDDEN_TARGETS and "embed" not in leaf:
            names.add(leaf)
    return sorted(names)


def add_lora(model, settings: TrainSettings):
    torch.manual_seed(settings.seed)  # the same seed starts from the same adapter
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=target_modules(model, settings), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def load_with_adapter(dense: Path, peft_folder: Path, backend: BackendConfig):
    """The base with a trained adapter (for the self-test's comparison and probe answers)."""
    base = AutoModelForCausalLM.from_pretrained(str(dense), **load_kwargs(backend))
    require_safetensors(peft_folder)  # peft would fall back to a pickled adapter_model.bin
    return PeftModel.from_pretrained(base, str(peft_folder)).eval()
