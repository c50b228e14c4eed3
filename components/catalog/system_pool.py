"""System-pool facts: CPU node shapes, what each cloud's kubelet keeps back, the cloud's own pods,
and the requests of chart pods no stack config sizes. The data and its sources are in
`data/system_pool.yaml`; this module gives them types and does the arithmetic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

_DATA = Path(__file__).parent / "data" / "system_pool.yaml"
_MEMORY_MIB = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}


def cpu_millis(quantity: str | int | float) -> int:
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)


def memory_mib(quantity: str | int) -> int:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", str(quantity))
    if not match:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    number, unit = match.groups()
    return int(number) // (1024 * 1024) if unit is None else round(int(number) * _MEMORY_MIB[unit])


@dataclass(frozen=True)
class Requests:
    cpu_millis: int
    memory_mib: int

    def __add__(self, other: Requests) -> Requests:
        return Requests(self.cpu_millis + other.cpu_millis, self.memory_mib + other.memory_mib)

    def times(self, n: int) -> Requests:
        return Requests(self.cpu_millis * n, self.memory_mib * n)

    @staticmethod
    def of(cpu: str | int | float, memory: str | int) -> Requests:
        return Requests(cpu_millis(cpu), memory_mib(memory))


@dataclass(frozen=True)
class NodeShape:
    name: str
    vcpu: int
    memory_gib: int
    max_pods: int | None


@cache
def _load() -> dict[str, Any]:
    return yaml.safe_load(_DATA.read_text())


def node_shape(instance_type: str) -> NodeShape | None:
    raw = _load()["shapes"]["types"].get(instance_type)
    return None if raw is None else NodeShape(instance_type, int(raw["vcpu"]), int(raw["memoryGib"]), raw.get("maxPods"))


def _stepped(total: float, steps: list[list[Any]]) -> float:
    """Sum of fraction x slice over consecutive slices of `total` (the last slice is open-ended)."""
    reserved, left = 0.0, total
    for size, fraction in steps:
        part = left if size is None else min(left, size)
        reserved += part * fraction
        left -= part
        if left <= 0:
            break
    return reserved


def allocatable(cloud: str, shape: NodeShape) -> Requests:
    """What the scheduler can place on one node of this shape: capacity minus kube-reserved and
    the hard-eviction threshold, by the cloud's published rule."""
    data = _load()["reserved"]
    rule = data[cloud]
    memory = shape.memory_gib * 1024
    if cloud == "azure":
        closest = max((c for c in map(int, rule["cpuByCores"]) if c <= shape.vcpu), default=1)
        cpu_reserved = float(rule["cpuByCores"][closest])
        memory_reserved = min(rule["memoryPerPodMib"] * rule["maxPods"] + rule["memoryBaseMib"], memory * rule["memoryCapFraction"])
    else:
        cpu_reserved = _stepped(shape.vcpu, rule["cpuSteps"]) * 1000
        if cloud == "aws":
            memory_reserved = rule["memoryPerPodMib"] * (shape.max_pods or 110) + rule["memoryBaseMib"]
        else:
            memory_reserved = _stepped(shape.memory_gib, rule["memorySteps"]) * 1024
    return Requests(int(shape.vcpu * 1000 - cpu_reserved), int(memory - memory_reserved - data["evictionMib"]))


def cloud_pods(cloud: str) -> tuple[Requests, Requests]:
    """(once per cluster, on every node) of the cloud's own kube-system pods."""
    raw = _load()["cloudPods"][cloud]
    return Requests.of(**raw["cluster"]), Requests.of(**raw["perNode"])


def chart_requests(component: str) -> Requests:
    raw = _load()["chartRequests"][component]
    return Requests.of(raw["cpu"], raw["memory"])


def chart_request_sources() -> dict[str, dict[str, str]]:
    return {name: {"chart": raw["chart"], "path": raw["path"]} for name, raw in _load()["chartRequests"].items()}
