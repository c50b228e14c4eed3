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
    accelerator: str | None = None  # GKE guest accelerator type (gcp only)
    boot_disk: str | None = None  # boot disk type the machine requires (gcp only; None: Persistent Disk)


# How each cloud joins a family and a size: g6.xlarge on AWS, g2-standard-8 on GCP.
_NAME_SEPARATOR = {"aws": ".", "gcp": "-"}  # Azure names each size whole (Standard_NC24ads_A100_v4)


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
                name = f"{fam['family']}{_NAME_SEPARATOR[cloud]}{size}" if "family" in fam else size
                instances[name] = GpuInstanceType(
                    cloud=cloud,
                    name=name,
                    gpu=gpus[fam["gpu"]],
                    gpus_per_node=int(count),
                    arch=fam["arch"],
                    accelerator=fam.get("accelerator"),
                    boot_disk=fam.get("bootDisk"),
                )
    return gpus, instances


def gpu_models() -> dict[str, GpuModel]:
    return _load()[0]


def gpu_instance(name: str) -> GpuInstanceType | None:
    return _load()[1].get(name)


def gpu_instance_names(cloud: str | None = None) -> list[str]:
    return [name for name, t in _load()[1].items() if cloud is None or t.cloud == cloud]


def gpu_types_offered(cloud: str) -> list[str]:
    """Our GPU names that some machine type of `cloud` carries."""
    return sorted({t.gpu.key for t in _load()[1].values() if t.cloud == cloud})


def gcp_accelerator(gpu_key: str) -> str | None:
    """The GKE accelerator type of our GPU name (its first GCP family: h100 is nvidia-h100-80gb,
    the Mega variant being a machine type of its own)."""
    return next((t.accelerator for t in _load()[1].values() if t.cloud == "gcp" and t.gpu.key == gpu_key), None)


def instance_type_cloud(name: str) -> str:
    """Which cloud's naming a (CPU or GPU) type follows: AWS joins family and size with a dot
    (m7i.large), GCP with a dash (e2-standard-4), Azure sizes start with Standard_."""
    if name.startswith("Standard_"):
        return "azure"
    return "aws" if "." in name else "gcp"


def cpu_arch(instance_type: str) -> Architecture:
    """Architecture of a CPU (system pool) instance type. AWS names Graviton families with a `g`
    right after the generation digit (m7g, c7gn, r8gd, t4g, im4gn); GCP's Arm families are T2A
    (Ampere Altra), C4A and N4A (Axion); everything else is x86_64."""
    if instance_type_cloud(instance_type) == "gcp":
        return "arm64" if instance_type.split("-", 1)[0] in _GCP_ARM_SERIES else "x86_64"
    if instance_type_cloud(instance_type) == "azure":  # Ampere (Dpsv5, Dplsv5, Epsv5) and Cobalt (v6) sizes carry a `p`
        return "arm64" if _AZURE_ARM_SIZE.match(instance_type) else "x86_64"
    family = instance_type.split(".", 1)[0]
    return "arm64" if _GRAVITON_FAMILY.match(family) else "x86_64"


_GRAVITON_FAMILY = re.compile(r"^[a-z]+\d+g[a-z]*$")
_GCP_ARM_SERIES = frozenset({"t2a", "c4a", "n4a"})
_AZURE_ARM_SIZE = re.compile(r"^Standard_[DE]\d+p[a-z]*_v[56]$")
