"""What every cloud's cluster module builds the same way: a GPU pool's placement from its config,
and a kubeconfig whose user is an exec credential plugin (short-lived tokens, no static secret)."""

from __future__ import annotations

import json
import re
from typing import Any

from ..config.stack import GpuPoolConfig
from ..scheduling import GpuPoolPlacement, Taint, gpu_pool_placement


def placement_of(pool: GpuPoolConfig, cloud_spot_taints: tuple[Taint, ...] = ()) -> GpuPoolPlacement:
    """The labels and taints of a configured GPU pool (ours, its extra ones, MIG's, and on spot
    pools those the cloud adds itself)."""
    return gpu_pool_placement(
        pool.name,
        pool.gpu_type,
        pool.gpus_per_node,
        pool.capacity_type,
        extra_labels=dict(pool.labels),
        extra_taints=tuple(Taint(t.key, t.value, t.effect) for t in pool.taints),
        mig_profile=pool.mig_profile,
        cloud_spot_taints=cloud_spot_taints,
    )


def exec_kubeconfig(cluster_name: str, server: str, ca_data: str, exec_config: dict[str, Any]) -> str:
    """A one-cluster kubeconfig (JSON) whose user runs `exec_config` for a token."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [{"name": cluster_name, "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", **exec_config}}}],
        }
    )


def slashless_tags(tags: dict[str, str]) -> dict[str, str]:
    """The stack's tags for a cloud whose tag keys allow no `/` (Azure): llm-platform/stack becomes
    llm-platform-stack."""
    return {key.replace("/", "-"): value for key, value in tags.items()}


def gcp_labels(tags: dict[str, str]) -> dict[str, str]:
    """The stack's tags as GCP labels: no `/` in keys, values only lower-case letters, digits, `_`
    and `-` (the config checks the stack's own tags; this fixes the project and stack names)."""
    return {key: re.sub(r"[^a-z0-9_-]", "_", value.lower())[:63] for key, value in slashless_tags(tags).items()}


def block_reclaim_policy(protect: bool) -> str:
    """The reclaim policy of a cluster's block StorageClass (Prometheus' and Alertmanager's disks).
    A protected stack keeps a disk when its claim goes (an uninstall, a namespace deleted by
    mistake): the series stay on a Released volume an operator can bind again. Unprotected stacks
    delete them, so a dev stack leaves no disks behind."""
    return "Retain" if protect else "Delete"
