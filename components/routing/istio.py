"""Istio as the inference gateway where the cloud has no managed one (EKS, AKS): ingress only.

`base` brings Istio's CRDs and its validation webhook; `istiod` is the control plane, and with the
Gateway API it deploys the proxies itself, one Deployment and LoadBalancer Service per Gateway
(shaped by the Gateway's `infrastructure`, see `gateway.py`). Nothing joins the mesh: sidecar
injection stays opt-in per namespace and we label none. istiod only serves InferencePool backends
with `ENABLE_GATEWAY_API_INFERENCE_EXTENSION` on (SOURCES.md, routing caveats).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from ..config.routing import GatewayProxyConfig
from ..releases import ISTIO_BASE, ISTIO_VERSION, ISTIOD, addon_namespace, pinned_release

NAMESPACE = "istio-system"
# The chart at its tag points at Istio's testing registry with tag `latest`: pin the release images.
ISTIO_HUB = "docker.io/istio"
ZONE_KEY = "topology.kubernetes.io/zone"
# The chart asks 500m and 2 GiB, sized for meshes of thousands of sidecars; an ingress-only control
# plane with one Gateway watches a few dozen objects.
ISTIOD_REQUESTS = {"cpu": "200m", "memory": "512Mi"}


def zone_spread(labels: dict[str, str]) -> list[dict[str, Any]]:
    """One replica per zone before any zone gets a second; ScheduleAnyway so a system pool that
    spans fewer zones than replicas still runs them all."""
    return [{"maxSkew": 1, "topologyKey": ZONE_KEY, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": labels}}]


def istiod_replicas(proxy: GatewayProxyConfig) -> int:
    """A highly available gateway needs a highly available control plane: the proxies keep serving
    their last configuration without istiod, but new routes and endpoints wait for it."""
    return 2 if proxy.replicas > 1 else 1


def istiod_values(proxy: GatewayProxyConfig, system_node_selector: dict[str, str]) -> dict[str, Any]:
    replicas = istiod_replicas(proxy)
    return {
        "global": {
            "hub": ISTIO_HUB,
            "tag": ISTIO_VERSION,
            # a PodDisruptionBudget of minAvailable 1 over a single replica blocks every node drain
            "defaultPodDisruptionBudget": {"enabled": replicas > 1},
        },
        "replicaCount": replicas,
        "autoscaleEnabled": False,  # a handful of Gateways and routes: load does not grow with traffic
        "resources": {"requests": dict(ISTIOD_REQUESTS), "limits": {"memory": "1Gi"}},
        "nodeSelector": dict(system_node_selector),
        "topologySpreadConstraints": zone_spread({"app": "istiod"}) if replicas > 1 else [],
        "seccompProfile": {"type": "RuntimeDefault"},  # for Pod Security `restricted`
        "env": {"ENABLE_GATEWAY_API_INFERENCE_EXTENSION": "true"},
        "sidecarInjectorWebhook": {"enableNamespacesByDefault": False},
        # the proxies istiod deploys for a Gateway: RuntimeDefault seccomp, so the gateway's own
        # namespace can enforce `restricted` as well
        "gateways": {"seccompProfile": {"type": "RuntimeDefault"}},
    }


@dataclass(frozen=True)
class IstioControlPlaneArgs:
    provider: k8s.Provider
    proxy: GatewayProxyConfig
    system_node_selector: dict[str, str]
    depends_on: tuple[pulumi.Resource, ...]  # the Gateway API CRDs: istiod watches them from its start


class IstioControlPlane(pulumi.ComponentResource):
    """Depend on `ready` before a Gateway of class `istio`, and before any chart that writes Istio
    objects (the EPP chart's DestinationRule, BBR's EnvoyFilter)."""

    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: IstioControlPlaneArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:routing:IstioControlPlane", name, None, opts)
        namespace = addon_namespace(f"{name}-namespace", NAMESPACE, "restricted", args.provider, self)
        base = pinned_release(
            f"{name}-base", "istio-base", ISTIO_BASE, namespace, {"defaultRevision": "default"}, args.provider, self, depends_on=args.depends_on
        )
        istiod = pinned_release(
            f"{name}-istiod", "istiod", ISTIOD, namespace, istiod_values(args.proxy, args.system_node_selector), args.provider, self,
            depends_on=[base, *args.depends_on],
        )
        self.ready = [base, istiod]
        self.register_outputs({"namespace": NAMESPACE, "version": ISTIO_VERSION})
