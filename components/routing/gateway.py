"""The stack's one Gateway and body-based routing (BBR), in their own namespace.

BBR reads the request body's `model` and sets `X-Gateway-Model-Name` (its `body-field-to-header`
plugin), which every model's HTTPRoute matches. On GKE the chart attaches BBR to our Gateway with a
GCPRoutingExtension (`inferenceGateway.name` must be the Gateway's name). BBR's chart takes no
node selector; GPU nodes are tainted, so it never lands there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from ..clusters.contract import ClusterContract, GatewaySupport
from ..config.routing import RoutingConfig
from ..releases import BODY_BASED_ROUTING, addon_namespace, pinned_release

NAMESPACE = "llm-gateway"
GATEWAY_NAME = "inference-gateway"
BBR_RELEASE = "body-based-routing"


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
        "bbr": {"replicas": routing.endpoint_picker.replicas, "image": {"pullPolicy": "IfNotPresent"}},
        "provider": {"name": gateway.provider},
        "inferenceGateway": {"name": GATEWAY_NAME},
    }


@dataclass(frozen=True)
class InferenceGatewayArgs:
    cluster: ClusterContract
    gateway: GatewaySupport
    routing: RoutingConfig
    model_namespaces: list[str]


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
        namespace = addon_namespace(f"{name}-namespace", NAMESPACE, "restricted", cluster.provider, self)
        child = pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[namespace, *cluster.ready])
        self.gateway = GatewayObject(
            f"{name}-gateway",
            {"name": GATEWAY_NAME, "namespace": NAMESPACE, "labels": gateway_labels(routing)},
            {"gatewayClassName": support.external_class if routing.external else support.internal_class, "listeners": [listener(routing, args.model_namespaces)]},
            child,
        )
        self.bbr = pinned_release(
            f"{name}-bbr", BBR_RELEASE, BODY_BASED_ROUTING, namespace, bbr_values(routing, support), cluster.provider, self, depends_on=[self.gateway]
        )
        self.address = self.gateway.status.apply(_first_address)
        scheme = "https" if routing.tls_secret else "http"
        port = "" if (scheme, routing.port) in (("http", 80), ("https", 443)) else f":{routing.port}"
        host = routing.hostname
        self.url = pulumi.Output.from_input(host).apply(lambda h: f"{scheme}://{h}{port}/v1") if host else self.address.apply(lambda a: f"{scheme}://{a}{port}/v1" if a else "")
        self.register_outputs({"gateway": GATEWAY_NAME, "namespace": NAMESPACE, "url": self.url})


def _first_address(status: Any) -> str:
    addresses = (status or {}).get("addresses") or []
    return str(addresses[0].get("value", "")) if addresses else ""
