"""The typed stack config: everything a `Pulumi.<stack>.yaml` may say under `llm-platform:`.

Every rule that can be checked without a cloud lives here, so a wrong value fails `pulumi preview`
(and the offline plan, and a portal request) with the stack file and key path, before any resource
is registered and long before a GPU node is billed. Field names are camelCase in YAML (the
`alias`), snake_case in Python.

Structural rules come from the field types; rules that relate fields (max ≥ min, a pool's instance
types really carry its GPU, unique names) are `model_validator`s that report every problem at its
own key path through `raise_problems` (see `config_errors`).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel, to_snake

from ..catalog.gpus import cpu_arch, gpu_instance, gpu_models, gpu_types_offered, instance_type_cloud
from ..catalog.gcp_zones import accelerator_zones
from ..catalog.kubernetes import newest_release
from ..scheduling import MIG_CONFIG_LABEL, CapacityType
from .addons import AddonsConfig
from .azure import AzureConfig
from .gcp import GcpConfig, GcpZone
from .errors import (
    CONFIG_NAMESPACE,
    ConfigError,
    Loc,
    Problem,
    format_key_path,
    problems_from_validation_error,
    raise_problems,
)
from .models import RESERVED_NAMESPACES, ModelConfig, ModelPolicy, tensor_parallel_fits
from .levers import ScaleOutConfig
from .routing import GKE_POOL_TIMEOUT_SECONDS, RoutingConfig
from ..planner.weight_formats import known_methods
from .planning import architecture_problem, fit_key, fit_problem
from .types import (
    DNS_LABEL,
    ConfigModel,
    GpuInstanceSet,
    InstanceTypeName,
    LabelKey,
    LabelValue,
    PoolName,
    TaintConfig,
    duration_seconds,
    formatted,
    label_problems,
    one_architecture,
    taint_problems,
)

__all__ = ["CONFIG_NAMESPACE", "ConfigError", "StackConfig", "parse_stack_config", "stack_config_json_schema"]

ClusterName = formatted(DNS_LABEL, "a cluster name: a lowercase DNS label of 2 to 40 characters, such as llm-prod", min_length=2, max_length=40)
Cloud = Literal["aws", "gcp", "azure"]
MAX_LIST = 50  # GPU pools or models in one stack
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
# One pattern per cloud, checked in StackConfig once the cloud is known.
REGION_PATTERNS = {
    "aws": (r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$", "an AWS region such as us-west-2"),
    "gcp": (r"^[a-z]+-[a-z]+\d+$", "a GCP region such as us-central1"),
    "azure": (r"^[a-z]+[0-9]?$", "an Azure region such as eastus2 or westeurope"),
}
Region = formatted(r"[a-z][a-z0-9-]+", "a cloud region such as us-west-2, us-central1 or eastus2")
Zone = formatted(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9][a-z]", "an AWS availability zone such as us-west-2a")
SubnetId = formatted(r"subnet-[0-9a-f]{8,17}", "a subnet id such as subnet-0123456789abcdef0")
VpcId = formatted(r"vpc-[0-9a-f]{8,17}", "a VPC id such as vpc-0123456789abcdef0")
KubernetesMinor = formatted(r"1\.[0-9]{2}", "a Kubernetes minor version such as \"1.35\" (quoted: YAML reads 1.30 as the number 1.3)")
IamPrincipalArn = formatted(r"arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[\w+=,.@/-]+", "an IAM role or user ARN such as arn:aws:iam::123456789012:role/platform-admins")


class _ScalingBounds(ConfigModel):
    """Node counts for a pool. desiredSize is only the initial count: autoscalers own it afterwards."""

    min_size: int = Field(0, ge=0, le=1000, description="Fewest nodes; 0 lets a GPU pool cost nothing while idle.")
    max_size: int = Field(ge=1, le=1000, description="Most nodes; must be ≥ minSize.")
    desired_size: int | None = Field(None, ge=0, le=1000, description="Initial node count; defaults to minSize.")

    @property
    def desired(self) -> int:
        return self.min_size if self.desired_size is None else self.desired_size

    def _bounds_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.max_size < self.min_size:
            problems.append((("maxSize",), f"must be ≥ minSize ({self.min_size})"))
        elif self.desired_size is not None and not self.min_size <= self.desired_size <= self.max_size:
            problems.append(
                (("desiredSize",), f"must be between minSize ({self.min_size}) and maxSize ({self.max_size})")
            )
        return problems


class SystemPoolConfig(_ScalingBounds):
    """On-demand CPU nodes for controllers (KEDA, Karpenter, Prometheus, GPU Operator operands' control)."""

    instance_types: list[InstanceTypeName] = Field(
        ["m7i.xlarge"], min_length=1, description="CPU instance types, one architecture."
    )
    min_size: int = Field(2, ge=1, le=100, description="At least 1: the controllers must run somewhere.")
    max_size: int = Field(4, ge=1, le=100)
    disk_size_gib: int = Field(
        100, ge=20, le=1000,
        description="Root volume size. The weight download Jobs run here with the vLLM image (about 38 GB on disk, compressed "
        "and unpacked), so with models it must hold that beside the controllers' images.",
    )

    @model_validator(mode="after")
    def _check(self) -> SystemPoolConfig:
        problems = self._bounds_problems()
        for i, name in enumerate(self.instance_types):
            if gpu_instance(name) is not None:
                problems.append((("instanceTypes", i), f"{name} is a GPU instance type; the system pool is CPU-only"))
        problems += one_architecture(self.instance_types, cpu_arch)
        raise_problems(problems)
        return self


MigProfile = formatted(
    r"all-(disabled|enabled|balanced|[1-7]g\.\d+gb(\.me)?)", "a MIG profile such as all-1g.10gb, all-3g.40gb or all-balanced"
)


class GpuPoolConfig(_ScalingBounds, GpuInstanceSet):
    """A tainted GPU node group. Every instance type in it must carry `gpusPerNode` GPUs of `gpuType`,
    because workloads request GPUs and pick nodes by those two values."""

    name: PoolName = Field(description="Unique pool name; the value of the llm-platform.io/pool label.")
    capacity_type: CapacityType = Field("on-demand", description="spot pools get a second taint workloads must opt into.")
    disk_size_gib: int = Field(
        200, ge=100, le=16384, description="Root volume: vLLM images are ~10 GB compressed, more unpacked."
    )
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Extra node labels.")
    taints: list[TaintConfig] = Field(default_factory=list, description="Extra taints; the GPU and spot taints are always set.")
    zones: list[GcpZone] | None = Field(
        None,
        min_length=1,
        description="GKE: the zones of this pool, each offering its GPU (default: llm-platform:gcp.zones). "
        "EKS pools span the cluster's subnets.",
    )
    mig_profile: MigProfile | None = Field(
        None,
        description="Partition this pool's GPUs with MIG, e.g. all-1g.10gb (a profile of the GPU Operator's default "
        "mig-parted config; A100/H100/H200/B200 only). MIG nodes offer nvidia.com/mig-<profile> instead of whole "
        "nvidia.com/gpu, so model services do not land there.",
    )

    @model_validator(mode="after")
    def _check(self) -> GpuPoolConfig:
        problems = self._bounds_problems() + self.instance_set_problems()
        problems += [(("zones", i), f"zone {z} is listed twice") for i, z in enumerate(self.zones or []) if z in (self.zones or [])[:i]]
        problems += label_problems(self.labels)
        problems += taint_problems(self.taints)
        if self.mig_profile and not gpu_models()[self.gpu_type].mig_capable:
            problems.append((("migProfile",), f"{self.gpu_type} does not support MIG (A100, H100, H200 and B200 do)"))
        if MIG_CONFIG_LABEL in self.labels:
            problems.append((("labels", MIG_CONFIG_LABEL), "set by migProfile"))
        raise_problems(problems)
        return self

    @property
    def whole_gpus(self) -> bool:
        """Whether the nodes offer whole `nvidia.com/gpu`s (MIG nodes offer slices instead)."""
        return self.mig_profile is None


class PrivateSubnet(ConfigModel):
    id: SubnetId = Field(description="subnet-… id.")
    zone: Zone = Field(description="Its availability zone.")


class NetworkConfig(ConfigModel):
    """A new VPC (`vpcCidr` + `availabilityZones`) or an existing one (`vpcId` + `privateSubnets`).

    Zones are explicit on purpose: GPU instance types are not offered in every zone of a region, so
    the platform engineer picks zones where the pools' types exist (`aws ec2
    describe-instance-type-offerings --location-type availability-zone`).
    """

    vpc_cidr: str | None = Field(None, description="New VPC: its IPv4 CIDR, /16 to /20.")
    availability_zones: list[Zone] | None = Field(None, description="New VPC: 2 to 6 zones.")
    nat_gateways: Literal["single", "perZone"] = Field(
        "perZone", description="perZone survives a zone outage; single is cheaper for dev."
    )
    vpc_id: VpcId | None = Field(None, description="Existing VPC.")
    private_subnets: list[PrivateSubnet] | None = Field(
        None, description="Existing VPC: one private subnet per zone, with NAT egress, at least 2 zones."
    )

    @property
    def is_existing(self) -> bool:
        return self.vpc_id is not None

    @property
    def zones(self) -> list[str]:
        if self.is_existing:
            return [s.zone for s in self.private_subnets or []]
        return list(self.availability_zones or [])

    @model_validator(mode="after")
    def _check(self) -> NetworkConfig:
        problems: list[Problem] = []
        if self.is_existing:
            for key in ("vpc_cidr", "availability_zones"):
                if getattr(self, key) is not None:
                    problems.append(((to_camel(key),), "only for a new VPC; an existing VPC (vpcId) takes privateSubnets"))
            if not self.private_subnets:
                problems.append((("privateSubnets",), "required with vpcId"))
            else:
                problems += _zone_problems(("privateSubnets",), [s.zone for s in self.private_subnets])
        else:
            if self.private_subnets is not None:
                problems.append((("privateSubnets",), "only with vpcId (an existing VPC)"))
            if self.vpc_cidr is None:
                problems.append((("vpcCidr",), "required for a new VPC (or set vpcId to use an existing one)"))
            else:
                problems += [(("vpcCidr",), msg) for msg in _cidr_problems(self.vpc_cidr)]
            if self.availability_zones is None:
                problems.append((("availabilityZones",), "required for a new VPC"))
            else:
                problems += _zone_problems(("availabilityZones",), self.availability_zones)
        raise_problems(problems)
        return self


def _cidr_problems(cidr: str) -> list[str]:
    try:
        net = ipaddress.IPv4Network(cidr)
    except ValueError as exc:
        return [f"not an IPv4 network: {exc}"]
    if not 16 <= net.prefixlen <= 20:
        return [f"prefix /{net.prefixlen} must be /16 to /20 (pods take VPC IPs with the VPC CNI)"]
    return []


def _zone_problems(loc: Loc, zones: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    if len(zones) < 2:
        problems.append((loc, "at least 2 zones: EKS requires subnets in two zones, and one zone is one outage"))
    if len(zones) > 6:
        problems.append((loc, "at most 6 zones"))
    for i, zone in enumerate(zones):
        if zone in zones[:i]:
            problems.append(((*loc, i), f"zone {zone} is listed twice (EFS takes one mount target per zone)"))
    return problems


class ClusterConfig(ConfigModel):
    name: ClusterName = Field(description="EKS cluster name; also prefixes every resource name.")
    kubernetes_version: KubernetesMinor = Field(
        description="Kubernetes minor version, e.g. \"1.35\": 1.30 or newer, and released (components/catalog/data/kubernetes_releases.yaml)."
    )
    endpoint_public_access: bool = Field(True, description="Expose the API endpoint publicly (restricted by publicAccessCidrs).")
    public_access_cidrs: list[str] = Field(
        ["0.0.0.0/0"], min_length=1, description="CIDRs allowed to reach the public endpoint."
    )
    admin_principal_arns: list[IamPrincipalArn] = Field(
        default_factory=list, description="IAM roles/users granted cluster-admin through EKS access entries."
    )
    protect: bool = Field(False, description="Pulumi-protect and deletion-protect the cluster, its network and keys.")
    network: NetworkConfig | None = Field(
        None,
        description="AWS: a new VPC (`vpcCidr` + `availabilityZones`) or an existing one (`vpcId` + `privateSubnets`). "
        "GKE stacks set llm-platform:gcp.network instead.",
    )

    @model_validator(mode="after")
    def _check(self) -> ClusterConfig:
        problems: list[Problem] = []
        minor = int(self.kubernetes_version.split(".")[1])
        newest = newest_release()
        if minor < 30:
            problems.append((("kubernetesVersion",), "must be 1.30 or newer (AL2023 NVIDIA AMIs, access entries)"))
        elif minor > newest.next_minor:
            problems.append(
                (
                    ("kubernetesVersion",),
                    f"{self.kubernetes_version} is not a Kubernetes release: the newest is 1.{newest.minor} "
                    f"({newest.released}), and no cloud offers one before it is out. If {self.kubernetes_version} "
                    "is out now, set it as `newest` in components/catalog/data/kubernetes_releases.yaml",
                )
            )
        for i, cidr in enumerate(self.public_access_cidrs):
            try:
                ipaddress.IPv4Network(cidr)
            except ValueError as exc:
                problems.append((("publicAccessCidrs", i), f"not an IPv4 network: {exc}"))
        if len(set(self.admin_principal_arns)) != len(self.admin_principal_arns):
            problems.append((("adminPrincipalArns",), "lists a principal twice"))
        raise_problems(problems)
        return self


# EKS and Karpenter set these; Karpenter's EC2NodeClass CRD refuses `kubernetes.io/cluster*` (no
# slash needed), `eks:eks-cluster-name` and its own keys in `spec.tags`, which carries these tags.
_PLATFORM_TAG_PREFIXES = ("eks:", "kubernetes.io/cluster", "karpenter.sh/", "karpenter.k8s.aws/")


_GCP_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_GCP_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def _gcp_label_problems(tags: dict[str, str]) -> list[Problem]:
    """GCP labels (what tags become on GKE): lower-case keys and values, 63 characters at most."""
    problems: list[Problem] = []
    for key, value in tags.items():
        if not _GCP_LABEL_KEY.match(key):
            problems.append((("tags", key), "a GCP label key starts with a lower-case letter: lower-case letters, digits, _ and -, at most 63"))
        if not _GCP_LABEL_VALUE.match(value):
            problems.append((("tags", key), "a GCP label value is lower-case letters, digits, _ and -, at most 63"))
    return problems


_AZURE_TAG_KEY_FORBIDDEN = re.compile(r"[<>%&\\?/]")


def _azure_tag_problems(tags: dict[str, str]) -> list[Problem]:
    """Azure tag limits: keys up to 512 characters without < > % & \\ ? /, values up to 256."""
    problems: list[Problem] = []
    for key, value in tags.items():
        if not 1 <= len(key) <= 512 or _AZURE_TAG_KEY_FORBIDDEN.search(key):
            problems.append((("tags", key), "an Azure tag key is 1-512 characters without < > % & \\ ? /"))
        if len(value) > 256:
            problems.append((("tags", key), "an Azure tag value is at most 256 characters"))
    return problems


# Per cloud, the add-ons that are off by default there, and why turning one on is refused.
_AWS_ONLY_ADDONS: dict[str, dict[str, str]] = {
    "gcp": {
        "karpenter": "Karpenter runs on EKS only; on GKE the cluster autoscaler scales each gpuPool between minSize "
        "and maxSize (llm-platform:gcp.nodeAutoProvisioning adds pools of its own)",
        "efsCsi": "EFS is AWS; on GKE model weights live on Filestore (llm-platform:gcp.filestore)",
        "gpuOperator": "GKE installs the NVIDIA driver and runs its own device plugin on GPU nodes (GKE-managed drivers); "
        "the operator's device plugin would advertise every GPU a second time",
    },
    "azure": {
        "karpenter": "our Karpenter is EKS's; on AKS the cluster autoscaler scales each gpuPool between minSize and "
        "maxSize (llm-platform:azure.nodeAutoProvisioning is AKS's managed Karpenter)",
        "efsCsi": "EFS is AWS; on AKS model weights live on Azure Files NFS (llm-platform:azure.files)",
    },
}
_SYSTEM_TYPE_DEFAULT = {"aws": "m7i.xlarge", "gcp": "e2-standard-4", "azure": "Standard_D4s_v5"}
_TYPE_NOUN = {"aws": "an AWS instance type", "gcp": "a GCP machine type", "azure": "an Azure VM size"}
AKS_SYSTEM_POOL = "system"


def aks_pool_name(pool_name: str) -> str:
    """An AKS agent pool's name: lower-case letters and digits, at most 12 (Linux pools)."""
    return re.sub(r"[^a-z0-9]", "", pool_name)[:12]


def _tag_problems(tags: dict[str, str]) -> list[Problem]:
    """AWS tag limits, checked here because a bad tag fails the whole `pulumi up` half-way."""
    problems: list[Problem] = []
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            problems.append((("tags", key), "a tag key is 1-128 characters and does not start with aws:"))
        elif key.startswith(_PLATFORM_TAG_PREFIXES):
            problems.append((("tags", key), "tags under eks:, kubernetes.io/cluster/ and karpenter are set by EKS and Karpenter"))
        if len(value) > 256:
            problems.append((("tags", key), "a tag value is at most 256 characters"))
    return problems


NODE_GROUP_NAME_MAX = 63  # EKS limit on a node group's name
AUTONAME_SUFFIX_LENGTH = 8  # Pulumi appends "-" and 7 random characters to auto-named resources


def node_group_resource_name(cluster_name: str, pool_name: str) -> str:
    """The Pulumi name of a GPU pool's node group, which also becomes its EKS name (auto-named)."""
    return f"{cluster_name}-gpu-{pool_name}"


class InstancePrice(ConfigModel):
    """A price that replaces the dated table's (a negotiated discount, a region the table lacks)."""

    on_demand: float | None = Field(None, gt=0, le=1000, description="USD per instance-hour on demand.")
    spot: float | None = Field(None, gt=0, le=1000, description="Typical USD per instance-hour on spot.")

    def as_table_entry(self) -> dict[str, float]:
        return {key: value for key, value in (("onDemand", self.on_demand), ("spot", self.spot)) if value is not None}


class StackConfig(ConfigModel):
    """Everything one stack (one environment) says: `llm-platform:<field>` keys in `Pulumi.<stack>.yaml`."""

    cloud: Cloud = Field(description="Cloud to build on: aws (EKS), gcp (GKE) or azure (AKS).")
    region: Region = Field(description="Cloud region of every resource, e.g. us-west-2 or us-central1.")
    gcp: GcpConfig | None = Field(None, description="GKE stacks: project, zones, network, Filestore (only with cloud: gcp).")
    azure: AzureConfig | None = Field(None, description="AKS stacks: resource group, zones, network, Azure Files (only with cloud: azure).")
    cluster: ClusterConfig = Field(description="The Kubernetes cluster and its network.")
    system_pool: SystemPoolConfig = Field(SystemPoolConfig(), description="CPU nodes for controllers.")
    # bounds on the lists: more is a generated or pasted mistake (EKS's default quota is 30 managed
    # node groups per cluster), and a bound keeps validating one request cheap
    gpu_pools: list[GpuPoolConfig] = Field(min_length=1, max_length=MAX_LIST, description="Tainted GPU node groups.")
    addons: AddonsConfig = AddonsConfig()
    models: list[ModelConfig] = Field(default_factory=list, max_length=MAX_LIST, description="vLLM model services, one VllmModelService each.")
    model_policy: ModelPolicy = Field(ModelPolicy(), description="Stack-wide rules for model services.")
    routing: RoutingConfig = Field(RoutingConfig(), description="One OpenAI endpoint for every model: Gateway API routing by model name.")
    scale_out: ScaleOutConfig = Field(ScaleOutConfig(), description="Levers on how fast a model gets one more replica (see the models output's scaleOut).")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags on every cloud resource (labels on GCP).")
    prices: dict[InstanceTypeName, InstancePrice] = Field(
        default_factory=dict, description="Instance prices that override the dated price table in the cost estimate."
    )
    hf_token: SecretStr | None = Field(
        None,
        description="Hugging Face token for gated models. Set it with `pulumi config set --secret llm-platform:hfToken`.",
    )

    @field_validator("hf_token")
    @classmethod
    def _usable_token(cls, token: SecretStr | None) -> SecretStr | None:
        problem = credential_problem(token.get_secret_value()) if token is not None else None
        if problem:
            raise ValueError(problem)
        return token

    @model_validator(mode="before")
    @classmethod
    def _cloud_defaults(cls, data: Any) -> Any:
        """Defaults that depend on the cloud, filled in before validation so the validated config
        says what will be built. Karpenter, EFS and the GPU Operator are AWS choices (GKE scales
        pools with its cluster autoscaler, keeps weights on Filestore and runs the NVIDIA driver and
        device plugin itself): on GCP they are off unless the stack file names them, and naming
        them is then an error at their key."""
        cloud = data.get("cloud") if isinstance(data, Mapping) else None
        if not isinstance(cloud, str) or cloud not in _AWS_ONLY_ADDONS:  # a map or list is refused at its key later
            return data
        data = dict(data)
        addons = data.get("addons")
        if addons is None or isinstance(addons, Mapping):
            addons = dict(addons or {})
            for key in _AWS_ONLY_ADDONS[cloud]:
                addons.setdefault(key, {"enabled": False})
            data["addons"] = addons
        system = data.get("systemPool")
        if system is None or isinstance(system, Mapping):
            system = dict(system or {})
            system.setdefault("instanceTypes", [_SYSTEM_TYPE_DEFAULT[cloud]])
            data["systemPool"] = system
        return data

    @model_validator(mode="after")
    def _check(self) -> StackConfig:
        problems = self._region_problems()
        problems += {"aws": _tag_problems, "gcp": _gcp_label_problems, "azure": _azure_tag_problems}[self.cloud](self.tags)
        problems += _duplicates("gpuPools", [p.name for p in self.gpu_pools])
        problems += _duplicates("models", [m.name for m in self.models])
        problems += {"aws": self._aws_problems, "gcp": self._gcp_problems, "azure": self._azure_problems}[self.cloud]()
        for i, pool in enumerate(self.gpu_pools):
            problems += self._cloud_problems(("gpuPools", i), pool)
            if pool.mig_profile and not self.addons.gpu_operator.enabled and self.cloud == "aws":
                problems.append((("gpuPools", i, "migProfile"), "needs addons.gpuOperator (its MIG manager applies the profile)"))
        zones = len(self.zones)
        prometheus = self.addons.prometheus
        for key, replicas in (("replicas", prometheus.replicas), ("alertmanagerReplicas", prometheus.alertmanager_replicas)):
            if prometheus.enabled and zones and replicas > zones:
                problems.append(
                    (("addons", "prometheus", key), f"{replicas} replicas but {zones} zones: replicas are spread one per zone")
                )
        karpenter_pools = self.addons.karpenter.node_pools
        managed_names = {p.name for p in self.gpu_pools}
        for i, kpool in enumerate(karpenter_pools):
            loc = ("addons", "karpenter", "nodePools", i)
            problems += self._cloud_problems(loc, kpool)
            if kpool.name in managed_names:
                problems.append(((*loc, "name"), f"{kpool.name!r} is also a gpuPools name; pool labels must be unique"))
        problems += self._model_problems()
        problems += self._routing_problems()
        if not problems:  # the budget reads pools and storage, which must be valid first
            from .scale_out import derive_model_timing  # it reads this model: imported here, not at the top

            problems += derive_model_timing(self)
        raise_problems(problems)
        return self

    def _routing_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        served: dict[str, int] = {}
        for i, model in enumerate(self.models):
            if model.served_name in served:
                key = "servedModelName" if model.served_model_name else "name"
                problems.append((("models", i, key), f"served as {model.served_name!r}, like models[{served[model.served_name]}]: a request could not say which one it means"))
            served.setdefault(model.served_name, i)
        routing = self.routing
        routed = {m.name for m in self.routed_models}
        for i, model in enumerate(self.models):
            if model.priority is not None and model.name not in routed:
                reason = "routing is off" if not routing.enabled else "the model is not in routing.models"
                problems.append((("models", i, "priority"), f"only the gateway applies a priority, and {reason}"))
        if not routing.enabled:
            return problems
        if self.cloud == "gcp":
            timeout = routing.request_timeout
            if timeout is not None and duration_seconds(timeout) > GKE_POOL_TIMEOUT_SECONDS:
                problems.append(
                    (("routing", "requestTimeout"), f"at most {GKE_POOL_TIMEOUT_SECONDS}s on GKE: the endpoint picker's chart fixes its load balancer backend timeout there")
                )
            if int(self.cluster.kubernetes_version.split(".")[1]) < 34:
                problems.append(
                    (("cluster", "kubernetesVersion"), "1.34 or newer with routing on GKE: older versions bring no InferencePool CRD (GKE installs it from 1.34.0-gke.1626000)")
                )
            if "proxy" in routing.model_fields_set:
                problems.append((("routing", "proxy"), "GKE's gateway is managed: it runs no proxies in the cluster to size"))
        if not self.models:
            problems.append((("routing", "enabled"), "no models to route to"))
        if self.cloud == "gcp" and self.gcp is not None and self.gcp.network.proxy_only_cidr is None:
            problems.append(
                (("gcp", "network", "proxyOnlyCidr"), "required with routing: GKE's regional gateway needs a proxy-only subnet, and the models admit its proxies from that range")
            )
        names = {m.name for m in self.models}
        for i, name in enumerate(routing.models or []):
            if name not in names:
                problems.append((("routing", "models", i), f"no model named {name!r} (models: {', '.join(sorted(names)) or 'none'})"))
        return problems

    @property
    def routed_models(self) -> list[ModelConfig]:
        """The models the gateway routes to (none when routing is off)."""
        if not self.routing.enabled:
            return []
        return [m for m in self.models if self.routing.models is None or m.name in self.routing.models]

    @property
    def zones(self) -> list[str]:
        """The zones nodes run in: the AWS subnets' zones, or llm-platform:gcp.zones."""
        if self.cloud == "gcp":
            return list(self.gcp.zones) if self.gcp else []
        if self.cloud == "azure":
            return list(self.azure.zones) if self.azure else []
        return self.cluster.network.zones if self.cluster.network else []

    def pool_zones(self, pool: GpuPoolConfig) -> list[str]:
        """A GPU pool's zones: its own on GKE when set, else the stack's."""
        return list(pool.zones) if pool.zones else self.zones

    def _region_problems(self) -> list[Problem]:
        pattern, what = REGION_PATTERNS[self.cloud]
        if not re.fullmatch(pattern, self.region, re.ASCII):
            return [(("region",), f"{self.region!r} is not {what}")]
        return []

    def _aws_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        problems += self._other_cloud_sections()
        network = self.cluster.network
        if network is None:
            problems.append((("cluster", "network"), "required on aws: a new VPC (vpcCidr + availabilityZones) or an existing one (vpcId + privateSubnets)"))
        else:
            for i, zone in enumerate(network.zones):
                if not zone.startswith(self.region):
                    key = "privateSubnets" if network.is_existing else "availabilityZones"
                    loc = ("cluster", "network", key, i) + (("zone",) if network.is_existing else ())
                    problems.append((loc, f"zone {zone} is not in region {self.region}"))
        for i, name in enumerate(self.system_pool.instance_types):
            if instance_type_cloud(name) != "aws":
                problems.append((("systemPool", "instanceTypes", i), f"{name} is not an AWS instance type (such as m7i.xlarge)"))
        for i, pool in enumerate(self.gpu_pools):
            if pool.zones is not None:
                problems.append((("gpuPools", i, "zones"), "GKE only: an EKS node group spans the cluster's subnets"))
            generated = len(node_group_resource_name(self.cluster.name, pool.name)) + AUTONAME_SUFFIX_LENGTH
            if generated > NODE_GROUP_NAME_MAX:
                problems.append(
                    (
                        ("gpuPools", i, "name"),
                        f"too long with cluster name {self.cluster.name!r}: the node group name would be "
                        f"{generated} characters, EKS allows {NODE_GROUP_NAME_MAX}",
                    )
                )
        return problems

    def _gcp_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        gcp = self.gcp
        if gcp is None:
            problems.append((("gcp",), "required with cloud: gcp (project, zones, network)"))
        problems += self._not_aws_problems("a GKE stack sets llm-platform:gcp.network", "on GKE grant roles/container.admin in IAM")
        for i, zone in enumerate(gcp.zones if gcp else []):
            if not zone.startswith(self.region + "-"):
                problems.append((("gcp", "zones", i), f"zone {zone} is not in region {self.region}"))
        problems += self._one_native_type_problems(("systemPool",), self.system_pool.instance_types, "a GKE node pool")
        offered = gpu_types_offered("gcp")
        for i, pool in enumerate(self.gpu_pools):
            loc: Loc = ("gpuPools", i)
            if pool.gpu_type not in offered:
                problems.append(((*loc, "gpuType"), f"GKE offers no {pool.gpu_type} machine type (GCP GPUs here: {', '.join(offered)})"))
                continue
            if len(pool.instance_types) != 1:
                problems.append(((*loc, "instanceTypes"), "a GKE node pool has exactly one machine type: one pool per machine type"))
            if pool.mig_profile:
                problems.append(
                    ((*loc, "migProfile"), "not on GKE yet: GKE partitions GPUs per pool at creation (gpu_partition_size) and its device plugin offers the slices as nvidia.com/gpu")
                )
            problems += self._gpu_zone_problems(loc, pool)
        return problems

    def _other_cloud_sections(self) -> list[Problem]:
        return [((section,), f"only with cloud: {section}") for section in ("gcp", "azure") if section != self.cloud and getattr(self, section) is not None]

    def _not_aws_problems(self, network_hint: str, admin_hint: str) -> list[Problem]:
        """What a GKE or AKS stack may not say: AWS's network, principals and add-ons."""
        problems = self._other_cloud_sections()
        if self.cluster.network is not None:
            problems.append((("cluster", "network"), f"an AWS VPC; {network_hint}"))
        if self.cluster.admin_principal_arns:
            problems.append((("cluster", "adminPrincipalArns"), f"AWS IAM principals; {admin_hint}"))
        for key, why in _AWS_ONLY_ADDONS[self.cloud].items():
            if getattr(self.addons, to_snake(key)).enabled:
                problems.append((("addons", key, "enabled"), why))
        return problems

    def _one_native_type_problems(self, loc: Loc, instance_types: list[str], pool_noun: str) -> list[Problem]:
        problems: list[Problem] = []
        if len(instance_types) != 1:
            problems.append(((*loc, "instanceTypes"), f"{pool_noun} has exactly one {_TYPE_NOUN[self.cloud].split(' ', 2)[2]}"))
        for i, name in enumerate(instance_types):
            if instance_type_cloud(name) != self.cloud:
                problems.append(((*loc, "instanceTypes", i), f"{name} is not {_TYPE_NOUN[self.cloud]} (such as {_SYSTEM_TYPE_DEFAULT[self.cloud]})"))
        return problems

    def _azure_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.azure is None:
            problems.append((("azure",), "required with cloud: azure (resourceGroup, network)"))
        problems += self._not_aws_problems("an AKS stack sets llm-platform:azure.network", "on AKS grant Azure RBAC roles (llm-platform:azure.entraId)")
        problems += self._one_native_type_problems(("systemPool",), self.system_pool.instance_types, "an AKS agent pool")
        offered = gpu_types_offered("azure")
        agent_pools: dict[str, int] = {AKS_SYSTEM_POOL: -1}
        for i, pool in enumerate(self.gpu_pools):
            loc: Loc = ("gpuPools", i)
            agent = aks_pool_name(pool.name)
            if agent in agent_pools:
                other = "the system pool" if agent_pools[agent] < 0 else f"gpuPools[{agent_pools[agent]}]"
                problems.append(((*loc, "name"), f"its AKS agent pool name would be {agent!r}, as {other}'s (lower-case letters and digits, at most 12)"))
            agent_pools.setdefault(agent, i)
            if pool.gpu_type not in offered:
                problems.append(((*loc, "gpuType"), f"Azure offers no {pool.gpu_type} VM size here (Azure GPUs: {', '.join(offered)})"))
                continue
            if len(pool.instance_types) != 1:
                problems.append(((*loc, "instanceTypes"), "an AKS agent pool has exactly one VM size: one pool per VM size"))
            if pool.zones is not None:
                problems.append(((*loc, "zones"), "GKE only: an AKS pool runs in llm-platform:azure.zones"))
            if pool.mig_profile:
                problems.append(((*loc, "migProfile"), "not on AKS yet: AKS fixes a pool's MIG profile at creation (gpuInstanceProfile)"))
        return problems

    def _gpu_zone_problems(self, loc: Loc, pool: GpuPoolConfig) -> list[Problem]:
        """Every zone of a GKE GPU pool must offer its accelerator: GKE refuses a pool otherwise."""
        known = gpu_instance(pool.instance_types[0])
        if known is None or known.cloud != "gcp":
            return []
        problems: list[Problem] = []
        for j, zone in enumerate(self.pool_zones(pool)):
            zone_loc: Loc = (*loc, "zones", j) if pool.zones else ("gcp", "zones", j)
            if not zone.startswith(self.region + "-"):
                if pool.zones:
                    problems.append((zone_loc, f"zone {zone} is not in region {self.region}"))
                continue
            offered_in = accelerator_zones(known.accelerator, self.region)
            if offered_in is not None and zone not in offered_in:
                whose = "" if pool.zones else f" (gpuPools[{loc[1]}] {pool.name!r} runs in llm-platform:gcp.zones; set its zones)"
                problems.append(
                    (zone_loc, f"{known.accelerator} is not offered in {zone}{whose}; {self.region} offers it in {', '.join(sorted(offered_in)) or 'no zone'}")
                )
        return problems

    def _cloud_problems(self, loc: tuple, pool: GpuInstanceSet) -> list[Problem]:
        return [
            ((*loc, "instanceTypes", j), f"{name} is not {_TYPE_NOUN[self.cloud]} ({gpu_instance(name).cloud} names it)")
            for j, name in enumerate(pool.instance_types)
            if gpu_instance(name).cloud != self.cloud
        ]

    def model_pools(self) -> list[ModelPool]:
        """Every pool a model service can land on: managed pools without MIG or extra taints (a
        pool with its own taint is reserved for other workloads), and Karpenter NodePools."""
        pools = [
            ModelPool(p.name, p.gpu_type, p.gpus_per_node, (p.capacity_type,), p.max_size * p.gpus_per_node)
            for p in self.gpu_pools
            if p.whole_gpus and not p.taints
        ]
        if self.addons.karpenter.enabled:
            # one NodePool per capacity type, each limited to maxGpus (clusters/aws/karpenter.py)
            pools += [
                ModelPool(p.name, p.gpu_type, p.gpus_per_node, p.capacity_types, p.max_gpus // p.gpus_per_node * p.gpus_per_node * len(p.capacity_types))
                for p in self.addons.karpenter.node_pools
            ]
        return pools

    @property
    def _provisions_pools(self) -> bool:
        """Node auto-provisioning creates pools the config does not list: no ceiling to check."""
        return bool((self.gcp and self.gcp.node_auto_provisioning) or (self.azure and self.azure.node_auto_provisioning))

    def _ceiling_problem(self, model: ModelConfig, fitting: list[ModelPool]) -> Problem | None:
        """maxReplicas (and the warm slots) × GPUs per replica must fit the GPUs the model's pools
        may ever hold: past that, KEDA asks for replicas that stay Pending forever, and the
        no-ready-replica and queue alerts say nothing about why."""
        usable = [p for p in fitting if model.allows_spot or "on-demand" in p.capacity_types]
        if self._provisions_pools or not usable:
            return None
        tp = model.gpus_per_replica
        replicas = sum(p.max_gpus // tp for p in usable)
        wanted = model.max_replicas + model.headroom_slots
        if wanted <= replicas:
            return None
        slots = f" plus {model.headroom_slots} warm slot(s)" if model.headroom_slots else ""
        held = ", ".join(f"{p.name}: {p.max_gpus}" for p in usable)
        return (
            ("maxReplicas",),
            f"{model.max_replicas} replicas{slots} of {tp} {model.gpu_type} GPU(s) need {wanted * tp} GPUs, but the pools this model "
            f"may use hold at most {replicas * tp} ({held}): raise their maxSize (or Karpenter's maxGpus), or lower maxReplicas",
        )

    def _model_problems(self) -> list[Problem]:
        if not self.models:
            return []
        problems: list[Problem] = []
        addons = self.addons
        for key, needed_for in (
            ("keda", "model services scale with KEDA"),
            ("prometheus", "model services' scaling signals and alerts come from Prometheus"),
        ):
            if not getattr(addons, to_snake(key)).enabled:
                problems.append((("addons", key, "enabled"), f"must be true when models are set: {needed_for}"))
        if self.cloud == "aws" and not addons.efs_csi.enabled:
            problems.append((("addons", "efsCsi", "enabled"), "must be true when models are set: model weights live on the shared EFS volume"))
        if self.cloud == "azure" and self.azure is not None and not self.azure.files.enabled:
            problems.append((("azure", "files", "enabled"), "must be true when models are set: model weights live on shared Azure Files NFS shares"))
        if self.cloud == "gcp" and self.gcp is not None and not self.gcp.filestore.enabled:
            problems.append((("gcp", "filestore", "enabled"), "must be true when models are set: model weights live on shared Filestore volumes"))
        own_namespaces = {m.name: i for i, m in enumerate(self.models) if m.namespace is None}
        for i, model in enumerate(self.models):
            loc: Loc = ("models", i)
            problems += [((*loc, *sub), msg) for sub, msg in self._model_fit_problems(model)]
            ns_key = "namespace" if model.namespace else "name"
            if model.namespace_name in RESERVED_NAMESPACES:
                problems.append(((*loc, ns_key), f"namespace {model.namespace_name!r} belongs to the platform; set models[{i}].namespace"))
            elif model.namespace and own_namespaces.get(model.namespace, i) != i:
                other = own_namespaces[model.namespace]
                problems.append(
                    ((*loc, "namespace"), f"{model.namespace!r} is models[{other}]'s own namespace; give models[{other}] the same namespace to share it")
                )
            if model.scaling.scale_to_zero and not self.model_policy.allow_scale_to_zero:
                problems.append(
                    (
                        (*loc, "scaling", "scaleToZero"),
                        "this stack does not allow scale-to-zero (llm-platform:modelPolicy.allowScaleToZero); "
                        "a model at zero answers nothing until a replica has loaded",
                    )
                )
            if self.model_policy.require_pinned_revisions and not model.is_local_path and not COMMIT_SHA.fullmatch(model.revision):
                problems.append(
                    (
                        (*loc, "revision"),
                        f"{model.revision!r} is not a commit sha, and this stack pins them (llm-platform:modelPolicy.requirePinnedRevisions): "
                        f"take the 40-character sha of the commit to serve from huggingface.co/{model.model}/commits/main",
                    )
                )
            if self.model_policy.require_pinned_images and "@sha256:" not in model.image:
                problems.append(
                    (
                        (*loc, "image"),
                        f"{model.image!r} names no digest, and this stack pins images (llm-platform:modelPolicy.requirePinnedImages): "
                        f"give it as {model.image.split('@', 1)[0]}@sha256:<digest> (`crane digest {model.image}` prints it)",
                    )
                )
            if model.gated and self.hf_token is None:
                problems.append(
                    ((*loc, "gated"), "a gated model needs llm-platform:hfToken (`pulumi config set --secret llm-platform:hfToken hf_...`)")
                )
        return problems

    def _model_fit_problems(self, model: ModelConfig) -> Iterable[Problem]:
        unknown_architecture = architecture_problem(model)
        if unknown_architecture:
            yield (("architecture",), unknown_architecture)
        candidates = self.model_pools()
        pools = [p for p in candidates if p.gpu_type == model.gpu_type]
        tp = model.gpus_per_replica
        if not pools:
            offered = sorted({p.gpu_type for p in candidates})
            yield (("gpuType",), f"no GPU pool provides {model.gpu_type} (pools provide: {', '.join(offered) or 'none'})")
            return
        if not any(p.gpus_per_node >= tp for p in pools):
            most = max(p.gpus_per_node for p in pools)
            yield (
                ("gpusPerReplica",),
                f"{tp} GPUs per replica, but {model.gpu_type} pools have at most {most} per node "
                "(tensor parallelism does not span nodes)",
            )
            return
        fitting = [p for p in pools if tensor_parallel_fits(tp, p.gpus_per_node)]
        if not fitting:
            sizes = ", ".join(f"{p.name}: {p.gpus_per_node}" for p in pools)
            yield (
                ("gpusPerReplica",),
                f"{tp} GPUs per replica does not divide the GPUs per node of any {model.gpu_type} pool ({sizes}); "
                "the rest of each node's GPUs would sit idle",
            )
            return
        if not model.allows_spot and not any("on-demand" in p.capacity_types for p in fitting):
            yield (
                ("capacity",),
                f"on-demand, but every {model.gpu_type} pool with {tp}+ GPUs per node is spot-only "
                f"({', '.join(p.name for p in fitting)}); add an on-demand pool or allow spot",
            )
        ceiling = self._ceiling_problem(model, fitting)
        if ceiling:
            yield ceiling
        if model.fit_check and model.quantization is not None and model.quantization not in known_methods():
            yield (
                ("quantization",),
                f"{model.quantization!r} is a method the capacity planner does not model (it knows {', '.join(known_methods())}): "
                "use one of those, or set fitCheck: false to deploy the model without the memory check",
            )
            return
        memory = fit_problem(model)
        if memory:
            yield ((fit_key(model),), memory)


@dataclass(frozen=True)
class ModelPool:
    """A pool as model placement sees it: GPU type, GPUs per node, capacity types."""

    name: str
    gpu_type: str
    gpus_per_node: int
    capacity_types: tuple[str, ...]
    max_gpus: int  # the most GPUs the pool ever holds: maxSize × GPUs per node, or Karpenter's limits


def _duplicates(key: str, names: list[str]) -> list[Problem]:
    return [((key, i, "name"), f"duplicate name {n!r} (also at {key}[{names.index(n)}])") for i, n in enumerate(names) if n in names[:i]]


SECRET_KEYS = frozenset({"hfToken"})  # must be stored encrypted (`pulumi config set --secret`)
MAX_CREDENTIAL_CHARS = 256  # a Hugging Face token is 37 ("hf_" and 34)


def credential_problem(value: str) -> str | None:
    """Why a credential could not work, said without showing it. It goes into a Secret as it is,
    and huggingface_hub sends it in an HTTP header: an empty token is anonymous (a gated download
    fails an hour into a billed GPU node's start), and a pasted newline or space breaks the header."""
    if not value.strip():
        return "is empty: a gated model needs a Hugging Face token (hf_...)"
    if any(c.isspace() or unicodedata.category(c).startswith("C") for c in value):
        return "holds a space, newline or control character (pasted with a line break?)"
    if len(value) > MAX_CREDENTIAL_CHARS:
        return f"is {len(value):,} characters long; a Hugging Face token has about 40 (was a file pasted?)"
    return None


def parse_stack_config(raw: Mapping[str, Any], stack_file: str, secret_keys: Iterable[str] = ()) -> StackConfig:
    """Validate the `llm-platform:` keys of one stack (namespace already stripped). `secret_keys`
    are the keys the engine marks secret; a credential stored in plain text is a problem too.

    Raises ConfigError listing every problem, each as `<stack file>: llm-platform:<key path>: why`.
    """
    secret = set(secret_keys)
    plain = sorted(k for k in SECRET_KEYS if k in raw and k not in secret)
    problems = [(format_key_path((k,)), "a credential: store it with `pulumi config set --secret`") for k in plain]
    known = {field.alias or name for name, field in StackConfig.model_fields.items()}
    encrypted = sorted(k for k in secret & known - SECRET_KEYS if k in raw)
    if encrypted:  # offline such a value is a placeholder, so what follows from it would mislead: stop here
        why = (
            f"stored encrypted, but it is not a credential (only {', '.join(sorted(SECRET_KEYS))} is): the program uses it "
            "in plain text, in resource names, outputs and logs; set it without --secret"
        )
        raise ConfigError(stack_file, problems + [(format_key_path((k,)), why) for k in encrypted])
    try:
        config = StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        problems += problems_from_validation_error(exc, StackConfig)
    if problems:
        raise ConfigError(stack_file, problems)
    return config


def stack_config_json_schema() -> dict[str, Any]:
    """JSON Schema of the stack config, for the portal's forms and for the config reference page."""
    schema = StackConfig.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = (
        f"Keys of Pulumi.<stack>.yaml under the '{CONFIG_NAMESPACE}:' namespace "
        f"(each top-level property is the config key '{CONFIG_NAMESPACE}:<property>')."
    )
    return schema
