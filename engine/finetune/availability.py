"""Whether the training stack (torch, transformers, peft, accelerate) is installed, found without importing it.

The app asks before it shows the Fine-tune page's Train button; importing torch to find out would
cost seconds and hundreds of megabytes in the app process, which must never hold PyTorch.
`importlib.util.find_spec` only looks for the package on the path.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass

from engine.finetune.errors import TrainingStackMissing

# import name -> the name pip knows it by
REQUIRED = {"torch": "torch", "transformers": "transformers", "peft": "peft", "accelerate": "accelerate"}
CUDA_EXTRA = {"bitsandbytes": "bitsandbytes"}  # 4-bit QLoRA on NVIDIA GPUs only


@dataclass(frozen=True)
class StackStatus:
    missing: tuple[str, ...]  # pip names of what is absent
    quantization_missing: bool  # bitsandbytes absent (QLoRA on CUDA falls back to LoRA)

    @property
    def ready(self) -> bool:
        return not self.missing

    @property
    def install_command(self) -> str:
        return install_command(self.missing)


def install_command(missing: tuple[str, ...] = ()) -> str:
    """The command that installs what is missing into the Python Ember runs on (all of the stack if none)."""
    names = " ".join(missing or tuple(REQUIRED.values()))
    return f'"{sys.executable}" -m pip install {names}'


def stack_status() -> StackStatus:
    missing = tuple(pip for name, pip in REQUIRED.items() if importlib.util.find_spec(name) is None)
    quantization_missing = importlib.util.find_spec("bitsandbytes") is None
    return StackStatus(missing, quantization_missing)


def require_training_stack() -> StackStatus:
    """The status, or TrainingStackMissing naming what is absent and the command that installs it."""
    status = stack_status()
    if not status.ready:
        raise TrainingStackMissing(
            f"Fine-tuning needs {', '.join(status.missing)}, which {'is' if len(status.missing) == 1 else 'are'} "
            "not installed.",
            f"Install the fine-tune extra: {status.install_command} (on an NVIDIA or Apple machine, install "
            "PyTorch's build for it first: see the README's Fine-tune section).")
    return status
