"""What every cloud's cluster module builds the same way: a GPU pool's placement from its config,
and a kubeconfig whose user is an exec credential plugin (short-lived tokens, no static secret)."""

from __future__ import annotations

import json
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
