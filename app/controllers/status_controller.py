"""What the status bar says: the loaded model, the backend (CPU / CUDA / Metal, GPU layers, threads)
and the memory Ember uses (this process plus its model processes), refreshed every few seconds."""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, QTimer, Signal

from app.services import Services
from engine.runtime.process_memory import resident_bytes
from engine.runtime.registry import ROLES

REFRESH_MS = 3000


def describe_memory(app: int | None, model: int | None) -> str:
    def mb(value: int) -> str:
        return f"{value / 2**30:.1f} GB" if value >= 2**30 else f"{value / 2**20:.0f} MB"

    if app is None:
        return "Memory: unknown"
    if model is None:
        return f"Memory: {mb(app)}"
    return f"Memory: {mb(app + model)} (model {mb(model)})"


class StatusController(QObject):
    model_text = Signal(str)
    backend_text = Signal(str)
    memory_text = Signal(str)

    def __init__(self, services: Services, parent=None) -> None:
        super().__init__(parent)
        self.services = services
        self.hardware = None
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh_memory)
        self.timer.start()

    def set_hardware(self, info) -> None:
        self.hardware = info
        self.refresh_model()

    def refresh_model(self) -> None:
        model = self.services.chat_model
        machine = self.hardware.backend if self.hardware is not None else "CPU"
        if model is None:
            self.model_text.emit("No model loaded")
            self.backend_text.emit(f"Backend: {machine} available")
        else:
            info = model.host.info
            if info.get("remote"):
                self.model_text.emit(f"Model: {model.name}")
                self.backend_text.emit(f"Remote: {info['remote']}")
                self.refresh_memory()
                return
            layers = int(info.get("gpu_layers") or 0)
            backend = machine if layers else "CPU"
            gpu = "all layers on the GPU" if layers < 0 else f"{layers} GPU layer{'' if layers == 1 else 's'}"
            self.model_text.emit(f"Model: {model.name}")
            threads = info.get("threads", "?")
            self.backend_text.emit(f"{backend} · {gpu} · {threads} thread{'' if threads == 1 else 's'}")
        self.refresh_memory()

    def refresh_memory(self) -> None:
        hosts = [self.services.hosts.get(role) for role in ROLES]
        used = [loaded.host.memory_used() for loaded in hosts if loaded is not None]
        models = sum(u for u in used if u) if any(used) else None
        self.memory_text.emit(describe_memory(resident_bytes(os.getpid()), models))
