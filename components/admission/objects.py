"""The custom resources an operator checks, as plain data, and which operator's rules apply to each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import Finding
from .keda import scaled_object_findings
from .prometheus_rule import prometheus_rule_findings
from .service_monitor import service_monitor_findings

CHECKS: dict[tuple[str, str], Callable[[dict[str, Any]], list[Finding]]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): scaled_object_findings,
    ("monitoring.coreos.com/v1", "PrometheusRule"): prometheus_rule_findings,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): service_monitor_findings,
}


@dataclass(frozen=True)
class CustomObject:
    """A custom resource as a component registers it and an operator sees it (labels aside)."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    spec: dict[str, Any]

    def manifest(self) -> dict[str, Any]:
        metadata = {"name": self.name} | ({"namespace": self.namespace} if self.namespace else {})
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": metadata, "spec": self.spec}


def object_findings(manifest: dict[str, Any]) -> list[Finding]:
    """What the operator of this kind would refuse or warn about; [] for kinds no operator here checks."""
    check = CHECKS.get((manifest.get("apiVersion", ""), manifest.get("kind", "")))
    return check(manifest) if check else []
