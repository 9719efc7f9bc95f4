"""The self-test's teacher-forced comparison: llama.cpp + the GGUF adapter against PyTorch + the peft adapter.

Both read the same token sequences (the model's own chat template, the HF tokenizer's ids) and give
their next-token distributions at every position. If the export is right they agree as closely as
the base model does on its own (llama.cpp computes with the quantized weights, PyTorch with their
dequantized copy): a small KL divergence and the same top token almost everywhere. The base alone is
measured too, so the report can say how much of the difference is the adapter's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from llama_cpp import Llama
from peft import PeftModel
from transformers import AutoModelForCausalLM

from engine.finetune.trainer.data import render
from engine.finetune.trainer.model import dense_base, load_tokenizer
from engine.finetune.weights_files import require_safetensors
from engine.runtime.adapters import AdapterSlot

MAX_TOKENS = 160
CLEAR_LEAD = 0.3


def run_request(request_path: Path, emit) -> None:
    """request: base_gguf, dense, peft, adapter_gguf, conversations (lists of messages) and texts, threads."""
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    threads = int(request.get("threads") or 1)
    torch.set_num_threads(threads)
    dense = dense_base(Path(request["base_gguf"]), Path(request["dense"]), emit)  # made here for an imported adapter
    tokenizer = load_tokenizer(dense)
    sequences = [tokenizer(render(tokenizer, messages), add_special_tokens=False)["input_ids"][:MAX_TOKENS]
                 for messages in request.get("conversations", [])]
    sequences += [tokenizer(text, add_special_tokens=True)["input_ids"][:MAX_TOKENS] for text in request.get("texts", [])]
    sequences = [s for s in sequences if len(s) > 1]
    if not sequences:
        raise ValueError("the comparison needs at least one sequence of two tokens or more")
    emit({"type": "stage", "message": "Computing the logits in PyTorch…"})
    model = AutoModelForCausalLM.from_pretrained(str(dense), dtype=torch.float32, use_safetensors=True).eval()
    torch_base = _torch_logits(model, sequences)
    require_safetensors(Path(request["peft"]))  # peft would fall back to a pickled adapter_model.bin
    model = PeftModel.from_pretrained(model, request["peft"]).eval()
    torch_adapter = _torch_logits(model, sequences)
    emit({"type": "stage", "message": "Computing the logits in llama.cpp…"})
    llama = Llama(model_path=request["base_gguf"], n_ctx=max(len(s) for s in sequences) + 8, n_threads=threads,
                  n_threads_batch=threads, logits_all=True, verbose=False)
    llama_base = _llama_logits(llama, sequences)
    AdapterSlot(llama).set(request["adapter_gguf"], float(request.get("scale", 1.0)))
    llama_adapter = _llama_logits(llama, sequences)
    emit({"type": "compared", "positions": sum(len(s) for s in sequences), "sequences": len(sequences),
          "adapter": agreement(torch_adapter, llama_adapter), "base": agreement(torch_base, llama_base),
          "adapter_effect": agreement(torch_base, torch_adapter)})


@torch.no_grad()
def _torch_logits(model, sequences: list[list[int]]) -> list[np.ndarray]:
    return [model(input_ids=torch.tensor([s])).logits[0].float().numpy() for s in sequences]


def _llama_logits(llama, sequences: list[list[int]]) -> list[np.ndarray]:
    out = []
    for sequence in sequences:
        llama.reset()
        llama.eval(sequence)
        out.append(np.array(llama.scores[: len(sequence)], dtype=np.float32))
    return out


def agreement(reference: list[np.ndarray], other: list[np.ndarray]) -> dict:
    """Mean and largest KL(reference ‖ other) per position, and how often their top tokens agree: at every
    position, and where the reference is decided (its top token leads the next by CLEAR_LEAD in
    probability; a near tie may flip on rounding alone)."""
    kls, same, decided = [], [], []
    for ref, oth in zip(reference, other, strict=True):
        p, q = _log_softmax(ref), _log_softmax(oth)
        kls.extend((np.exp(p) * (p - q)).sum(axis=-1).tolist())
        same.extend((ref.argmax(-1) == oth.argmax(-1)).tolist())
        top2 = np.sort(np.exp(p), axis=-1)[:, -2:]
        decided.extend((top2[:, 1] - top2[:, 0] >= CLEAR_LEAD).tolist())
    same_arr, decided_arr = np.array(same), np.array(decided)
    clear = float(same_arr[decided_arr].mean()) if decided_arr.any() else 1.0
    return {"kl_mean": float(np.mean(kls)), "kl_max": float(np.max(kls)), "top1": float(same_arr.mean()),
            "top1_decided": clear, "decided_positions": int(decided_arr.sum())}


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
