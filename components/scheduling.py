"""Node labels and taints for GPU pools: one policy, shared by every cloud and every workload.

Why taint GPU nodes at all: without `nvidia.com/gpu=present:NoSchedule`, any CPU pod (a log
shipper's burst, a CI job) can land on a $30/hour node and block a model replica from scheduling.
Spot nodes carry a second taint so that only workloads that explicitly accept interruption land on
them; a model that must stay up on on-demand capacity never tolerates it.

Cluster modules translate these into their cloud API (EKS `NO_SCHEDULE`, GKE `NO_SCHEDULE`, AKS
`key=value:NoSchedule`); workloads build their tolerations and node affinity from the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
CapacityType = Literal["on-demand", "spot"]

LABEL_DOMAIN = "llm-platform.io"
LABEL_POOL = f"{LABEL_DOMAIN}/pool"
LABEL_NODE_ROLE = f"{LABEL_DOMAIN}/node-role"
LABEL_GPU_TYPE = f"{LABEL_DOMAIN}/gpu-type"
LABEL_GPU_COUNT = f"{LABEL_DOMAIN}/gpu-count"
LABEL_CAPACITY_TYPE = f"{LABEL_DOMAIN}/capacity-type"

# Read by the GPU Operator's MIG manager: which profile of its mig-parted config to apply to a node.
MIG_CONFIG_LABEL = "nvidia.com/mig.config"

# Kubernetes' well-known node labels, for spreading replicas.
ZONE_LABEL = "topology.kubernetes.io/zone"
HOSTNAME_LABEL = "kubernetes.io/hostname"

NODE_ROLE_SYSTEM = "system"
NODE_ROLE_GPU = "gpu"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: TaintEffect

    def toleration(self) -> dict[str, str]:
        """The exact (Equal) toleration for this taint, as a Kubernetes toleration object."""
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}


GPU_TAINT = Taint("nvidia.com/gpu", "present", "NoSchedule")
SPOT_TAINT = Taint(f"{LABEL_DOMAIN}/capacity-type", "spot", "NoSchedule")

RESERVED_TAINT_KEYS = frozenset({GPU_TAINT.key, SPOT_TAINT.key})


@dataclass(frozen=True)
class GpuPoolPlacement:
    """How a workload finds (labels) and is admitted to (taints) one GPU pool."""

    pool: str
    gpu_type: str
    gpus_per_node: int
    capacity_type: CapacityType
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    mig_profile: str | None = None  # MIG nodes offer nvidia.com/mig-<profile>, not whole nvidia.com/gpu
    # The taints that mark this pool's capacity as interruptible: ours, plus any the cloud itself
    # puts on spot nodes (AKS). A model that accepts spot tolerates exactly these, and the GPU taint.
    spot_taints: tuple[Taint, ...] = ()


def system_pool_labels() -> dict[str, str]:
    return {LABEL_POOL: NODE_ROLE_SYSTEM, LABEL_NODE_ROLE: NODE_ROLE_SYSTEM}


def gpu_pool_placement(
    pool: str,
    gpu_type: str,
    gpus_per_node: int,
    capacity_type: CapacityType,
    extra_labels: dict[str, str] | None = None,
    extra_taints: tuple[Taint, ...] = (),
    mig_profile: str | None = None,
    cloud_spot_taints: tuple[Taint, ...] = (),
) -> GpuPoolPlacement:
    """`cloud_spot_taints`: what the cloud adds to spot nodes by itself (declared, so Pulumi shows
    no drift, and tolerated by whatever must run there)."""
    labels = dict(extra_labels or {})
    if mig_profile:
        labels[MIG_CONFIG_LABEL] = mig_profile
    labels.update(
        {
            LABEL_POOL: pool,
            LABEL_NODE_ROLE: NODE_ROLE_GPU,
            LABEL_GPU_TYPE: gpu_type,
            LABEL_GPU_COUNT: str(gpus_per_node),
            LABEL_CAPACITY_TYPE: capacity_type,
        }
    )
    spot_taints = (SPOT_TAINT, *cloud_spot_taints) if capacity_type == "spot" else ()
    taints = (GPU_TAINT, *spot_taints, *extra_taints)
    return GpuPoolPlacement(pool, gpu_type, gpus_per_node, capacity_type, labels, taints, mig_profile, spot_taints)


def gpu_node_tolerations(placements: tuple[GpuPoolPlacement, ...] | list[GpuPoolPlacement]) -> list[dict[str, str]]:
    """Tolerations for DaemonSets that must run on every GPU node (device plugin, DCGM exporter):
    every taint any GPU pool carries, GPU and spot included, in a stable order."""
    taints = {t: None for p in placements for t in p.taints}
    taints.setdefault(GPU_TAINT, None)
    return [t.toleration() for t in sorted(taints, key=lambda t: (t.key, t.value, t.effect))]
