"""VllmModelService: one vLLM model as a production service, from weights to pager.

One component per `llm-platform:models[]` entry. Its children, all typed Kubernetes objects (or
CRs validated against the pinned CRDs) in the model's namespace:

- ServiceAccount (no API token), the HF token Secret (gated models only, from `require_secret`),
- the weights PVC (ReadWriteMany on the shared storage class) and the download Job,
- the Deployment, its Service, PodDisruptionBudget and NetworkPolicy, an optional Ingress,
- the KEDA ScaledObject, a ServiceMonitor and a PrometheusRule.

The Deployment sets no `replicas`: KEDA's HPA owns the count (Kubernetes' advice for autoscaled
Deployments), so a `pulumi up` never resets a scaled-out service to its minimum.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from ..admission.objects import CustomObject
from ..config.models import ModelConfig
from ..config.types import duration_seconds
from ..releases import addon_namespace
from ..scheduling import GpuPoolPlacement
from ..vllm import api_guard
from ..vllm.flags import VLLM_VERSION
from .pod import (
    API_GUARD_MODULE,
    COMPILE_CACHE_MOUNT,
    GPU_RESOURCE,
    PORT_NAME,
    VLLM_PORT,
    WEIGHTS_MOUNT,
    PodTiming,
    affinity,
    api_guard_env,
    api_guard_mounts,
    api_guard_volumes,
    compile_cache_mounts,
    compile_cache_setup,
    compile_cache_setup_mounts,
    compile_cache_volumes,
    locked_down,
    model_placements,
    model_pod_security,
    probes,
    server_user_env,
    tolerations,
    topology_spread,
    vllm_args,
    wait_for_weights_script,
    writable_mounts,
    writable_volumes,
)
from .headroom import headroom_deployment
from .signals import prometheus_rule_spec, scaled_object_spec, service_monitor_spec
from .weights import HF_TOKEN_KEY, download_job_name, download_job_spec, download_pod_labels

SERVICE_PORT = 80


@dataclass(frozen=True)
class ModelPlatform:
    """What every model service gets from the cluster and add-on layers."""

    provider: k8s.Provider
    gpu_pools: tuple[GpuPoolPlacement, ...]
    system_node_selector: dict[str, str]
    storage_class: str
    storage: pulumi.Resource  # the StorageClass (and its driver) PVCs wait for
    claim_size: str  # what a weights claim requests: the cloud's choice (EFS ignores it; Filestore bills it)
    prometheus_url: str
    monitoring_namespace: str  # Prometheus scrapes from here: admitted by the NetworkPolicy
    monitoring_release: pulumi.Resource  # brings the ServiceMonitor/PrometheusRule CRDs
    keda_release: pulumi.Resource  # brings the ScaledObject CRD
    # Where nodes pull an image from (the cluster's Docker Hub mirror, if any), and what must exist first.
    image_of: Callable[[str], str] = field(default=lambda reference: reference)
    image_ready: tuple[pulumi.Resource, ...] = ()
    image_prepull: bool = False
    weights_fs_group: bool = False  # the pods writing the weights volume set fsGroup (SharedWeights.writers_need_fs_group)


@dataclass(frozen=True)
class VllmModelServiceArgs:
    model: ModelConfig
    platform: ModelPlatform
    hf_token: pulumi.Output[str] | None = None  # secret; required when model.gated
    shared_namespace: k8s.core.v1.Namespace | None = None  # when model.namespace is set
    headroom_class: k8s.scheduling.v1.PriorityClass | None = None  # when some model holds warm headroom
    routed: bool = False  # the routing layer puts this model's endpoint picker in its namespace
    random_provider: pulumi.ProviderResource | None = None  # for the API key, when access.apiKey is on


def model_namespace(resource_name: str, namespace: str, routed: bool, provider: k8s.Provider, parent: pulumi.Resource) -> k8s.core.v1.Namespace:
    """Pod Security `restricted`: every pod we put there (server, download Job, placeholders) runs
    non-root with no capabilities. Where a routed model's endpoint picker runs, `baseline` with
    `restricted` warnings: llm-d-router-gateway v0.10.0 writes the picker's pod with no
    securityContext and has no value to set one (routerlib templates/_deployment.yaml), so
    `restricted` would refuse its pods."""
    if routed:
        return addon_namespace(resource_name, namespace, "baseline", provider, parent, warn="restricted")
    return addon_namespace(resource_name, namespace, "restricted", provider, parent)


API_KEY_SECRET_KEY = "api-key"


# The guard's source, shipped as is: the pods import it from the ConfigMap (see pod.API_GUARD_MOUNT).
API_GUARD_SOURCE = Path(api_guard.__file__).read_text()
API_GUARD_SHA256 = hashlib.sha256(API_GUARD_SOURCE.encode()).hexdigest()
# On the pod template: a new guard rolls the pods (a mounted ConfigMap changes under a running
# server, which imported the old one at start).
API_GUARD_ANNOTATION = "llm-platform.io/api-guard-sha256"


def api_guard_config_map_name(model: ModelConfig) -> str:
    return f"{model.name}-api-guard"


def api_key_secret_name(model: ModelConfig) -> str:
    return f"{model.name}-api-key"


def api_key_env(model: ModelConfig) -> list[k8s.core.v1.EnvVarArgs]:
    """vLLM 0.33 reads VLLM_API_KEY when no --api-key is given (entrypoints/serve/middleware/register.py)
    and then refuses requests under /v1, /v2, /inference and /cohere without the bearer token
    (authenticate.py GUARDED_PREFIX); our guard (components/vllm/api_guard.py) reads the same
    variable and refuses every other path but /health, /ping, /version and /metrics."""
    if not model.access.api_key:
        return []
    return [
        k8s.core.v1.EnvVarArgs(
            name="VLLM_API_KEY",
            value_from=k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=api_key_secret_name(model), key=API_KEY_SECRET_KEY)
            ),
        )
    ]


def default_deny(resource_name: str, namespace: str, opts: pulumi.ResourceOptions) -> k8s.networking.v1.NetworkPolicy:
    """Nothing in or out for any pod of a model namespace but what a policy of ours allows (they
    add up): the server's, the download Job's, a routed model's endpoint picker's."""
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name="default-deny", namespace=namespace, labels={"app.kubernetes.io/part-of": "llm-platform"}),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]),
        opts=opts,
    )


def dns_egress() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """Name lookups, to wherever the cluster's resolver runs (kube-dns pods, or a node-local cache)."""
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol=p) for p in ("UDP", "TCP")]
    )


def https_egress() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """TCP 443 to any address: for services whose addresses are not fixed (the Hugging Face hub
    and its CDN; a managed cluster's API server, below)."""
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr="0.0.0.0/0"))],
        ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=443, protocol="TCP")],
    )


def pod_labels(model: ModelConfig) -> dict[str, str]:
    return {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": model.name}


# The component's name for each operator-checked object (URNs: never change these).
_CUSTOM_OBJECT_SUFFIX = {"ScaledObject": "scaledobject", "ServiceMonitor": "servicemonitor", "PrometheusRule": "alerts"}


def monitored_objects(model: ModelConfig, prometheus_url: str) -> list[CustomObject]:
    """The model's custom resources that KEDA and Prometheus Operator check, exactly as the
    component registers them; the preflight checks this same list before anything is registered."""
    ns, deployment = model.namespace_name, model.name
    return [
        CustomObject("keda.sh/v1alpha1", "ScaledObject", model.name, ns, scaled_object_spec(model, deployment, prometheus_url)),
        CustomObject("monitoring.coreos.com/v1", "ServiceMonitor", model.name, ns, service_monitor_spec(model, PORT_NAME, pod_labels(model))),
        CustomObject("monitoring.coreos.com/v1", "PrometheusRule", f"{model.name}-vllm", ns, prometheus_rule_spec(model, deployment)),
    ]


class VllmModelService(pulumi.ComponentResource):
    """One model service. Each step below registers one concern's objects, in dependency order."""

    def __init__(self, name: str, args: VllmModelServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:models:VllmModelService", name, None, opts)
        model, platform = args.model, args.platform
        self._name, self._model, self._platform, self._provider = name, model, platform, platform.provider
        self._selector = pod_labels(model)
        self._labels = {
            **self._selector,
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/part-of": "llm-platform",
            "app.kubernetes.io/version": VLLM_VERSION,
        }
        ns = model.namespace_name

        namespace = args.shared_namespace or model_namespace(f"{name}-namespace", ns, args.routed, platform.provider, self)
        in_namespace = self._opts(depends_on=[namespace])
        if args.shared_namespace is None:
            default_deny(f"{name}-default-deny", ns, in_namespace)
        account, token_secret = self._identity(args.hf_token, in_namespace)
        self.api_key = self._api_key(args.random_provider, in_namespace)
        claim = self._weights(namespace, account, token_secret)
        deployment = self._deployment(account, claim)
        if model.headroom_slots and args.headroom_class is not None:
            headroom_deployment(
                f"{name}-headroom",
                model,
                platform.image_of(model.image),
                model_placements(model, platform.gpu_pools),
                platform.gpu_pools,
                self._opts(depends_on=[namespace, args.headroom_class, *platform.image_ready]),
            )
        service = self._service(in_namespace)
        self._disruption_budget(in_namespace)
        self._network_policy(in_namespace)
        if not model.is_local_path:
            self._download_network_policy(in_namespace)
        if model.access.ingress is not None:
            self._ingress(service, in_namespace)
        self._scaling_and_monitoring(namespace, deployment)

        self.namespace = ns
        self.namespace_resource = namespace  # routing puts the model's endpoint picker beside it
        self.deployment = deployment
        self.service_name = model.name
        self.endpoint = f"http://{model.name}.{ns}.svc.cluster.local/v1"
        self.register_outputs(
            {"namespace": ns, "serviceName": model.name, "endpoint": self.endpoint, "servedModelName": model.served_name}
        )

    def _opts(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._provider, **kwargs)

    def _meta(self, object_name: str) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=self._model.namespace_name, labels=self._labels)

    def _identity(
        self, hf_token: pulumi.Output[str] | None, in_namespace: pulumi.ResourceOptions
    ) -> tuple[k8s.core.v1.ServiceAccount, k8s.core.v1.Secret | None]:
        """A ServiceAccount without an API token (vLLM needs no Kubernetes API), and for gated models
        the HF token as a Secret only the download Job reads."""
        model, name = self._model, self._name
        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account", metadata=self._meta(model.name), automount_service_account_token=False, opts=in_namespace
        )
        if not model.gated:
            return account, None
        if hf_token is None:
            raise ValueError(f"model {model.name} is gated but no HF token was passed")  # config checks this first
        token_secret = k8s.core.v1.Secret(
            f"{name}-hf-token",
            metadata=self._meta(f"{model.name}-hf-token"),
            type="Opaque",
            string_data={HF_TOKEN_KEY: hf_token},
            opts=in_namespace,
        )
        return account, token_secret

    def _weights(
        self, namespace: pulumi.Resource, account: k8s.core.v1.ServiceAccount, token_secret: k8s.core.v1.Secret | None
    ) -> k8s.core.v1.PersistentVolumeClaim:
        """The shared weights volume, and the Job that fills it once (not for a path on the volume)."""
        model, name, platform = self._model, self._name, self._platform
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-weights",
            metadata=self._meta(f"{model.name}-weights"),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteMany"],
                storage_class_name=platform.storage_class,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": platform.claim_size}),
            ),
            opts=self._opts(depends_on=[namespace, platform.storage]),
        )
        if not model.is_local_path:
            k8s.batch.v1.Job(
                f"{name}-download",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=download_job_name(model),
                    namespace=model.namespace_name,
                    labels=self._labels,
                    # Model pods wait for the snapshot themselves; `pulumi up` need not sit through it.
                    annotations={"pulumi.com/skipAwait": "true"},
                ),
                spec=download_job_spec(
                    model,
                    platform.image_of(model.image),
                    claim.metadata.name,
                    account.metadata.name,
                    token_secret.metadata.name if token_secret else None,
                    platform.system_node_selector,
                    weights_fs_group=platform.weights_fs_group,
                ),
                opts=self._opts(depends_on=[claim, account, *platform.image_ready] + ([token_secret] if token_secret else [])),
            )
        return claim

    def _api_key(self, random_provider: pulumi.ProviderResource | None, in_namespace: pulumi.ResourceOptions) -> pulumi.Output[str] | None:
        """A random key (48 letters and digits) in a Secret the server reads as VLLM_API_KEY:
        not a flag, so it is never in the pod's command line. Stays secret in state and outputs."""
        if not self._model.access.api_key:
            return None
        assert random_provider is not None, "an API key needs the random provider"
        key = random.RandomPassword(f"{self._name}-api-key", length=48, special=False, opts=pulumi.ResourceOptions(parent=self, provider=random_provider))
        self._api_key_secret = k8s.core.v1.Secret(
            f"{self._name}-api-key",
            metadata=self._meta(api_key_secret_name(self._model)),
            string_data={API_KEY_SECRET_KEY: key.result},
            opts=in_namespace,
        )
        self._api_guard = k8s.core.v1.ConfigMap(
            f"{self._name}-api-guard",
            metadata=self._meta(api_guard_config_map_name(self._model)),
            data={f"{API_GUARD_MODULE}.py": API_GUARD_SOURCE},
            opts=in_namespace,
        )
        return key.result

    def _deployment(self, account: k8s.core.v1.ServiceAccount, claim: k8s.core.v1.PersistentVolumeClaim) -> k8s.apps.v1.Deployment:
        model = self._model
        timing = PodTiming.of(model)
        pools = model_placements(model, self._platform.gpu_pools)
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata=self._meta(model.name),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self._selector),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    # Never fewer serving replicas during a rollout; one extra GPU pod at a time.
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                progress_deadline_seconds=timing.progress_deadline_seconds,
                revision_history_limit=5,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=self._labels, annotations={API_GUARD_ANNOTATION: API_GUARD_SHA256} if model.access.api_key else None
                    ),
                    spec=self._pod_spec(model, timing, pools, account.metadata.name, claim.metadata.name),
                ),
            ),
            opts=self._opts(
                depends_on=[claim, account, *self._platform.image_ready, *([self._api_key_secret, self._api_guard] if self.api_key is not None else [])],
                # A first rollout may wait for the download, a GPU node and the model load.
                custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{timing.progress_deadline_seconds + duration_seconds(model.download_timeout)}s",
                    update=f"{timing.progress_deadline_seconds * max(1, model.min_replicas)}s",
                ),
            ),
        )

    def _service(self, in_namespace: pulumi.ResourceOptions) -> k8s.core.v1.Service:
        return k8s.core.v1.Service(
            f"{self._name}-service",
            metadata=self._meta(self._model.name),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=self._selector,
                ports=[k8s.core.v1.ServicePortArgs(name=PORT_NAME, port=SERVICE_PORT, target_port=PORT_NAME, protocol="TCP")],
            ),
            opts=in_namespace,
        )

    def _disruption_budget(self, in_namespace: pulumi.ResourceOptions) -> None:
        k8s.policy.v1.PodDisruptionBudget(
            f"{self._name}-pdb",
            metadata=self._meta(self._model.name),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self._selector),
                # One replica at a time, whatever the count: node drains proceed, never all at once.
                max_unavailable=1,
                # A pod that is still loading (or crash-looping) must not block a node drain.
                unhealthy_pod_eviction_policy="AlwaysAllow",
            ),
            opts=in_namespace,
        )

    def _scaling_and_monitoring(self, namespace: pulumi.Resource, deployment: k8s.apps.v1.Deployment) -> None:
        """The ScaledObject, ServiceMonitor and PrometheusRule, exactly as the preflight checked them.
        KEDA's needs its CRD and the Deployment it scales; the others Prometheus Operator's CRDs."""
        platform = self._platform
        monitoring = [platform.monitoring_release, namespace]
        depends_on = {"ScaledObject": [platform.keda_release, deployment], "ServiceMonitor": monitoring, "PrometheusRule": monitoring}
        for custom in monitored_objects(self._model, platform.prometheus_url):
            k8s.apiextensions.CustomResource(
                f"{self._name}-{_CUSTOM_OBJECT_SUFFIX[custom.kind]}",
                api_version=custom.api_version,
                kind=custom.kind,
                metadata=self._meta(custom.name),
                spec=custom.spec,
                opts=self._opts(depends_on=depends_on[custom.kind]),
            )

    def _pod_spec(
        self,
        model: ModelConfig,
        timing: PodTiming,
        pools: list[GpuPoolPlacement],
        service_account: pulumi.Input[str],
        claim_name: pulumi.Input[str],
    ) -> k8s.core.v1.PodSpecArgs:
        gpus = str(model.gpus_per_replica)
        weights_mount = k8s.core.v1.VolumeMountArgs(name="weights", mount_path=WEIGHTS_MOUNT, read_only=True)
        return k8s.core.v1.PodSpecArgs(
            service_account_name=service_account,
            automount_service_account_token=False,
            termination_grace_period_seconds=timing.grace_seconds,
            tolerations=tolerations(model, self._platform.gpu_pools),
            affinity=affinity(model, pools),
            topology_spread_constraints=topology_spread(pod_labels(model)),
            # the compile cache's init container writes the volume's root (and a local-path model has no Job before it)
            security_context=model_pod_security(weights_writer=self._platform.weights_fs_group),
            init_containers=[
                k8s.core.v1.ContainerArgs(
                    name="wait-for-weights",
                    image=self._platform.image_of(model.image),  # pulled for the server anyway: no second image
                    command=["sh", "-c", compile_cache_setup(model) + wait_for_weights_script(model)],
                    resources=k8s.core.v1.ResourceRequirementsArgs(requests={"cpu": "50m", "memory": "64Mi"}, limits={"cpu": "200m", "memory": "128Mi"}),
                    security_context=locked_down(),
                    volume_mounts=[weights_mount, *compile_cache_setup_mounts(model)],
                )
            ],
            containers=[
                k8s.core.v1.ContainerArgs(
                    name="vllm",
                    image=self._platform.image_of(model.image),
                    command=["vllm", "serve"],
                    args=vllm_args(model),
                    ports=[k8s.core.v1.ContainerPortArgs(name=PORT_NAME, container_port=VLLM_PORT, protocol="TCP")],
                    env=[
                        # Weights are local: never reach the hub from a serving pod.
                        k8s.core.v1.EnvVarArgs(name="HF_HUB_OFFLINE", value="1"),
                        k8s.core.v1.EnvVarArgs(name="VLLM_NO_USAGE_STATS", value="1"),
                        *server_user_env(),
                        *api_key_env(model),
                        *api_guard_env(model),
                        *([k8s.core.v1.EnvVarArgs(name="VLLM_CACHE_ROOT", value=COMPILE_CACHE_MOUNT)] if model.compile_cache else []),
                    ],
                    resources=k8s.core.v1.ResourceRequirementsArgs(
                        requests={"cpu": model.cpu, "memory": model.memory, GPU_RESOURCE: gpus},
                        # No CPU limit (throttling stalls the GPU); memory limit = request (no overcommit).
                        limits={"memory": model.memory, GPU_RESOURCE: gpus},
                    ),
                    lifecycle=k8s.core.v1.LifecycleArgs(
                        # Keep serving while endpoints drop this pod; SIGTERM then drains (--shutdown-timeout).
                        pre_stop=k8s.core.v1.LifecycleHandlerArgs(sleep=k8s.core.v1.SleepActionArgs(seconds=timing.pre_stop_seconds))
                    ),
                    security_context=locked_down(),
                    volume_mounts=[
                        weights_mount,
                        k8s.core.v1.VolumeMountArgs(name="dshm", mount_path="/dev/shm"),
                        *writable_mounts(),
                        *compile_cache_mounts(model),
                        *api_guard_mounts(model),
                    ],
                    **probes(timing),
                )
            ],
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="weights",
                    persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=claim_name, read_only=True),
                ),
                k8s.core.v1.VolumeArgs(
                    name="dshm", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory", size_limit=model.shm_size)
                ),
                *writable_volumes(),
                *compile_cache_volumes(model, claim_name),
                *api_guard_volumes(model, api_guard_config_map_name(model)),
            ],
        )

    def _network_policy(self, opts: pulumi.ResourceOptions) -> None:
        """Only Prometheus, the ingress controller and the namespaces named in access may connect."""
        model, platform = self._model, self._platform
        namespaces = [platform.monitoring_namespace, *model.access.allowed_namespaces]
        if model.access.ingress is not None:
            namespaces.append(model.access.ingress.controller_namespace)
        peers = [
            k8s.networking.v1.NetworkPolicyPeerArgs(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": peer})
            )
            for peer in dict.fromkeys(namespaces)
        ]
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-network-policy",
            metadata=self._meta(model.name),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self._selector),
                # No egress at all: weights come from the node's NFS mount (the kernel's traffic,
                # not the pod's), HF_HUB_OFFLINE=1, usage stats off, and tensor-parallel ranks talk
                # inside the pod. A compromised server cannot call out.
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=peers,
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=PORT_NAME, protocol="TCP")],
                    )
                ],
            ),
            opts=opts,
        )

    def _download_network_policy(self, opts: pulumi.ResourceOptions) -> None:
        """The download Job: nothing may connect to it, and it reaches DNS and HTTPS only (the
        Hugging Face hub and its CDN; their addresses are not fixed, so any address on 443)."""
        model = self._model
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-download-network-policy",
            metadata=self._meta(f"{model.name}-download"),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=download_pod_labels(model)),
                policy_types=["Ingress", "Egress"],
                egress=[dns_egress(), https_egress()],
            ),
            opts=opts,
        )

    def _ingress(self, service: k8s.core.v1.Service, opts: pulumi.ResourceOptions) -> None:
        model = self._model
        ingress = model.access.ingress
        assert ingress is not None
        k8s.networking.v1.Ingress(
            f"{self._name}-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=model.name, namespace=model.namespace_name, labels=self._labels, annotations=ingress.annotations or None
            ),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=ingress.class_name,
                tls=[k8s.networking.v1.IngressTLSArgs(hosts=[ingress.host], secret_name=ingress.tls_secret_name)]
                if ingress.tls_secret_name
                else None,
                rules=[
                    k8s.networking.v1.IngressRuleArgs(
                        host=ingress.host,
                        http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                            paths=[
                                k8s.networking.v1.HTTPIngressPathArgs(
                                    path=ingress.path,
                                    path_type="Prefix",
                                    backend=k8s.networking.v1.IngressBackendArgs(
                                        service=k8s.networking.v1.IngressServiceBackendArgs(
                                            name=model.name, port=k8s.networking.v1.ServiceBackendPortArgs(name=PORT_NAME)
                                        )
                                    ),
                                )
                            ]
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[service])),
        )
