"""The one place chart versions live, and the one way a third-party chart is installed.

Every add-on is a `helm.v3.Release` (Helm runs as a library: hooks run, upgrades are atomic, the
release is one object in state) with a fixed release name (a random suffix would force a
replacement on every rename), a pinned version, and a namespace we create ourselves, so its Pod
Security level is written down instead of inherited. The versions are exactly those whose
`values.yaml` and CRDs sit in `../shared/upstream/`; the tests check every value we set against
them, so bumping a version here means refreshing those files too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

PodSecurityLevel = Literal["privileged", "baseline", "restricted"]


@dataclass(frozen=True)
class PinnedChart:
    chart: str  # chart name in `repository`, or a full oci:// reference
    version: str
    repository: str | None  # classic Helm repository; None for OCI charts
    upstream: str  # directory of its schema files under ../shared/upstream/charts
    timeout_seconds: int = 600  # Helm waits for every workload to be ready before the release succeeds


GPU_OPERATOR = PinnedChart(
    "gpu-operator",
    "v26.7.0",
    "https://helm.ngc.nvidia.com/nvidia",
    "gpu-operator",
    # The slowest add-on: operands roll out node by node, and validation waits on GPU nodes.
    timeout_seconds=1200,
)
DCGM_EXPORTER = PinnedChart("dcgm-exporter", "4.8.2", "https://nvidia.github.io/dcgm-exporter/helm-charts", "dcgm-exporter")
KEDA = PinnedChart("keda", "2.20.2", "https://kedacore.github.io/charts", "keda")
# Karpenter publishes its chart only as an OCI artifact (ECR Public).
KARPENTER = PinnedChart("oci://public.ecr.aws/karpenter/karpenter", "1.14.1", None, "karpenter")
KUBE_PROMETHEUS_STACK = PinnedChart(
    "kube-prometheus-stack",
    "88.5.3",
    "https://prometheus-community.github.io/helm-charts",
    "kube-prometheus-stack",
    timeout_seconds=900,  # Prometheus waits for its EBS volumes to be provisioned and attached
)
PROMETHEUS_ADAPTER = PinnedChart(
    "prometheus-adapter", "5.3.0", "https://prometheus-community.github.io/helm-charts", "prometheus-adapter"
)
AWS_EFS_CSI_DRIVER = PinnedChart(
    "aws-efs-csi-driver", "4.4.1", "https://kubernetes-sigs.github.io/aws-efs-csi-driver", "aws-efs-csi-driver"
)

# Inference routing (their schema files are under ../shared/upstream/routing/charts).
BODY_BASED_ROUTING = PinnedChart(
    "oci://registry.k8s.io/gateway-api-inference-extension/charts/body-based-routing", "v1.5.0", None, "routing/charts/body-based-routing"
)
# The EPP and its InferencePool, one release per model (llm-d took the chart over from GAIE).
LLM_D_ROUTER_GATEWAY = PinnedChart("oci://ghcr.io/llm-d/charts/llm-d-router-gateway", "v0.10.0", None, "routing/charts/llm-d-router-gateway")
# The in-cluster gateway where the cloud has no managed one (EKS, AKS): Istio's CRDs and webhook
# (`base`), then its control plane, which deploys one Envoy proxy Deployment per Gateway.
ISTIO_REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
ISTIO_VERSION = "1.30.3"
ISTIO_BASE = PinnedChart("base", ISTIO_VERSION, ISTIO_REPOSITORY, "routing/charts/istio/base")
ISTIOD = PinnedChart("istiod", ISTIO_VERSION, ISTIO_REPOSITORY, "routing/charts/istio/istiod")
ROUTING_CHARTS = (BODY_BASED_ROUTING, LLM_D_ROUTER_GATEWAY, ISTIO_BASE, ISTIOD)

ALL_CHARTS = (GPU_OPERATOR, DCGM_EXPORTER, KEDA, KARPENTER, KUBE_PROMETHEUS_STACK, PROMETHEUS_ADAPTER, AWS_EFS_CSI_DRIVER)


def addon_namespace(
    resource_name: str,
    namespace: str,
    pod_security: PodSecurityLevel,
    provider: k8s.Provider,
    parent: pulumi.Resource,
    warn: PodSecurityLevel | None = None,
    protect: bool = False,
) -> k8s.core.v1.Namespace:
    """A namespace with its Pod Security level enforced. Node agents (device plugin, DCGM, CSI node
    plugins, node-exporter) need `privileged`; controllers get `baseline` or `restricted`. `warn`
    audits and warns at a stricter level than the one a third-party chart lets us enforce.
    `protect`: the namespace holds data (deleting it deletes its PersistentVolumeClaims)."""
    labels = {f"pod-security.kubernetes.io/{mode}": pod_security for mode in ("enforce", "audit", "warn")}
    if warn is not None:
        labels |= {f"pod-security.kubernetes.io/{mode}": warn for mode in ("audit", "warn")}
    return k8s.core.v1.Namespace(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace, labels={**labels, "app.kubernetes.io/managed-by": "pulumi"}),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, protect=protect),
    )


def pinned_release(
    resource_name: str,
    release_name: str,
    chart: PinnedChart,
    namespace: k8s.core.v1.Namespace | str,
    values: Mapping[str, Any],
    provider: k8s.Provider,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    protect: bool = False,
) -> k8s.helm.v3.Release:
    """Install `chart` at its pinned version. atomic + cleanup_on_fail: a failed install or upgrade
    rolls back instead of leaving a half-applied release that blocks the next `pulumi up`.
    `protect`: uninstalling the release would delete what it keeps (Prometheus' series)."""
    return k8s.helm.v3.Release(
        resource_name,
        k8s.helm.v3.ReleaseArgs(
            name=release_name,
            chart=chart.chart,
            version=chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository) if chart.repository else None,
            namespace=namespace if isinstance(namespace, str) else namespace.metadata.name,
            create_namespace=False,
            values=dict(values),
            atomic=True,
            cleanup_on_fail=True,
            timeout=chart.timeout_seconds,
            max_history=10,
        ),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(depends_on), protect=protect),
    )
