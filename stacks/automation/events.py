"""The engine's events, as typed events of ours: what a portal shows while an operation runs.

Only what a person follows is kept: a resource step starting and ending with its operation, a
step that failed, diagnostics (warnings and errors; debug output is dropped), policy violations,
and the summary counts. Nothing carries resource inputs or outputs, so no secret value can travel
in an event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pulumi.automation import EngineEvent

EventKind = Literal["resource-started", "resource-done", "resource-failed", "diagnostic", "policy-violation", "summary", "state"]


@dataclass(frozen=True)
class Event:
    """One event: `kind` and its fields (camelCase when serialized, as the HTTP API sends them)."""

    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.data}


def _step(metadata: Any) -> dict[str, Any]:
    op = getattr(metadata.op, "value", metadata.op)
    return {"urn": metadata.urn, "type": metadata.type, "op": op}


def from_engine_event(event: EngineEvent) -> Event | None:
    """Our event for one engine event, or None for those a portal has no use for (prelude, stdout,
    debug diagnostics, the closing cancel event)."""
    if event.resource_pre_event is not None:
        return Event("resource-started", {**_step(event.resource_pre_event.metadata), "planning": bool(event.resource_pre_event.planning)})
    if event.res_outputs_event is not None:
        return Event("resource-done", {**_step(event.res_outputs_event.metadata), "planning": bool(event.res_outputs_event.planning)})
    if event.res_op_failed_event is not None:
        return Event("resource-failed", {**_step(event.res_op_failed_event.metadata), "status": event.res_op_failed_event.status})
    if event.diagnostic_event is not None:
        diag = event.diagnostic_event
        if diag.severity == "debug" or diag.ephemeral:
            return None
        return Event("diagnostic", {"severity": diag.severity, "message": diag.message.rstrip(), "urn": diag.urn or None})
    if event.policy_event is not None:
        policy = event.policy_event
        return Event(
            "policy-violation",
            {
                "policyPack": policy.policy_pack_name,
                "policy": policy.policy_name,
                "enforcementLevel": policy.enforcement_level,
                "message": policy.message.rstrip(),
                "urn": policy.resource_urn or None,
            },
        )
    if event.summary_event is not None:
        summary = event.summary_event
        return Event(
            "summary",
            {"changes": {str(k): v for k, v in (summary.resource_changes or {}).items()}, "durationSeconds": summary.duration_seconds, "maybeCorrupt": summary.maybe_corrupt},
        )
    return None
