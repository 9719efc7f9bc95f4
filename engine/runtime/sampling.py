"""Sampling settings: what the user sets per chat, sent to the host with every request."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from engine.errors import InvalidInput


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: int | None = None
    max_tokens: int = 512
    stop: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        checks = [
            (0.0 <= self.temperature <= 5.0, "temperature must be between 0 and 5"),
            (0.0 < self.top_p <= 1.0, "top-p must be above 0 and at most 1"),
            (self.top_k >= 0, "top-k must be 0 (off) or more"),
            (0.0 <= self.min_p < 1.0, "min-p must be at least 0 and below 1"),
            (0.0 < self.repeat_penalty <= 5.0, "repeat penalty must be above 0 and at most 5"),
            (self.max_tokens >= 1, "max tokens must be at least 1"),
            (self.seed is None or 0 <= self.seed < 2**32, "seed must be empty or between 0 and 4294967295"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidInput(f"Invalid sampling setting: {message}.")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data

    @classmethod
    def from_dict(cls, data: dict | None) -> Sampling:
        """Build from saved JSON, ignoring keys this version does not know."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "stop" in values:
            values["stop"] = tuple(values["stop"] or ())
        return cls(**values)

    def replace(self, **changes) -> Sampling:
        return Sampling.from_dict({**self.to_dict(), **changes})
