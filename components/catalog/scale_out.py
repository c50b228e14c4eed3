"""The scale-out assumptions (`data/scale_out.yaml`), typed: every value travels with its source,
so the plan can say where each second of a budget comes from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

_DATA = Path(__file__).parent / "data" / "scale_out.yaml"


@dataclass(frozen=True)
class Sourced:
    value: float
    source: str


@dataclass(frozen=True)
class ScaleOutAssumptions:
    hpa_sync: Sourced
    averaged_fraction: Sourced
    image_gb: Sourced
    image_unpacked_gb: Sourced
    pull_mb_per_second: Sourced
    process_start: Sourced
    tensor_parallel_extra: Sourced
    readiness: Sourced


def _sourced(raw: dict[str, Any]) -> Sourced:
    return Sourced(float(raw["value"]), str(raw["source"]))


@cache
def _raw() -> dict[str, Any]:
    return yaml.safe_load(_DATA.read_text())


@cache
def assumptions() -> ScaleOutAssumptions:
    raw = _raw()
    return ScaleOutAssumptions(
        hpa_sync=_sourced(raw["reaction"]["hpaSyncSeconds"]),
        averaged_fraction=_sourced(raw["reaction"]["averagedFraction"]),
        image_gb=_sourced(raw["image"]["compressedGb"]),
        image_unpacked_gb=_sourced(raw["image"]["unpackedGb"]),
        pull_mb_per_second=_sourced(raw["image"]["pullMBps"]),
        process_start=_sourced(raw["engine"]["processStartSeconds"]),
        tensor_parallel_extra=_sourced(raw["engine"]["tensorParallelExtraSeconds"]),
        readiness=_sourced(raw["engine"]["readinessSeconds"]),
    )


def node_launch(cloud: str, adder: str, instance_type: str) -> Sourced:
    """Pending pod -> node Ready for a node of this type added by `adder` (karpenter, autoscaler)."""
    table = _raw()["nodeLaunch"][cloud][adder]
    family = instance_type.split("." if cloud == "aws" else "-", 1)[0]
    return _sourced(table.get("families", {}).get(family) or table["default"])


@dataclass(frozen=True)
class FastPull:
    """A cloud's fast image pull: a rate (scales with the image), a fixed time, or a pull that
    starts at node Ready and so overlaps the GPU-stack phase."""

    source: str
    mbps: float | None = None
    seconds: float | None = None
    overlaps_gpu_stack: bool = False


def fast_image_pull(cloud: str) -> FastPull | None:
    raw = _raw()["image"]["fastPull"].get(cloud)
    if raw is None:
        return None
    return FastPull(str(raw["source"]), raw.get("mbps"), raw.get("seconds"), bool(raw.get("overlapsGpuStack", False)))


def loader_read(kind: str) -> Sourced:
    """What one pod's weight loader reads from a network file system, MiB/s (`runai-streamer`, `safetensors`)."""
    return _sourced(_raw()["weights"]["loaders"][kind])


def gpu_stack(kind: str) -> Sourced:
    """Node Ready -> GPUs allocatable: `gpuOperator` (ours) or `gkeManaged` (GKE's driver and plugin)."""
    return _sourced(_raw()["gpuStack"][kind])


def storage_read(kind: str, capacity_gib: int | None = None) -> Sourced:
    """One client's read rate from the weights volume, MiB/s."""
    raw = _raw()["weights"]["perClientMiBps"][kind]
    if "perGib" in raw:  # the share's own limit grows with its size
        value = float(raw["base"]) + float(raw["perGib"]) * (capacity_gib or 1024)
    else:
        value = float(raw["value"])
        if raw.get("perTib"):
            value = value * (capacity_gib or 1024) / 1024
    value = min(value, float(raw["cap"])) if "cap" in raw else value
    return Sourced(value, str(raw["source"]))


def engine_init_seconds(weights_gib: float) -> tuple[float, float, str]:
    """(cold, compile-cache hit, source) of vLLM's init engine for a model of this weight size:
    linear between the two measured sizes, flat outside them."""
    low, high = _raw()["engine"]["initAnchors"]
    span = high["weightsGib"] - low["weightsGib"]
    t = min(max((weights_gib - low["weightsGib"]) / span, 0.0), 1.0)
    cold = low["coldSeconds"] + t * (high["coldSeconds"] - low["coldSeconds"])
    cached = low["cachedSeconds"] + t * (high["cachedSeconds"] - low["cachedSeconds"])
    return cold, cached, f"between {low['source']} and {high['source']}"


def all_sources() -> list[str]:
    """Every source string in the table (a test checks none is empty)."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "source" in node:
                out.append(str(node["source"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(_raw())
    return out
