"""The trainer's events as the app sees them: Progress objects the generic worker passes on as they are.

A page draws a `TrainStep` on the loss chart (and its tokens/s, ETA, memory), an `EvalLoss` on the
evaluation line, a `ProbeAnswers` in the samples table; anything else is a plain Progress with a
message ("Loading the model…"). Each keeps the event's numbers, so the page needs no JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.jobs import Progress
from engine.progress_text import human_duration


@dataclass(frozen=True)
class TrainStep(Progress):
    step: int = 0
    loss: float = 0.0
    learning_rate: float = 0.0
    tokens_per_s: float | None = None
    step_s: float = 0.0
    eta_s: float | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True)
class EvalLoss(Progress):
    step: int = 0
    eval_loss: float = 0.0


@dataclass(frozen=True)
class ProbeAnswers(Progress):
    step: int = 0
    answers: tuple[tuple[str, str], ...] = ()  # (question, answer)


@dataclass(frozen=True)
class CheckpointSaved(Progress):
    step: int = 0


@dataclass(frozen=True)
class Resumed(Progress):
    step: int = 0


def to_progress(event: dict, total: float | None = None) -> Progress | None:
    """The Progress for one trainer event (None for events the page does not show)."""
    kind = event.get("type")
    total = event.get("total", total)
    if kind == "step":
        eta = event.get("eta_s")
        message = f"Step {event['step']} of {event['total']}: loss {event['loss']:.3f}" + (
            f", {human_duration(eta)} left" if eta is not None else "")
        return TrainStep(event["step"], total, "steps", message, step=event["step"], loss=event["loss"],
                         learning_rate=event.get("lr", 0.0), tokens_per_s=event.get("tokens_per_s"),
                         step_s=event.get("step_s", 0.0), eta_s=eta, memory_bytes=event.get("memory"))
    if kind == "eval":
        return EvalLoss(event["step"], total, "steps", f"Held-out loss at step {event['step']}: "
                        f"{event['eval_loss']:.3f}", step=event["step"], eval_loss=event["eval_loss"])
    if kind == "sample":
        answers = tuple((a["question"], a["answer"]) for a in event.get("answers", []))
        return ProbeAnswers(event["step"], total, "steps", f"Sample answers at step {event['step']}",
                            step=event["step"], answers=answers)
    if kind == "checkpoint":
        return CheckpointSaved(event["step"], total, "steps", f"Checkpoint saved at step {event['step']}",
                               step=event["step"])
    if kind == "resumed":
        return Resumed(event["step"], total, "steps", f"Resuming from the checkpoint at step {event['step']}",
                       step=event["step"])
    if kind == "stage":
        return Progress(0, None, "", event.get("message", ""))
    if kind == "dataset":
        return Progress(0, None, "", f"{event['train_examples']} training examples, {event['max_tokens']} tokens "
                        "at most")
    return None
