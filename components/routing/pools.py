"""One routed model: its endpoint picker (EPP) and InferencePool from the llm-d-router-gateway
chart, the HTTPRoute that sends the model's requests to the pool, a PodDisruptionBudget for the
EPP when it has replicas to spare, and the NetworkPolicy that lets the gateway's proxies and the
EPP reach the model's pods (and nothing else: the model's own policy still governs the rest).

The route matches `X-Gateway-Model-Name`, which body-based routing copies from the request's
`model`, against the model's served name. The model's Service is untouched, so in-cluster clients
that call it directly keep working, and KEDA keeps scaling on the same vLLM signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from ..catalog.images import catalog_image
from ..clusters.contract import ClusterContract, GatewaySupport
from ..config.models import ModelConfig
from ..config.routing import RoutingConfig
from ..releases import LLM_D_ROUTER_GATEWAY, pinned_release
from ..serving.pod import VLLM_PORT
from ..serving.service import dns_egress, https_egress, pod_labels
from .gateway import gateway_peers

MODEL_HEADER = "X-Gateway-Model-Name"  # set by body-based routing from the request body's `model`
OBJECTIVE_HEADER = "x-llm-d-inference-objective"  # llm-d-router v0.10.0 pkg/epp/metadata/consts.go ObjectiveKey
EPP_IMAGE = catalog_image("endpoint-picker").chart_values()  # the chart defaults to tag main, pulled Always
ROUTING_COMPONENT = "inference-routing"  # app.kubernetes.io/component of the objects we write beside a model
LABELS = {"app.kubernetes.io/part-of": "llm-platform", "app.kubernetes.io/component": ROUTING_COMPONENT}
EPP_EXT_PROC_PORT = 9002  # the chart's default: the gateway calls the picker here
EPP_HEALTH_PORT = 9003  # the chart's default gRPC health port: probes, and GKE's load balancer health check
# What the v0.10.0 EPP reads from each vLLM pod (pkg/epp/framework/plugins/datalayer/extractor/
# metrics/factories.go, the vllm defaults): every name must be one vLLM 0.33.0 publishes.
EPP_VLLM_METRICS = ("vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:lora_requests_info", "vllm:cache_config_info")


def pool_name(model: ModelConfig) -> str:
    """The release, the InferencePool and (with `-epp`) the picker's Deployment are named after it."""
    return f"{model.name}-pool"


def epp_pod_labels(model: ModelConfig) -> dict[str, str]:
    """The chart's selector label of the EPP pods (routerlib `llm-d-router.selectorLabels`)."""
    return {"llm-d-router-gateway": f"{pool_name(model)}-epp"}


def _system_pool_affinity(cluster: ClusterContract) -> dict[str, Any]:
    """The chart has no nodeSelector for the EPP: required node affinity to the system pool."""
    expressions = [{"key": k, "operator": "In", "values": [v]} for k, v in sorted(cluster.system_node_selector.items())]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": expressions}]}}}


def epp_values(model: ModelConfig, routing: RoutingConfig, cluster: ClusterContract, gateway: GatewaySupport) -> dict[str, Any]:
    picker = routing.endpoint_picker
    return {
        "provider": {"name": gateway.provider},
        "httpRoute": {"create": False},  # ours, typed, below
        "router": {
            "modelServers": {"type": "vllm", "protocol": "http", "matchLabels": pod_labels(model), "targetPorts": [{"number": VLLM_PORT}]},
            "inferencePool": {"create": True, "failureMode": "FailOpen"},  # a picker outage degrades to plain balancing, not an outage
            "epp": {
                "replicas": picker.replicas,
                "image": EPP_IMAGE,
                "resources": {"requests": {"cpu": picker.cpu, "memory": picker.memory}, "limits": {"memory": picker.memory}},
                "affinity": _system_pool_affinity(cluster),
            },
        },
    }


@dataclass(frozen=True)
class ModelRouteArgs:
    model: ModelConfig
    routing: RoutingConfig
    cluster: ClusterContract
    gateway: GatewaySupport
    gateway_name: str
    gateway_namespace: str
    model_namespace: k8s.core.v1.Namespace
    depends_on: tuple[pulumi.Resource, ...]  # the CRDs, Istio where it is ours, the Gateway, the model's Deployment


class ModelRoute(pulumi.ComponentResource):
    def __init__(self, name: str, args: ModelRouteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:routing:ModelRoute", name, None, opts)
        model, cluster = args.model, args.cluster
        ns = model.namespace_name
        child = pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[args.model_namespace])
        release = pinned_release(
            f"{name}-pool", pool_name(model), LLM_D_ROUTER_GATEWAY, ns, epp_values(model, args.routing, cluster, args.gateway),
            cluster.provider, self, depends_on=[args.model_namespace, *args.depends_on],
        )
        timeout = f"{args.routing.request_timeout_seconds(args.gateway.max_request_seconds)}s"
        rule: dict[str, Any] = {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}, "headers": [{"type": "Exact", "name": MODEL_HEADER, "value": model.served_name}]}],
            "backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": pool_name(model)}],
            # a whole generation, streamed: the default (15 s on some gateways) would cut it
            "timeouts": {"request": timeout},
        }
        if model.priority is not None:
            objective = self._objective(name, model, child, release)
            # every request to this model carries its objective; `set` overwrites what a client sent,
            # so no client can raise its own priority
            rule["filters"] = [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": OBJECTIVE_HEADER, "value": objective}]}}]
        self.route = k8s.apiextensions.CustomResource(
            f"{name}-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=model.name, namespace=ns, labels=LABELS),
            spec={
                "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": args.gateway_name, "namespace": args.gateway_namespace}],
                **({"hostnames": [args.routing.hostname]} if args.routing.hostname else {}),
                "rules": [rule],
            },
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[release, *args.depends_on])),
        )
        if args.routing.endpoint_picker.replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-epp-pdb",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{pool_name(model)}-epp", namespace=ns, labels=LABELS),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(min_available=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=epp_pod_labels(model))),
                opts=child,
            )
        self._network_policy(name, args, child)
        self._picker_network_policy(name, args, child)
        self.release = release
        self.register_outputs({"pool": pool_name(model), "servedModelName": model.served_name})

    @staticmethod
    def _objective(name: str, model: ModelConfig, opts: pulumi.ResourceOptions, release: pulumi.Resource) -> str:
        """The model's InferenceObjective: its priority in the picker's admission (llm-d-router
        v0.10.0: a priority below 0 is sheddable, refused while the pool is saturated)."""
        k8s.apiextensions.CustomResource(
            f"{name}-objective",
            api_version="llm-d.ai/v1alpha2",
            kind="InferenceObjective",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=model.name, namespace=model.namespace_name, labels=LABELS),
            spec={"poolRef": {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": pool_name(model)}, "priority": model.priority},
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[release])),
        )
        return model.name

    def _network_policy(self, name: str, args: ModelRouteArgs, opts: pulumi.ResourceOptions) -> None:
        """NetworkPolicies add up: this one admits, on the API port only, the gateway's proxies
        (the managed gateway's proxy ranges, or our Istio proxy pods) and the model's own EPP (it
        reads /metrics)."""
        model = args.model
        peers = gateway_peers(args.gateway, args.gateway_namespace, args.gateway_name)
        peers.append(k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=epp_pod_labels(model))))
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{model.name}-from-gateway", namespace=model.namespace_name, labels=LABELS),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_labels(model)),
                policy_types=["Ingress"],
                ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=peers, ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=VLLM_PORT, protocol="TCP")])],
            ),
            opts=opts,
        )

    def _picker_network_policy(self, name: str, args: ModelRouteArgs, opts: pulumi.ResourceOptions) -> None:
        """The endpoint picker under the namespace's default-deny. In: the gateway's proxies, on
        the ext-proc port and the gRPC health port (the chart's health check on GKE). Out: DNS,
        the model's pods on the API port (it reads /metrics), and the API server (it watches its
        pool, pods and objectives). The API server's address is the cloud's and may be public, and
        a CNI may check the Service address before translation or the endpoint after, both on
        443: so TCP 443 to any address, as nothing narrower holds on all three clouds."""
        model = args.model
        peers = gateway_peers(args.gateway, args.gateway_namespace, args.gateway_name)
        to_models = k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_labels(model)))
        k8s.networking.v1.NetworkPolicy(
            f"{name}-epp-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{pool_name(model)}-epp", namespace=model.namespace_name, labels=LABELS),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=epp_pod_labels(model)),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=peers,
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=port, protocol="TCP") for port in (EPP_EXT_PROC_PORT, EPP_HEALTH_PORT)],
                    )
                ],
                egress=[
                    dns_egress(),
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[to_models], ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=VLLM_PORT, protocol="TCP")]
                    ),
                    https_egress(),
                ],
            ),
            opts=opts,
        )
