"""Why a fine-tune cannot start or did not finish: typed errors with the numbers and what to change.

Each has a `kind`, a short word that travels from the trainer child to the parent in an "error"
event and turns back into the same class there (`error_from_event`), so a refusal measured in the
child (a sequence longer than the model's context, an architecture transformers cannot load) reads
the same as one found in the app.
"""

from __future__ import annotations

from engine.errors import EmberError


class FineTuneError(EmberError):
    """A fine-tune step failed; the job folder keeps what was done (checkpoints, the dataset)."""

    kind = "failed"
    default_hint = "See the job's log in its folder; the job resumes from its last checkpoint."

    def to_event(self) -> dict:
        return {"type": "error", "kind": self.kind, "error": self.message, "hint": self.hint}


class TrainingStackMissing(FineTuneError):
    kind = "missing_stack"


class DatasetEmpty(FineTuneError):
    kind = "empty_dataset"
    default_hint = "Add documents with text in them, or lower the minimum length of an example."


class BadTrainingData(FineTuneError):
    kind = "bad_data"
    default_hint = "Fix the lines named above (each must be one JSON object) and try again."


class SequenceTooLong(FineTuneError):
    kind = "too_long"
    default_hint = "Choose a sequence length within the model's context."


class PlanTooBig(FineTuneError):
    kind = "too_big"
    default_hint = "Lower the batch size or the sequence length, or use a smaller model."


class ArchitectureNotTrainable(FineTuneError):
    kind = "architecture"
    default_hint = ("Download the model's original Hugging Face repository (safetensors) on the Models page "
                    "and train from that instead.")


class TrainerStopped(FineTuneError):
    """The trainer child died (a crash, out of memory, killed): the last checkpoint is intact."""

    kind = "stopped"
    default_hint = "Start the job again: it resumes from its last checkpoint."


class ExportFailed(FineTuneError):
    kind = "export"
    default_hint = "The trained adapter is kept in the job folder; see the job's log."


ERRORS_BY_KIND: dict[str, type[FineTuneError]] = {
    cls.kind: cls
    for cls in (FineTuneError, TrainingStackMissing, DatasetEmpty, BadTrainingData, SequenceTooLong, PlanTooBig,
                ArchitectureNotTrainable, TrainerStopped, ExportFailed)
}


def error_from_event(event: dict, log_path: str | None = None) -> FineTuneError:
    """The typed error an "error" event of the trainer describes (an unknown kind is a FineTuneError)."""
    cls = ERRORS_BY_KIND.get(str(event.get("kind", "")), FineTuneError)
    return cls(str(event.get("error") or "The trainer failed."), event.get("hint"), log_path=log_path)
