"""`llm-platform:gcp`: what a GKE stack says that an EKS stack has no word for.

The project, the VPC-native network (a new one, or an existing network and subnet with secondary
ranges), the zones node pools run in, the cluster's location type and release channel, Filestore
for the shared model weights, and optional node auto-provisioning. Everything else (pools, models,
add-ons) keeps the shape it has on AWS; `stack.py` checks the parts whose meaning changes on GCP
(machine types instead of instance types, GPU zones, GCP labels).
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from .errors import Problem, raise_problems
from .types import ConfigModel, GpuType, formatted

GcpProjectId = formatted(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", "a GCP project id (6-30 lower-case letters, digits and hyphens)")
GcpZone = formatted(r"[a-z]+-[a-z]+[0-9]+-[a-z]", "a GCP zone such as us-central1-a")
GcpResourceName = formatted(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", "a GCP resource name (lower-case letters, digits, hyphens)")

# Filestore tier -> (the StorageClass `tier` the Filestore CSI driver reads, smallest instance in GiB).
# Minimums: the driver's per-tier limits (kubernetes-sigs/gcp-filestore-csi-driver, controller.go)
# and Filestore's service tiers page. Basic HDD instances of 100 GiB need GKE 1.33+, else 1 TiB.
FILESTORE_TIERS: dict[str, tuple[str, int]] = {
    "zonal": ("zonal", 1024),
    "regional": ("regional", 1024),
    "basic-hdd": ("standard", 1024),
    "basic-ssd": ("premium", 2560),
    "enterprise": ("enterprise", 1024),
}
FilestoreTier = Literal["zonal", "regional", "basic-hdd", "basic-ssd", "enterprise"]


class GcpNetworkConfig(ConfigModel):
    """A new VPC (`subnetCidr`, `podsCidr`, `servicesCidr`) with Cloud NAT for the private nodes,
    or an existing one (`network`, `subnetwork`, `podsRangeName`, `servicesRangeName`), whose egress
    (Cloud NAT or a proxy) is the network owner's to provide."""

    subnet_cidr: str | None = Field(None, description="New VPC: the nodes' subnet, /16 to /24 (e.g. 10.60.0.0/20).")
    pods_cidr: str | None = Field(None, description="New VPC: the pods' secondary range, /9 to /21 (e.g. 10.64.0.0/14).")
    services_cidr: str | None = Field(None, description="New VPC: the Services' secondary range, /16 to /27 (e.g. 10.68.0.0/20).")
    network: GcpResourceName | None = Field(None, description="Existing VPC network name.")
    subnetwork: GcpResourceName | None = Field(None, description="Existing subnet name, in the stack's region.")
    pods_range_name: GcpResourceName | None = Field(None, description="Existing subnet: its secondary range for pods.")
    services_range_name: GcpResourceName | None = Field(None, description="Existing subnet: its secondary range for Services.")
    proxy_only_cidr: str | None = Field(
        None,
        description="With routing: the regional load balancers' proxy-only subnet, /23 recommended, /26 at least (e.g. 10.129.0.0/23). "
        "A new VPC gets it; for an existing VPC give the range of its proxy-only subnet in the region. The models admit the gateway's proxies from it.",
    )

    @property
    def is_existing(self) -> bool:
        return self.network is not None

    @model_validator(mode="after")
    def _check(self) -> GcpNetworkConfig:
        new_keys = ("subnet_cidr", "pods_cidr", "services_cidr")
        existing_keys = ("network", "subnetwork", "pods_range_name", "services_range_name")
        problems: list[Problem] = []
        if self.is_existing:
            problems += [((to_camel(k),), "only for a new VPC; an existing one (network) takes subnetwork and range names") for k in new_keys if getattr(self, k) is not None]
            problems += [((to_camel(k),), "required with network (an existing VPC)") for k in existing_keys if getattr(self, k) is None]
        else:
            problems += [((to_camel(k),), "only with network (an existing VPC)") for k in existing_keys[1:] if getattr(self, k) is not None]
            bounds = {"subnet_cidr": (16, 24), "pods_cidr": (9, 21), "services_cidr": (16, 27)}
            networks: dict[str, ipaddress.IPv4Network] = {}
            for key, (widest, narrowest) in bounds.items():
                value = getattr(self, key)
                if value is None:
                    problems.append(((to_camel(key),), "required for a new VPC (or set network to use an existing one)"))
                    continue
                try:
                    net = ipaddress.IPv4Network(value)
                except ValueError as exc:
                    problems.append(((to_camel(key),), f"not an IPv4 network: {exc}"))
                    continue
                if not widest <= net.prefixlen <= narrowest:
                    problems.append(((to_camel(key),), f"prefix /{net.prefixlen} must be /{widest} to /{narrowest}"))
                    continue
                for other, other_net in networks.items():
                    if net.overlaps(other_net):
                        problems.append(((to_camel(key),), f"overlaps {to_camel(other)} ({other_net})"))
                networks[key] = net
        if self.proxy_only_cidr is not None:
            try:
                proxy = ipaddress.IPv4Network(self.proxy_only_cidr)
            except ValueError as exc:
                problems.append((("proxyOnlyCidr",), f"not an IPv4 network: {exc}"))
            else:
                if not 16 <= proxy.prefixlen <= 26:
                    problems.append((("proxyOnlyCidr",), f"prefix /{proxy.prefixlen} must be /16 to /26 (GCP's proxy-only subnet bounds; /23 recommended)"))
                for key in ("subnet_cidr", "pods_cidr", "services_cidr"):
                    value = getattr(self, key)
                    try:
                        if value is not None and proxy.overlaps(ipaddress.IPv4Network(value)):
                            problems.append((("proxyOnlyCidr",), f"overlaps {to_camel(key)} ({value})"))
                    except ValueError:
                        pass  # reported at its own key
        raise_problems(problems)
        return self


class FilestoreConfig(ConfigModel):
    """Filestore for model weights: the GKE Filestore CSI driver provisions one instance per model
    (its weights volume), in the cluster's network."""

    enabled: bool = Field(True, description="Shared model weights on Filestore (required when models are set).")
    tier: FilestoreTier = Field(
        "zonal",
        description="basic-ssd: 1,200 MiB/s read with no per-client cap (from 2.5 TiB), the fastest start for one replica; "
        "zonal: read throughput grows with capacity (260 MiB/s per TiB) but one client reads at most 450 MiB/s; "
        "basic-hdd is the cheap choice for dev; regional survives a zone outage.",
    )
    capacity_gib: int = Field(1024, ge=100, le=102400, description="Size of each model's instance (at least the tier's minimum).")

    @model_validator(mode="after")
    def _check(self) -> FilestoreConfig:
        smallest = FILESTORE_TIERS[self.tier][1]
        if self.capacity_gib < smallest:
            raise_problems([(("capacityGib",), f"a {self.tier} Filestore instance is at least {smallest} GiB")])
        return self

    @property
    def storage_class_tier(self) -> str:
        return FILESTORE_TIERS[self.tier][0]


class NodeAutoProvisioningConfig(ConfigModel):
    """GKE node auto-provisioning: the cluster autoscaler may create node pools of its own for
    pending pods, within these limits. Model services stay on the declared gpuPools (they select
    nodes by our pool labels); this is for other workloads of the cluster."""

    max_cpu: int = Field(ge=1, le=100000, description="Cores across the whole cluster (GKE requires a CPU limit).")
    max_memory_gib: int = Field(ge=1, le=1000000, description="Memory across the whole cluster (GKE requires a memory limit).")
    max_gpus: dict[GpuType, int] = Field(
        default_factory=dict, description="GPUs of each type across the cluster; a GPU type not listed is never auto-provisioned."
    )


class GcpConfig(ConfigModel):
    """Google Cloud: the project, zones, network and Filestore of a GKE stack."""

    project: GcpProjectId = Field(description="Project every resource is created in.")
    zones: list[GcpZone] = Field(
        min_length=1,
        max_length=4,
        description="Zones of the node pools, in the region; every GPU pool's zones must offer its GPU "
        "(gcloud compute accelerator-types list --filter=zone:<zone>).",
    )
    location_type: Literal["regional", "zonal"] = Field(
        "regional", description="regional: the control plane is replicated over the region's zones; zonal (dev): one control plane in zones[0]."
    )
    release_channel: Literal["rapid", "regular", "stable", "extended"] = Field(
        "regular", description="GKE release channel: GKE upgrades the control plane and nodes within it."
    )
    network: GcpNetworkConfig = Field(description="A new VPC (subnetCidr, podsCidr, servicesCidr) or an existing one (network, subnetwork, range names).")
    filestore: FilestoreConfig = Field(FilestoreConfig(), description="Shared model weights on Filestore.")
    node_auto_provisioning: NodeAutoProvisioningConfig | None = Field(None, description="Optional: let GKE create node pools within limits.")

    @model_validator(mode="after")
    def _check(self) -> GcpConfig:
        problems: list[Problem] = [
            (("zones", i), f"zone {z} is listed twice") for i, z in enumerate(self.zones) if z in self.zones[:i]
        ]
        raise_problems(problems)
        return self

    @property
    def location(self) -> str | None:
        """The cluster's location for a zonal cluster; None means the region (regional cluster)."""
        return self.zones[0] if self.location_type == "zonal" else None
