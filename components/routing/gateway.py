"""The stack's one Gateway and body-based routing (BBR), in their own namespace.

BBR reads the request body's `model` and sets `X-Gateway-Model-Name` (its `body-field-to-header`
plugin), which every model's HTTPRoute matches. The chart attaches BBR to our Gateway by name
(`inferenceGateway.name`): a GCPRoutingExtension on GKE, an EnvoyFilter with Istio. BBR's chart
takes no node selector; GPU nodes are tainted, so it never lands there.

Where the cloud's gateway is managed (GKE) the Gateway is all there is. With Istio (EKS, AKS) the
Gateway also says how istiod should run its proxies: their size, replicas, zone spread, system-pool
placement and PodDisruptionBudget, and the annotations the cloud's load balancer needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from ..catalog.images import catalog_image
from ..clusters.contract import ClusterContract, GatewaySupport
from ..config.routing import GatewayProxyConfig, RoutingConfig
from ..releases import BODY_BASED_ROUTING, addon_namespace, pinned_release
from .istio import zone_spread

NAMESPACE = "llm-gateway"
GATEWAY_NAME = "inference-gateway"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"


def gateway_peers(gateway: GatewaySupport, namespace: str, name: str) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    """Where the gateway's proxies connect from: the managed gateway's proxy ranges and its load
    balancer's health-check probers, or our Istio proxy pods (labelled with the Gateway's name in
    its namespace)."""
    cidrs = (*gateway.proxy_source_cidrs, *gateway.health_check_source_cidrs)
    peers = [k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr)) for cidr in cidrs]
    if gateway.in_cluster_proxies:
        peers.append(
            k8s.networking.v1.NetworkPolicyPeerArgs(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": namespace}),
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={GATEWAY_NAME_LABEL: name}),
            )
        )
    return peers
PROXY_CONFIG = f"{GATEWAY_NAME}-proxy"
BBR_RELEASE = "body-based-routing"
BBR_DEPLOYMENT = "body-based-router"  # the chart's `bbr.name`; its pods carry `app: <name>`


def high_availability(routing: RoutingConfig) -> bool:
    """Prod asks for spare pickers or proxies; the small pieces beside them follow."""
    return routing.endpoint_picker.replicas > 1 or routing.proxy.replicas > 1


def listener(routing: RoutingConfig, model_namespaces: list[str]) -> dict[str, Any]:
    https = routing.tls_secret is not None
    spec: dict[str, Any] = {
        "name": "https" if https else "http",
        "port": routing.port,
        "protocol": "HTTPS" if https else "HTTP",
        # only the model namespaces may attach routes to the stack's gateway
        "allowedRoutes": {
            "namespaces": {
                "from": "Selector",
                "selector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(set(model_namespaces))}]},
            }
        },
    }
    if routing.hostname:
        spec["hostname"] = routing.hostname
    if https:
        spec["tls"] = {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": routing.tls_secret}]}
    return spec


def gateway_labels(routing: RoutingConfig) -> dict[str, str]:
    """`routing.external` is the stack's explicit yes to an internet-facing endpoint: the label the
    policy pack's no-public-endpoint rule looks for."""
    labels = {"app.kubernetes.io/part-of": "llm-platform"}
    if routing.external:
        labels["llm-platform.io/public"] = "true"
    return labels


def bbr_values(routing: RoutingConfig, gateway: GatewaySupport) -> dict[str, Any]:
    return {
        "bbr": {"replicas": 2 if high_availability(routing) else 1, "image": catalog_image("body-based-routing").chart_values()},
        "provider": {"name": gateway.provider},
        "inferenceGateway": {"name": GATEWAY_NAME},
    }


def proxy_pod_labels() -> dict[str, str]:
    """The label Istio puts on the proxy pods it deploys for our Gateway."""
    return {GATEWAY_NAME_LABEL: GATEWAY_NAME}


def proxy_overlays(proxy: GatewayProxyConfig, system_node_selector: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Istio's per-Gateway customization (the ConfigMap that `infrastructure.parametersRef` names):
    strategic-merge patches over the Deployment it generates, plus an HPA and a PDB, which Istio
    creates only when their key is present."""
    autoscaled = proxy.max_replicas is not None and proxy.max_replicas > proxy.replicas
    pod_spec = {
        "nodeSelector": dict(system_node_selector),  # never on a GPU node
        "topologySpreadConstraints": zone_spread(proxy_pod_labels()),
        "containers": [
            {"name": "istio-proxy", "resources": {"requests": {"cpu": proxy.cpu, "memory": proxy.memory}, "limits": {"memory": proxy.memory}}}
        ],
    }
    deployment: dict[str, Any] = {"spec": {"template": {"spec": pod_spec}}}
    overlays: dict[str, dict[str, Any]] = {"deployment": deployment}
    if autoscaled:
        overlays["horizontalPodAutoscaler"] = {
            "spec": {
                "minReplicas": proxy.replicas,
                "maxReplicas": proxy.max_replicas,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
            }
        }
    else:
        deployment["spec"]["replicas"] = proxy.replicas
    if proxy.replicas > 1:
        overlays["podDisruptionBudget"] = {"spec": {"minAvailable": 1}}
    return overlays


@dataclass(frozen=True)
class InferenceGatewayArgs:
    cluster: ClusterContract
    gateway: GatewaySupport
    routing: RoutingConfig
    model_namespaces: list[str]
    depends_on: tuple[pulumi.Resource, ...]  # the CRDs we install, and Istio where it is ours


class GatewayObject(pulumi.CustomResource):
    """A `gateway.networking.k8s.io/v1` Gateway whose `status` is an output (the typed
    CustomResource keeps only apiVersion, kind, metadata and spec): the address it gets is a stack output."""

    status: pulumi.Output[Any]

    def __init__(self, name: str, metadata: dict[str, Any], spec: dict[str, Any], opts: pulumi.ResourceOptions):
        props = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": metadata, "spec": spec, "status": None}
        super().__init__("kubernetes:gateway.networking.k8s.io/v1:Gateway", name, props, opts)


class InferenceGateway(pulumi.ComponentResource):
    gateway: GatewayObject
    address: pulumi.Output[str]

    def __init__(self, name: str, args: InferenceGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:routing:InferenceGateway", name, None, opts)
        cluster, routing, support = args.cluster, args.routing, args.gateway
        # `baseline`, not `restricted`: the BBR chart (v1.5.0 templates/bbr.yaml) writes its pod with no
        # securityContext at all, and `restricted` would refuse it (the install then times out).
        namespace = addon_namespace(f"{name}-namespace", NAMESPACE, "baseline", cluster.provider, self)
        self.namespace = namespace
        child = pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[namespace, *cluster.ready, *args.depends_on])
        spec: dict[str, Any] = {
            "gatewayClassName": support.external_class if routing.external else support.internal_class,
            "listeners": [listener(routing, [*args.model_namespaces, NAMESPACE])],
        }
        if support.in_cluster_proxies:
            spec["infrastructure"] = self._proxy_infrastructure(name, routing, support, cluster, child)
        self.gateway = GatewayObject(f"{name}-gateway", {"name": GATEWAY_NAME, "namespace": NAMESPACE, "labels": gateway_labels(routing)}, spec, child)
        self.bbr = pinned_release(
            f"{name}-bbr", BBR_RELEASE, BODY_BASED_ROUTING, namespace, bbr_values(routing, support), cluster.provider, self,
            depends_on=[self.gateway, *args.depends_on],
        )
        if high_availability(routing):
            # BBR fails closed (its ext_proc filter has failure_mode_allow: false): no BBR, no routing
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-bbr-pdb",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=BBR_DEPLOYMENT, namespace=NAMESPACE, labels={"app.kubernetes.io/part-of": "llm-platform"}),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(min_available=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app": BBR_DEPLOYMENT})),
                opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[namespace]),
            )
        self.address = self.gateway.status.apply(_first_address)
        scheme = "https" if routing.tls_secret else "http"
        port = "" if (scheme, routing.port) in (("http", 80), ("https", 443)) else f":{routing.port}"
        host = routing.hostname
        self.url = pulumi.Output.from_input(host).apply(lambda h: f"{scheme}://{h}{port}/v1") if host else self.address.apply(lambda a: f"{scheme}://{a}{port}/v1" if a else "")
        self.register_outputs({"gateway": GATEWAY_NAME, "namespace": NAMESPACE, "url": self.url})

    def _proxy_infrastructure(
        self, name: str, routing: RoutingConfig, support: GatewaySupport, cluster: ClusterContract, opts: pulumi.ResourceOptions
    ) -> dict[str, Any]:
        """The proxies' shape (a ConfigMap Istio reads) and the cloud's load-balancer annotations,
        which Istio copies onto the Service it creates."""
        overlays = proxy_overlays(routing.proxy, cluster.system_node_selector)
        k8s.core.v1.ConfigMap(
            f"{name}-proxy-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PROXY_CONFIG, namespace=NAMESPACE, labels={"app.kubernetes.io/part-of": "llm-platform"}),
            data={key: yaml.safe_dump(value, sort_keys=True) for key, value in overlays.items()},
            opts=opts,
        )
        return {
            "annotations": support.service_annotations(routing.external, routing.port),
            "parametersRef": {"group": "", "kind": "ConfigMap", "name": PROXY_CONFIG},
        }


def _first_address(status: Any) -> str:
    addresses = (status or {}).get("addresses") or []
    return str(addresses[0].get("value", "")) if addresses else ""
