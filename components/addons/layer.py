"""The cloud-neutral add-on layer of one stack, in dependency order, and what it hands to model services.

Monitoring comes first because its release brings the ServiceMonitor and PrometheusRule CRDs
other add-ons' custom resources need. What only a cloud can build (Karpenter, the shared-weights
file system) its cluster package has built already and handed on in the `ClusterContract`: the
GPU DaemonSets tolerate every taint of the cluster's GPU pools, elastic ones included.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from ..clusters.contract import ClusterContract
from ..config.stack import StackConfig
from .gpu import GpuStack, GpuStackArgs
from .keda import Keda, KedaArgs
from .monitoring import Monitoring, MonitoringArgs


@dataclass(frozen=True)
class AddonsContract:
    """What model services consume. A `None` release means that add-on is off in this stack."""

    monitoring_release: pulumi.Resource | None  # depend on it before ServiceMonitors / PrometheusRules
    prometheus_url: str | None  # for KEDA's Prometheus trigger
    keda_release: pulumi.Resource | None  # depend on it before ScaledObjects


def build_addons(name: str, cluster: ClusterContract, cfg: StackConfig) -> AddonsContract:
    addons = cfg.addons
    monitoring = None
    if addons.prometheus.enabled:
        random_provider = random.Provider(f"{name}-random")
        monitoring = Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(cluster, addons.prometheus, addons.prometheus_adapter, random_provider, protect=cfg.cluster.protect),
        )
    keda = Keda(f"{name}-keda", KedaArgs(cluster, addons.keda)) if addons.keda.enabled else None

    if addons.gpu_operator.enabled or addons.dcgm_exporter.enabled:
        GpuStack(
            f"{name}-gpu",
            GpuStackArgs(
                cluster=cluster,
                gpu_pools=cluster.all_gpu_pools,
                gpu_operator=addons.gpu_operator,
                dcgm_exporter=addons.dcgm_exporter,
                monitoring_release=monitoring.release if monitoring else None,
            ),
        )

    return AddonsContract(
        monitoring_release=monitoring.release if monitoring else None,
        prometheus_url=monitoring.prometheus_url if monitoring else None,
        keda_release=keda.release if keda else None,
    )
