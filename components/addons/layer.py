"""The add-on layer of one stack, in dependency order, and what it hands to model services.

Monitoring comes first because its release brings the ServiceMonitor and PrometheusRule CRDs
other add-ons' custom resources need; Karpenter before the GPU stack because its NodePools' taints
are taints the GPU DaemonSets must tolerate.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from ..clusters.aws.karpenter import Karpenter, KarpenterArgs
from ..clusters.aws.storage import EfsSharedStorage, EfsSharedStorageArgs
from ..clusters.contract import ClusterContract
from ..config.stack import StackConfig
from ..scheduling import GpuPoolPlacement
from .gpu import GpuStack, GpuStackArgs
from .keda import Keda, KedaArgs
from .monitoring import Monitoring, MonitoringArgs


@dataclass(frozen=True)
class AddonsContract:
    """What model services consume. A `None` release means that add-on is off in this stack."""

    gpu_pools: tuple[GpuPoolPlacement, ...]  # managed node groups and Karpenter NodePools
    monitoring_release: pulumi.Resource | None  # depend on it before ServiceMonitors / PrometheusRules
    prometheus_url: str | None  # for KEDA's Prometheus trigger
    keda_release: pulumi.Resource | None  # depend on it before ScaledObjects
    shared_weights_storage_class: str | None
    shared_weights_storage: pulumi.Resource | None  # depend on it before PVCs of that class


def build_addons(name: str, cluster: ClusterContract, cfg: StackConfig) -> AddonsContract:
    addons = cfg.addons
    aws_opts = pulumi.ResourceOptions(providers=[cluster.aws.provider]) if cluster.aws else None

    monitoring = None
    if addons.prometheus.enabled:
        random_provider = random.Provider(f"{name}-random")
        monitoring = Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(cluster, addons.prometheus, addons.prometheus_adapter, random_provider),
        )
    keda = Keda(f"{name}-keda", KedaArgs(cluster, addons.keda)) if addons.keda.enabled else None

    gpu_pools = cluster.gpu_pools
    if addons.karpenter.enabled:
        karpenter = Karpenter(f"{name}-karpenter", KarpenterArgs(cluster, addons.karpenter), opts=aws_opts)
        gpu_pools = (*gpu_pools, *karpenter.placements)

    if addons.gpu_operator.enabled or addons.dcgm_exporter.enabled:
        GpuStack(
            f"{name}-gpu",
            GpuStackArgs(
                cluster=cluster,
                gpu_pools=gpu_pools,
                gpu_operator=addons.gpu_operator,
                dcgm_exporter=addons.dcgm_exporter,
                monitoring_release=monitoring.release if monitoring else None,
            ),
        )

    storage = None
    if addons.efs_csi.enabled:
        storage = EfsSharedStorage(f"{name}-weights", EfsSharedStorageArgs(cluster, addons.efs_csi), opts=aws_opts)

    return AddonsContract(
        gpu_pools=gpu_pools,
        monitoring_release=monitoring.release if monitoring else None,
        prometheus_url=monitoring.prometheus_url if monitoring else None,
        keda_release=keda.release if keda else None,
        shared_weights_storage_class=storage.storage_class_name if storage else None,
        shared_weights_storage=storage.storage_class if storage else None,
    )
