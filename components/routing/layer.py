"""The routing layer of a stack: the CRDs and gateway the cloud does not bring, the Gateway, the
answer for unknown models, then one ModelRoute per routed model.

What differs per cloud arrives as `ClusterContract.gateway`: whether we install the Gateway API
and InferencePool CRDs, and whether the proxies are ours (Istio) or the cloud's (GKE).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from ..clusters.contract import ClusterContract
from ..config.models import ModelConfig
from ..config.routing import RoutingConfig
from ..serving.service import VllmModelService
from .crd_install import RoutingCrds, RoutingCrdsArgs
from .gateway import GATEWAY_NAME, NAMESPACE, InferenceGateway, InferenceGatewayArgs, high_availability
from .istio import IstioControlPlane, IstioControlPlaneArgs
from .not_found import ModelNotFound, ModelNotFoundArgs
from .pools import ModelRoute, ModelRouteArgs


@dataclass(frozen=True)
class RoutingArgs:
    cluster: ClusterContract
    routing: RoutingConfig
    routed: list[tuple[ModelConfig, VllmModelService]]


class Routing(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(self, name: str, args: RoutingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:routing:Routing", name, None, opts)
        cluster, routing = args.cluster, args.routing
        support = cluster.gateway
        if support is None:
            raise ValueError("routing is on but the cluster hands over no gateway support")  # config validation prevents it
        crds = RoutingCrds(f"{name}-crds", RoutingCrdsArgs(cluster.provider, gateway_api=support.installs_crds), opts=pulumi.ResourceOptions(parent=self))
        ready: list[pulumi.Resource] = list(crds.ready)
        if support.provider == "istio":
            istio = IstioControlPlane(
                f"{name}-istio",
                IstioControlPlaneArgs(cluster.provider, routing.proxy, dict(cluster.system_node_selector), (*crds.ready, *cluster.ready)),
                opts=pulumi.ResourceOptions(parent=self),
            )
            ready += istio.ready
        gateway = InferenceGateway(
            f"{name}-gateway",
            InferenceGatewayArgs(cluster, support, routing, [m.namespace_name for m, _ in args.routed], tuple(ready)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        ModelNotFound(
            f"{name}-not-found",
            ModelNotFoundArgs(
                cluster, support, routing, [m.served_name for m, _ in args.routed], gateway.namespace, GATEWAY_NAME,
                replicas=2 if high_availability(routing) else 1, depends_on=(*ready, gateway.gateway),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.routes = [
            ModelRoute(
                f"{name}-{model.name}",
                ModelRouteArgs(
                    model, routing, cluster, support, GATEWAY_NAME, NAMESPACE, service.namespace_resource, (*ready, gateway.gateway, service.deployment)
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for model, service in args.routed
        ]
        self.url = gateway.url
        self.register_outputs({"url": self.url, "models": [m.served_name for m, _ in args.routed]})
