"""Typed settings of the cluster add-ons (`llm-platform:addons`), with defaults a production stack
can ship with; dev overrides them downwards (one replica, short retention, spot only).

Chart versions are not configurable here on purpose: they are pinned in `releases.py`, next to the
upstream schemas the tests check our values against. A stack cannot drift to an untested chart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .errors import Problem, raise_problems
from .types import (
    ConfigModel,
    GoDuration,
    GpuInstanceSet,
    LabelKey,
    LabelValue,
    PoolName,
    PrometheusDuration,
    formatted,
    label_problems,
)


class AddonToggle(ConfigModel):
    enabled: bool = Field(True, description="Install this add-on.")


class GpuOperatorAddon(AddonToggle):
    """NVIDIA GPU Operator: device plugin, GPU feature discovery, NFD, MIG manager. Driver and container
    toolkit are chosen per cloud (the EKS NVIDIA AMI already carries both), not here."""


class DcgmExporterAddon(AddonToggle):
    """NVIDIA DCGM exporter on every GPU node, scraped by Prometheus."""

    scrape_interval: Literal["5s", "10s", "15s", "30s"] = Field(
        "15s", description="How often Prometheus scrapes GPU counters; scaling reacts no faster than this."
    )


class KedaAddon(AddonToggle):
    """KEDA operator and metrics API server (scales model services on vLLM queue depth)."""

    replicas: int = Field(
        2, ge=1, le=5, description="Replicas of the operator (leader-elected) and the metrics server; 2 for HA."
    )


class KarpenterNodePoolConfig(GpuInstanceSet):
    """Burst GPU capacity provisioned by Karpenter on demand: one NodePool per capacity type, spot
    preferred by weight, on-demand as the fallback when spot is short."""

    name: PoolName = Field(description="Pool name; NodePools are <name>-spot and <name>-on-demand.")
    capacity: Literal["spot-with-on-demand-fallback", "spot", "on-demand"] = Field(
        "spot-with-on-demand-fallback",
        description="spot-with-on-demand-fallback: a spot NodePool (weight 100) and an on-demand one (weight 10).",
    )
    max_gpus: int = Field(ge=1, le=10000, description="nvidia.com/gpu limit of each NodePool: the cost ceiling.")
    disk_size_gib: int = Field(200, ge=100, le=16384, description="Root volume (vLLM images are large).")
    consolidate_after: GoDuration = Field(
        "10m", description="An empty node is removed after this long (WhenEmpty: a node running a model is never consolidated)."
    )
    expire_after: GoDuration | Literal["Never"] = Field(
        "720h", description="Nodes are replaced after this age (fresh AMIs and patches)."
    )
    termination_grace_period: GoDuration = Field(
        "2h", description="Longest a draining node waits for pods (do-not-disrupt included) before it is terminated."
    )
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Extra node labels.")

    @model_validator(mode="after")
    def _check(self) -> KarpenterNodePoolConfig:
        problems: list[Problem] = self.instance_set_problems() + label_problems(self.labels)
        if self.max_gpus < self.gpus_per_node:
            problems.append((("maxGpus",), f"must be ≥ gpusPerNode ({self.gpus_per_node}), or no node can launch"))
        raise_problems(problems)
        return self

    @property
    def capacity_types(self) -> tuple[Literal["spot", "on-demand"], ...]:
        return {"spot-with-on-demand-fallback": ("spot", "on-demand"), "spot": ("spot",), "on-demand": ("on-demand",)}[
            self.capacity
        ]


class KarpenterAddon(AddonToggle):
    """Karpenter (EKS): provisions GPU nodes for pending pods in seconds, beyond the managed pools."""

    replicas: int = Field(2, ge=1, le=3, description="Controller replicas (leader-elected); 2 for HA.")
    ami_alias: formatted(r"al2023@(latest|v\d{8})", "al2023@latest or al2023@vYYYYMMDD") = Field(
        "al2023@latest",
        description="EC2NodeClass AMI alias. Karpenter picks the NVIDIA variant for GPU types; pin a version "
        "(al2023@vYYYYMMDD) in prod once tested, so new AMIs roll out by change, not by surprise.",
    )
    node_pools: list[KarpenterNodePoolConfig] = Field(default_factory=list, description="GPU NodePools.")


class PrometheusAddon(AddonToggle):
    """kube-prometheus-stack: Prometheus, Alertmanager, Grafana (with our GPU and vLLM dashboards)."""

    retention: PrometheusDuration = Field("15d", description="How long metrics are kept.")
    storage_gib: int = Field(100, ge=10, le=16384, description="Persistent volume per Prometheus replica.")
    replicas: int = Field(2, ge=1, le=5, description="Prometheus replicas (each scrapes everything): 2 for HA.")
    alertmanager_replicas: int = Field(2, ge=1, le=5, description="Alertmanager replicas (gossip cluster).")
    grafana: bool = Field(True, description="Install Grafana with the dashboards.")


class PrometheusAdapterAddon(AddonToggle):
    """prometheus-adapter: vLLM metrics as custom.metrics.k8s.io for plain HPAs. Off by default:
    KEDA already scales on Prometheus queries."""

    enabled: bool = Field(False, description="Install this add-on.")
    replicas: int = Field(1, ge=1, le=5)


class EfsCsiAddon(AddonToggle):
    """EFS CSI driver and an encrypted EFS file system for shared model weights."""

    throughput_mode: Literal["elastic", "bursting"] = Field(
        "elastic",
        description="elastic: throughput follows demand (a cold start reading 100 GB of weights is not throttled).",
    )
    controller_replicas: int = Field(2, ge=1, le=3)


class AddonsConfig(ConfigModel):
    """Which cluster add-ons this stack installs, and how."""

    gpu_operator: GpuOperatorAddon = GpuOperatorAddon()
    dcgm_exporter: DcgmExporterAddon = DcgmExporterAddon()
    keda: KedaAddon = KedaAddon()
    karpenter: KarpenterAddon = KarpenterAddon()
    prometheus: PrometheusAddon = PrometheusAddon()
    prometheus_adapter: PrometheusAdapterAddon = PrometheusAdapterAddon()
    efs_csi: EfsCsiAddon = EfsCsiAddon()

    @model_validator(mode="after")
    def _check(self) -> AddonsConfig:
        problems: list[Problem] = []
        if self.prometheus_adapter.enabled and not self.prometheus.enabled:
            problems.append((("prometheusAdapter", "enabled"), "needs prometheus (it serves Prometheus queries)"))
        if self.karpenter.node_pools and not self.karpenter.enabled:
            problems.append((("karpenter", "nodePools"), "karpenter is disabled, so nothing would provision these"))
        names = [p.name for p in self.karpenter.node_pools]
        problems += [
            (("karpenter", "nodePools", i, "name"), f"duplicate name {n!r}") for i, n in enumerate(names) if n in names[:i]
        ]
        raise_problems(problems)
        return self
