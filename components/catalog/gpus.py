"""What each supported instance type carries, so config can be checked before anything is paid for.

The facts live in `data/gpu_instances.yaml` (with their source); this module only gives them types.
A pool that declares `gpuType: l4, gpusPerNode: 1` but lists `g6.12xlarge` (4 GPUs) would schedule
tensor-parallel pods wrongly, so the config models reject such a pool using this catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

Architecture = Literal["x86_64", "arm64"]

_DATA = Path(__file__).parent / "data" / "gpu_instances.yaml"


@dataclass(frozen=True)
class GpuModel:
    key: str
    vendor_name: str
    memory_gb: int
    cuda_total_gib: float  # what vLLM multiplies by --gpu-memory-utilization (see the data file)
    mig_capable: bool = False


@dataclass(frozen=True)
class GpuInstanceType:
    cloud: str
    name: str
    gpu: GpuModel
    gpus_per_node: int
    arch: Architecture


@cache
def _load() -> tuple[dict[str, GpuModel], dict[str, GpuInstanceType]]:
    raw = yaml.safe_load(_DATA.read_text())
    gpus = {
        key: GpuModel(key=key, vendor_name=g["vendorName"], memory_gb=int(g["memoryGb"]),
            cuda_total_gib=float(g["cudaTotalGib"]),
            mig_capable=bool(g.get("mig", False)))
        for key, g in raw["gpus"].items()
    }
    instances: dict[str, GpuInstanceType] = {}
    for cloud, families in raw["instances"].items():
        for fam in families:
            for size, count in fam["sizes"].items():
                name = f"{fam['family']}.{size}"
                instances[name] = GpuInstanceType(
                    cloud=cloud, name=name, gpu=gpus[fam["gpu"]], gpus_per_node=int(count), arch=fam["arch"]
                )
    return gpus, instances


def gpu_models() -> dict[str, GpuModel]:
    return _load()[0]


def gpu_instance(name: str) -> GpuInstanceType | None:
    return _load()[1].get(name)


def gpu_instance_names() -> list[str]:
    return list(_load()[1])


def cpu_arch(instance_type: str) -> Architecture:
    """Architecture of a CPU (system pool) instance type. AWS names Graviton families with a `g`
    right after the generation digit (m7g, c7gn, r8gd, t4g, im4gn); everything else is x86_64."""
    family = instance_type.split(".", 1)[0]
    return "arm64" if _GRAVITON_FAMILY.match(family) else "x86_64"


_GRAVITON_FAMILY = re.compile(r"^[a-z]+\d+g[a-z]*$")
