"""The small contract every cloud's cluster component fulfils, and all later layers consume.

Add-ons and model services never look at EKS/GKE/AKS resources directly: they take a
`ClusterContract`, so the cloud-specific code stays in the cloud packages. What only a cloud can
build (elastic GPU capacity such as Karpenter, the shared-weights file system and its CSI driver)
is built by that cloud's package and handed on here, as placements and a storage class. Cloud-only
hooks (IAM for AWS controllers, say) hang off `aws`/`gcp`/`azure`, and exactly one of them is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from ..config.images import docker_hub_repository
from ..scheduling import GpuPoolPlacement


@dataclass(frozen=True)
class AwsClusterHooks:
    """What AWS-specific add-ons need: Karpenter (node role, subnets, security group, discovery tag),
    the EFS CSI driver (subnets, node security group, Pod Identity) and IRSA-only charts (OIDC)."""

    region: str
    partition: str
    cluster_arn: pulumi.Output[str]  # its account id scopes IAM policies without an invoke
    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    subnets_tagged_for_karpenter: bool  # True when we created the subnets with the discovery tag
    node_security_group_id: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    node_role_name: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    pod_identity_agent: pulumi.Resource  # depend on it before creating PodIdentityAssociations
    tags: dict[str, str]
    provider: pulumi.ProviderResource  # the stack's AWS provider (region, default tags): pass it to AWS resources


@dataclass(frozen=True)
class GcpClusterHooks:
    """What GCP-specific resources beside the cluster need: the project and region, the VPC the
    cluster's nodes are in (Filestore instances must join it), and the stack's GCP provider."""

    project: str
    region: str
    network_name: pulumi.Output[str]
    node_service_account_email: pulumi.Output[str]
    provider: pulumi.ProviderResource  # the stack's GCP provider (project, region, default labels)


@dataclass(frozen=True)
class AzureClusterHooks:
    """What Azure resources beside the cluster need: the resource group and location, the node
    subnet (the weights account admits only it), the cluster's identity, and the stack's provider."""

    resource_group: str  # its name, as configured: known at preview
    resource_group_resource: pulumi.Resource  # depend on it before creating resources in the group
    location: str
    node_subnet_id: pulumi.Output[str]
    cluster_principal_id: pulumi.Output[str]
    provider: pulumi.ProviderResource  # the stack's Azure provider


@dataclass(frozen=True)
class SharedWeights:
    """A ReadWriteMany storage class every model's weights volume uses (EFS, Filestore, Azure Files)."""

    storage_class: str
    storage: pulumi.Resource  # the StorageClass (and its driver): depend on it before PVCs of that class
    # What each weights claim requests. EFS ignores it (elastic); a Filestore claim becomes an
    # instance of exactly this size, billed as such, so the cloud states it.
    claim_size: str = "500Gi"
    # A new volume's root is root's and only the kubelet can hand it over (its driver applies a pod's
    # fsGroup: CSIDriver fsGroupPolicy File). Then the pods that write to it set fsGroup, so the
    # model user may. EFS access points and Azure Files' driver give the root away themselves.
    writers_need_fs_group: bool = False


@dataclass(frozen=True)
class GatewaySupport:
    """How this cloud runs the inference gateway, for the routing layer (which never looks at the
    cloud): the GatewayClasses, the `provider.name` the EPP and BBR charts take, where the
    gateway's proxies connect to model pods from, whether we must install the CRDs, and what the
    cloud's load balancer needs written on the proxies' Service."""

    provider: str  # "gke" (the managed gateway) or "istio" (ours, in the cluster)
    internal_class: str  # GatewayClass of an internal load balancer
    external_class: str  # GatewayClass of an internet-facing one
    installs_crds: bool  # False where the cloud brings the Gateway API and InferencePool CRDs
    proxy_source_cidrs: tuple[str, ...] = ()  # GKE: the proxy-only subnet; the model pods admit it
    # Where the cloud's load balancer health-checks its backends from, when it probes the pods
    # themselves (GKE: container-native backends); the pods' NetworkPolicies admit these too.
    health_check_source_cidrs: tuple[str, ...] = ()
    # Istio: the proxies are pods in the gateway's namespace, which we size, place and spread, and
    # whose LoadBalancer Service carries the annotations below.
    in_cluster_proxies: bool = False
    internal_lb_annotations: Mapping[str, str] = field(default_factory=dict)
    external_lb_annotations: Mapping[str, str] = field(default_factory=dict)
    # Per listener port; `{port}` is replaced (AKS's health-probe annotations are keyed by port).
    lb_port_annotations: Mapping[str, str] = field(default_factory=dict)
    max_request_seconds: int | None = None  # a cap the cloud's load balancer puts on one request
    # GKE health-checks a Service backend with `GET /` unless a HealthCheckPolicy says otherwise
    backend_health_check_policy: bool = False

    def service_annotations(self, external: bool, port: int) -> dict[str, str]:
        scheme = self.external_lb_annotations if external else self.internal_lb_annotations
        per_port = {key.format(port=port): value for key, value in self.lb_port_annotations.items()}
        return {**scheme, **per_port}


@dataclass(frozen=True)
class ClusterContract:
    cloud: str
    name: str
    provider: k8s.Provider  # the one Kubernetes provider for this cluster: pass it to every k8s resource
    kubeconfig: pulumi.Output[str]  # secret
    zones: tuple[str, ...]
    system_node_selector: dict[str, str]  # where controllers run
    gpu_pools: tuple[GpuPoolPlacement, ...]
    ready: tuple[pulumi.Resource, ...]  # node pools; depend on these before workloads that must schedule
    block_storage_class: str  # default ReadWriteOnce class (Prometheus, Alertmanager volumes)
    block_storage: pulumi.Resource  # the StorageClass; depend on it before PVCs that use it
    # The GPU node image already carries the NVIDIA driver and container toolkit, so the GPU
    # Operator must not install them (twice-installed drivers fail to load).
    gpu_driver_preinstalled: bool
    # The cloud runs its own NVIDIA device plugin on GPU nodes (GKE), so no add-on may install a
    # second one: two plugins would each advertise every GPU.
    gpu_device_plugin_preinstalled: bool = False
    # Where the node keeps the driver's libraries and tools for GPU agents that run without the
    # NVIDIA container runtime (GKE: /home/kubernetes/bin/nvidia). None: the runtime injects them.
    gpu_driver_host_path: str | None = None
    # The RuntimeClass the GPU Operator's own pods use when the node image brings the NVIDIA
    # runtime under another name (AKS: nvidia-container-runtime). None: the operator's default.
    gpu_runtime_class: str | None = None
    # kube-proxy runs on the nodes with its metrics reachable (EKS); GKE's Dataplane V2 has none.
    kube_proxy_metrics: bool = True
    aws: AwsClusterHooks | None = None
    gcp: GcpClusterHooks | None = None
    azure: AzureClusterHooks | None = None
    # GPU capacity the cloud adds on demand beyond `gpu_pools` (Karpenter NodePools on EKS): the
    # same labels and taints, so GPU DaemonSets tolerate them and models are placed on them.
    elastic_gpu_pools: tuple[GpuPoolPlacement, ...] = ()
    shared_weights: SharedWeights | None = None  # None when the stack turns it off
    # A registry path that stands in for Docker Hub on this cluster (GKE: an Artifact Registry mirror
    # its nodes stream images from); None: pull from Docker Hub. `image_ready` must exist first.
    image_mirror: str | None = None
    image_ready: tuple[pulumi.Resource, ...] = ()
    # Pre-pull model images onto GPU nodes as they join (AKS: its GPU nodes have no faster pull we can turn on).
    image_prepull: bool = False
    gateway: GatewaySupport | None = None  # None when the stack has no routing

    def image(self, reference: str) -> str:
        """Where this cluster's nodes pull `reference` from: through the mirror when it is a Docker Hub image."""
        repository = docker_hub_repository(reference)
        if self.image_mirror is None or repository is None:
            return reference
        return f"{self.image_mirror}/{repository}"

    @property
    def all_gpu_pools(self) -> tuple[GpuPoolPlacement, ...]:
        return (*self.gpu_pools, *self.elastic_gpu_pools)
