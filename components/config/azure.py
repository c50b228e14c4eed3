"""`llm-platform:azure`: what an AKS stack says that the other clouds have no word for.

The resource group, the VNet (a new one, or an existing subnet), the availability zones of the
node pools, Entra ID instead of local accounts, the Azure Files NFS share for the model weights,
and optional node auto-provisioning. The subscription is the caller's (the provider's), never config.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from .errors import Problem, raise_problems
from .types import ConfigModel, formatted

ResourceGroupName = formatted(r"[-\w.()]{1,89}[-\w()]", "an Azure resource group name (letters, digits, -_.() up to 90)")
SubnetResourceId = formatted(
    r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]+/providers/Microsoft\.Network/virtualNetworks/[-\w.]+/subnets/[-\w.]+",
    "a subnet resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>)",
)
AzureZone = Literal["1", "2", "3"]

# Premium (SSD) file shares: at least 100 GiB; throughput grows with the provisioned size.
NFS_SHARE_MIN_GIB = 100


class AzureNetworkConfig(ConfigModel):
    """A new VNet (`vnetCidr`, `nodeSubnetCidr`) or an existing subnet (`subnetId`). Pods and
    Services get overlay ranges (`podCidr`, `serviceCidr`) that take no VNet addresses."""

    vnet_cidr: str | None = Field(None, description="New VNet: its address space, /8 to /24 (e.g. 10.80.0.0/16).")
    node_subnet_cidr: str | None = Field(None, description="New VNet: the nodes' subnet inside it (e.g. 10.80.0.0/20).")
    subnet_id: SubnetResourceId | None = Field(
        None, description="Existing subnet for the nodes; it needs the Microsoft.Storage service endpoint for the weights share."
    )
    pod_cidr: str = Field("192.168.0.0/16", description="Azure CNI overlay: pod addresses, outside every VNet range.")
    service_cidr: str = Field("172.16.0.0/16", description="Service addresses, outside every VNet range.")

    @property
    def is_existing(self) -> bool:
        return self.subnet_id is not None

    @property
    def dns_service_ip(self) -> str:
        """The tenth address of the Service range, AKS's convention for CoreDNS."""
        return str(ipaddress.IPv4Network(self.service_cidr)[10])

    @model_validator(mode="after")
    def _check(self) -> AzureNetworkConfig:
        problems: list[Problem] = []
        nets: dict[str, ipaddress.IPv4Network] = {}
        keys = ["pod_cidr", "service_cidr"]
        if self.is_existing:
            problems += [((to_camel(k),), "only for a new VNet; an existing subnet (subnetId) brings its own") for k in ("vnet_cidr", "node_subnet_cidr") if getattr(self, k)]
        else:
            problems += [((to_camel(k),), "required for a new VNet (or set subnetId)") for k in ("vnet_cidr", "node_subnet_cidr") if not getattr(self, k)]
            keys = ["vnet_cidr", "node_subnet_cidr", *keys]
        for key in keys:
            value = getattr(self, key)
            if value is None:
                continue
            try:
                nets[key] = ipaddress.IPv4Network(value)
            except ValueError as exc:
                problems.append(((to_camel(key),), f"not an IPv4 network: {exc}"))
        vnet, subnet = nets.get("vnet_cidr"), nets.get("node_subnet_cidr")
        if vnet and subnet and not subnet.subnet_of(vnet):
            problems.append((("nodeSubnetCidr",), f"must lie inside vnetCidr ({vnet})"))
        for key in ("pod_cidr", "service_cidr"):
            for other in ("vnet_cidr", "pod_cidr"):
                if key != other and key in nets and other in nets and nets[key].overlaps(nets[other]):
                    problems.append(((to_camel(key),), f"overlaps {to_camel(other)} ({nets[other]})"))
        raise_problems(problems)
        return self


class AzureFilesConfig(ConfigModel):
    """Azure Files NFS for model weights: a premium FileStorage account reachable only from the
    cluster's subnet; the CSI driver creates one NFS share per model's weights claim in it."""

    enabled: bool = Field(True, description="Shared model weights on Azure Files NFS (required when models are set).")
    share_gib: int = Field(
        1024, ge=NFS_SHARE_MIN_GIB, le=102400,
        description="Size of each model's share: a premium share reads 100 + 0.1 MiB/s per GiB (about 200 MiB/s at 1 TiB, 510 at 4 TiB), "
        "which is how fast a new replica reads its weights (at least 100 GiB).",
    )


class AzureConfig(ConfigModel):
    """Azure: the resource group, zones, network and weights storage of an AKS stack."""

    resource_group: ResourceGroupName = Field(description="Resource group the stack creates and puts everything in.")
    zones: list[AzureZone] = Field(
        ["1", "2", "3"], max_length=3,
        description="Availability zones of the node pools; empty for a region without zones. Every GPU pool's VM size must be offered in them (az vm list-skus --location <region> --size <size> --output table); AKS refuses the pool otherwise.",
    )
    network: AzureNetworkConfig = Field(description="A new VNet (vnetCidr, nodeSubnetCidr) or an existing subnet (subnetId).")
    entra_id: bool = Field(
        False,
        description="Entra ID (Azure AD) with Azure RBAC instead of local accounts: `disableLocalAccounts`, and a "
        "kubeconfig that authenticates through kubelogin with the Azure CLI's login.",
    )
    sku_tier: Literal["Free", "Standard"] = Field("Standard", description="Standard: the control plane's uptime SLA; Free for dev.")
    files: AzureFilesConfig = Field(AzureFilesConfig(), description="Shared model weights on Azure Files NFS.")
    node_auto_provisioning: bool = Field(
        False, description="AKS node auto-provisioning (managed Karpenter) for other workloads; model services stay on gpuPools."
    )

    @model_validator(mode="after")
    def _check(self) -> AzureConfig:
        raise_problems([(("zones", i), f"zone {z} is listed twice") for i, z in enumerate(self.zones) if z in self.zones[:i]])
        return self
