"""The routing layer of a stack: the gateway, then one ModelRoute per routed model."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from ..clusters.contract import ClusterContract
from ..config.models import ModelConfig
from ..config.routing import RoutingConfig
from ..serving.service import VllmModelService
from .gateway import GATEWAY_NAME, NAMESPACE, InferenceGateway, InferenceGatewayArgs
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
        support = args.cluster.gateway
        if support is None:
            raise ValueError("routing is on but the cluster hands over no gateway support")  # config validation prevents it
        gateway = InferenceGateway(
            f"{name}-gateway",
            InferenceGatewayArgs(args.cluster, support, args.routing, [m.namespace_name for m, _ in args.routed]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.routes = [
            ModelRoute(
                f"{name}-{model.name}",
                ModelRouteArgs(model, args.routing, args.cluster, support, GATEWAY_NAME, NAMESPACE, service.namespace_resource, (gateway.gateway, service.deployment)),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for model, service in args.routed
        ]
        self.url = gateway.url
        self.register_outputs({"url": self.url, "models": [m.served_name for m, _ in args.routed]})
