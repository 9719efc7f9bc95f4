"""Whether the training stack (torch, transformers, peft, accelerate) is installed, found without importing it.

The app asks before it shows the Fine-tune page's Train button; importing torch to find out would
cost seconds and hundreds of megabytes in the app process, which must never hold PyTorch.
`importlib.util.find_spec` only looks for the package on the path.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass

from engine.child_command import running_from_bundle
from engine.finetune.errors import TrainingStackMissing

# import name -> the name pip knows it by
REQUIRED = {"torch": "torch", "transformers": "transformers", "peft": "peft", "accelerate": "accelerate"}
CUDA_EXTRA = {"bitsandbytes": "bitsandbytes"}  # 4-bit QLoRA on NVIDIA GPUs only
# The bundle (packaging/) leaves PyTorch out (over 1 GB) and has no pip to add it with.
BUNDLE_HINT = ("This download of Ember cannot fine-tune: PyTorch is too large to ship with it. Install Ember "
               "from its source with the fine-tune extra (pip install -e '.[finetune]', see the README's "
               "Fine-tune section), or export the job and train it on another machine.")


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

    @property
    def installable(self) -> bool:
        """Whether Ember can install what is missing into the Python it runs on (not in the bundle)."""
        return not running_from_bundle()

    @property
    def missing_sentence(self) -> str:
        """What is missing, as a sentence ("" when nothing is)."""
        if self.ready:
            return ""
        verb = "is" if len(self.missing) == 1 else "are"
        return f"Fine-tuning needs {', '.join(self.missing)}, which {verb} not installed."

    @property
    def missing_message(self) -> str:
        """What is missing and how to get it, in a sentence or two ("" when nothing is)."""
        if self.ready:
            return ""
        if not self.installable:
            return f"{self.missing_sentence} {BUNDLE_HINT}"
        return f"{self.missing_sentence} Install the fine-tune extra: {self.install_command}."


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
    if not status.ready and not status.installable:
        raise TrainingStackMissing(status.missing_sentence, BUNDLE_HINT)
    if not status.ready:
        raise TrainingStackMissing(
            status.missing_sentence,
            f"Install the fine-tune extra: {status.install_command} (on an NVIDIA or Apple machine, install "
            "PyTorch's build for it first: see the README's Fine-tune section).")
    return status
