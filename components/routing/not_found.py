"""What the gateway answers when no model route matches: OpenAI-style JSON, not the proxy's bare 404.

A request whose `model` names no served model (or has no body, like `GET /v1/models`) carries no
matching `X-Gateway-Model-Name`, so it falls to this route: `PathPrefix /` and no header match,
which Gateway API precedence ranks below every model route. A tiny nginx answers it with OpenAI's
error shape (`{"error": {"message", "type", "param", "code"}}`, the shape vLLM itself returns for
an unknown model) and lists the routed models at `/v1/models`, so clients and SDKs get an error
they parse instead of an HTML page. The answer is fixed text: the client's model name is never
echoed into it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from ..catalog.images import catalog_image
from ..clusters.contract import ClusterContract, GatewaySupport
from ..config.routing import RoutingConfig
from .gateway import NAMESPACE as GATEWAY_NAMESPACE
from .gateway import gateway_peers

NAME = "model-not-found"
PORT = 8080  # nginx-unprivileged listens above 1024
HEALTH_PATH = "/healthz"
IMAGE = catalog_image("not-found").reference  # nginxinc/nginx-unprivileged, an alpine release
NGINX_UID = 10101  # not the image's 101: a high UID (its writable paths are our /tmp emptyDir, config is world-readable)
REQUESTS = {"cpu": "10m", "memory": "32Mi"}  # fixed text from memory
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "llm-platform", "app.kubernetes.io/component": "inference-routing"}


def not_found_body() -> str:
    return json.dumps(
        {
            "error": {
                "message": "The model in this request is not served here; GET /v1/models lists the models this endpoint serves.",
                "type": "NotFoundError",
                "param": "model",
                "code": 404,
            }
        },
        separators=(",", ":"),
    )


def models_body(served_names: list[str]) -> str:
    return json.dumps(
        {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "llm-platform"} for name in sorted(served_names)]},
        separators=(",", ":"),
    )


def _nginx_string(text: str) -> str:
    """A single-quoted nginx string: JSON never holds a single quote or a backslash-quote here, but
    escape both anyway so a model name can never end the string."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def nginx_config(served_names: list[str]) -> str:
    return "\n".join(
        [
            "server {",
            f"  listen {PORT};",
            "  default_type application/json;",
            "  access_log off;",
            f"  location = {HEALTH_PATH} {{ return 200 '{{\"status\":\"ok\"}}'; }}",
            f"  location = /v1/models {{ return 200 {_nginx_string(models_body(served_names))}; }}",
            f"  location / {{ return 404 {_nginx_string(not_found_body())}; }}",
            "}",
            "",
        ]
    )


@dataclass(frozen=True)
class ModelNotFoundArgs:
    cluster: ClusterContract
    gateway: GatewaySupport
    routing: RoutingConfig
    served_names: list[str]
    namespace: k8s.core.v1.Namespace
    gateway_name: str
    replicas: int
    depends_on: tuple[pulumi.Resource, ...]  # the CRDs, Istio where it is ours, the Gateway


class ModelNotFound(pulumi.ComponentResource):
    def __init__(self, name: str, args: ModelNotFoundArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:routing:ModelNotFound", name, None, opts)
        cluster = args.cluster
        ns = args.namespace.metadata.name
        text = nginx_config(args.served_names)
        config_digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        child = pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[args.namespace])
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=ns, labels=LABELS),
            data={"default.conf": text},
            opts=child,
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=ns, labels=LABELS),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=args.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=LABELS),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    # a new config rolls the pods (nginx reads it once)
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=LABELS, annotations={"llm-platform.io/config-sha256": config_digest}),
                    spec=self._pod_spec(cluster),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[config])),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=ns, labels=LABELS),
            spec=k8s.core.v1.ServiceSpecArgs(selector=LABELS, ports=[k8s.core.v1.ServicePortArgs(name="http", port=PORT, target_port=PORT, app_protocol="http")]),
            opts=child,
        )
        if args.replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=ns, labels=LABELS),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(min_available=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=LABELS)),
                opts=child,
            )
        if args.gateway.backend_health_check_policy:
            self._health_check_policy(name, ns, child)
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=ns, labels=LABELS),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=LABELS),
                # the gateway's proxies, on nginx's port; nginx calls nothing
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=gateway_peers(args.gateway, GATEWAY_NAMESPACE, args.gateway_name),
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=PORT, protocol="TCP")],
                    )
                ],
            ),
            opts=child,
        )
        self.route = k8s.apiextensions.CustomResource(
            f"{name}-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=ns, labels=LABELS),
            spec={
                "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": args.gateway_name, "namespace": ns}],
                **({"hostnames": [args.routing.hostname]} if args.routing.hostname else {}),
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                        "backendRefs": [{"group": "", "kind": "Service", "name": NAME, "port": PORT}],
                    }
                ],
            },
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[service, *args.depends_on])),
        )
        self.register_outputs({"service": NAME})

    @staticmethod
    def _pod_spec(cluster: ClusterContract) -> k8s.core.v1.PodSpecArgs:
        return k8s.core.v1.PodSpecArgs(
            node_selector=dict(cluster.system_node_selector),
            automount_service_account_token=False,
            security_context=k8s.core.v1.PodSecurityContextArgs(
                run_as_non_root=True, run_as_user=NGINX_UID, run_as_group=NGINX_UID, seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault")
            ),
            containers=[
                k8s.core.v1.ContainerArgs(
                    name="nginx",
                    image=IMAGE,
                    # skip the image's entrypoint scripts: they try to rewrite the read-only config
                    command=["nginx", "-g", "daemon off;"],
                    ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                    readiness_probe=k8s.core.v1.ProbeArgs(http_get=k8s.core.v1.HTTPGetActionArgs(path=HEALTH_PATH, port=PORT), period_seconds=10),
                    liveness_probe=k8s.core.v1.ProbeArgs(http_get=k8s.core.v1.HTTPGetActionArgs(path=HEALTH_PATH, port=PORT), period_seconds=20),
                    resources=k8s.core.v1.ResourceRequirementsArgs(requests=dict(REQUESTS), limits={"cpu": "200m", "memory": "64Mi"}),
                    security_context=k8s.core.v1.SecurityContextArgs(
                        allow_privilege_escalation=False, read_only_root_filesystem=True, capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"])
                    ),
                    volume_mounts=[
                        k8s.core.v1.VolumeMountArgs(name="config", mount_path="/etc/nginx/conf.d", read_only=True),
                        k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),  # pid file and temp paths of the unprivileged image
                    ],
                )
            ],
            volumes=[
                k8s.core.v1.VolumeArgs(name="config", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=NAME)),
                k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory", size_limit="16Mi")),
            ],
        )

    @staticmethod
    def _health_check_policy(name: str, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions) -> None:
        """GKE's load balancer health-checks a Service backend with `GET /` by default, which this
        backend answers 404 by design: point the check at /healthz."""
        k8s.apiextensions.CustomResource(
            f"{name}-health-check",
            api_version="networking.gke.io/v1",
            kind="HealthCheckPolicy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=namespace, labels=LABELS),
            spec={
                "targetRef": {"group": "", "kind": "Service", "name": NAME},
                "default": {"config": {"type": "HTTP", "httpHealthCheck": {"port": PORT, "requestPath": HEALTH_PATH}}},
            },
            opts=opts,
        )
