"""Picks the cluster component for the stack's cloud; everything after this sees only the contract."""

from __future__ import annotations

from collections.abc import Callable

from ..config.stack import StackConfig
from .aws.cluster import build_eks_cluster
from .azure.cluster import build_aks_cluster
from .contract import ClusterContract
from .gcp.cluster import build_gke_cluster

ClusterBuilder = Callable[[str, StackConfig, dict[str, str]], ClusterContract]

CLUSTER_BUILDERS: dict[str, ClusterBuilder] = {"aws": build_eks_cluster, "gcp": build_gke_cluster, "azure": build_aks_cluster}


def build_cluster(cfg: StackConfig, tags: dict[str, str]) -> ClusterContract:
    return CLUSTER_BUILDERS[cfg.cloud](cfg.cluster.name, cfg, tags)
