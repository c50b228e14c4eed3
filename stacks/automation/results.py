"""What an operation ends with: a structured result, or a failure a portal can act on (never a
stack trace)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .request import FieldError

SECRET_MASK = "[secret]"


class FailureKind(StrEnum):
    INVALID = "invalid"  # the request: config errors at JSON Pointers
    BUSY = "busy"  # another update of the stack is in progress: retry later
    NOT_FOUND = "not-found"  # no such stack (outputs, refresh or destroy of one never created)
    CLI_MISSING = "cli-missing"  # no `pulumi` executable
    CLI_TOO_OLD = "cli-too-old"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the service stopped while the operation ran
    ENGINE = "engine-failed"  # the engine or the program failed: its message and the log's tail


RETRYABLE = frozenset({FailureKind.BUSY, FailureKind.INTERRUPTED})


@dataclass
class OperationFailed(Exception):
    kind: FailureKind
    message: str
    log_tail: list[str] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "message": self.message,
            "retryable": self.retryable,
            "logTail": self.log_tail,
            "errors": [e.to_dict() for e in self.errors],
        }


@dataclass(frozen=True)
class ModelEndpoint:
    name: str
    served_model_name: str | None
    endpoint: str | None
    predicted: dict[str, Any] | None

    @classmethod
    def from_output(cls, model: dict[str, Any]) -> ModelEndpoint:
        return cls(model.get("name", ""), model.get("servedModelName"), model.get("endpoint"), model.get("predicted"))


@dataclass
class OperationResult:
    operation: str
    stack: str
    changes: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # secret outputs as "[secret]"
    models: list[ModelEndpoint] = field(default_factory=list)
    cost: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "stack": self.stack,
            "changes": self.changes,
            "outputs": self.outputs,
            "models": [
                {"name": m.name, "servedModelName": m.served_model_name, "endpoint": m.endpoint, "predicted": m.predicted} for m in self.models
            ],
            "cost": self.cost,
        }


def masked_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    """Stack outputs as a portal may see them: a secret output's value never leaves the engine."""
    return {k: SECRET_MASK if getattr(v, "secret", False) else getattr(v, "value", v) for k, v in outputs.items()}


