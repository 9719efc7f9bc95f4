"""The LoRA adapter on a host's live context: set, change its scale or remove it without reloading the model.

llama.cpp applies adapters while it computes (the base weights are never changed), and
`llama_set_adapters_lora` swaps them on a context in place; only the KV cache must go, since it was
computed with the previous weights. Adapters stay loaded once read (a few MB each, freed with the
model); only the last few are kept, so switching back and forth reads no file again.

Runs inside the host process (it imports llama_cpp).
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from pathlib import Path

import llama_cpp

from engine.gguf.adapter import inspect_adapter
from engine.gguf.inspect import inspect_gguf

KEEP_LOADED = 4


class AdapterError(Exception):
    """The adapter could not be set; the message says why (the host stays up with the previous one)."""


class AdapterSlot:
    def __init__(self, llama) -> None:
        self.llama = llama
        self.path: str | None = None
        self.scale: float = 0.0
        self._loaded: OrderedDict[str, int] = OrderedDict()  # path -> adapter pointer

    def set(self, path: str | None, scale: float = 1.0) -> dict:
        """Apply `path` at `scale` (None, or scale 0: the base model alone). Returns the state."""
        scale = float(scale)
        if path is None or scale == 0.0:
            self._apply(None, 0.0)
            self.path, self.scale = (str(path) if path else None), (scale if path else 0.0)
            return self.state()
        path = str(Path(path))
        adapter = self._load(path)
        self._apply(adapter, scale)
        self.path, self.scale = path, scale
        self._forget_old()
        return self.state()

    def state(self) -> dict:
        return {"lora": self.path, "lora_scale": self.scale}

    def _load(self, path: str):
        if path in self._loaded:
            self._loaded.move_to_end(path)
            return self._loaded[path]
        try:  # the architecture and every tensor's width checked against the model, before llama.cpp
            inspect_adapter(path, inspect_gguf(self.llama.model_path))
        except Exception as exc:  # a typed BadModelFile or an OSError: said as it is
            raise AdapterError(str(exc)) from exc
        adapter = llama_cpp.llama_adapter_lora_init(self.llama._model.model, path.encode("utf-8"))
        if not adapter:
            raise AdapterError(f"llama.cpp could not load the adapter {Path(path).name} (its tensors do not fit "
                               "this model).")
        self._loaded[path] = adapter
        return adapter

    def _apply(self, adapter, scale: float) -> None:
        ctx = self.llama._ctx.ctx
        if adapter is None:
            result = llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(scale)
            result = llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, scales)
        if result != 0:
            raise AdapterError(f"llama.cpp refused to set the adapter (code {result}).")
        self.llama.reset()  # the cached prompt was computed with the old weights: evaluate it again

    def _forget_old(self) -> None:
        while len(self._loaded) > KEEP_LOADED:
            old_path, old = next(iter(self._loaded.items()))
            if old_path == self.path:
                break
            del self._loaded[old_path]
            llama_cpp.llama_adapter_lora_free(old)
