"""What the operators we install would refuse, checked before anything is registered.

A custom resource that its CRD's schema accepts can still be refused: by an operator's admission
webhook (KEDA's for ScaledObjects, Prometheus Operator's for PrometheusRules), or by the operator
itself when it reconciles the object (KEDA's scalers, Prometheus Operator's ServiceMonitor
selection), which leaves the object in place and silently not working. Mocks and schema checks see
neither. Each module here re-implements one operator's rules from its source at the version we pin
(`components/releases.py`), citing the function it mirrors, so a `pulumi preview` (and the offline
plan) fails with the stack file and key path instead of `pulumi up` failing an hour into a rollout.

Everything here is pure: plain dicts in, `Finding`s out; no Pulumi, no stack config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    """One thing an operator would refuse (error) or warn about (warning) in one object."""

    path: Path  # where in the object, e.g. ("spec", "triggers", 1, "metricType")
    message: str  # what is wrong, in the operator's words where it has them
    source: str  # who refuses it, and the function that says so, e.g. "KEDA v2.20.2 CheckFallbackValid"
    severity: Literal["error", "warning"] = "error"

    def describe(self) -> str:
        where = ".".join(f"[{p}]" if isinstance(p, int) else p for p in self.path).replace(".[", "[")
        return f"{where}: {self.message} ({self.source})"
