"""The VNet of an AKS cluster: one subnet for the nodes (pods and Services use overlay ranges and
take no VNet addresses), with the Microsoft.Storage service endpoint so the weights account can
admit this subnet, and only it.

The subnet is declared inside the VNet, not as a separate `Subnet` resource: azure-native rewrites
a VNet's subnets on every update, so a separately managed subnet would be removed and re-added.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

NODE_SUBNET = "nodes"


@dataclass(frozen=True)
class AzureVnetArgs:
    cluster_name: str
    resource_group: str
    location: str
    vnet_cidr: str
    node_subnet_cidr: str
    tags: dict[str, str]


class AzureVnet(pulumi.ComponentResource):
    node_subnet_id: pulumi.Output[str]

    def __init__(self, name: str, args: AzureVnetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:network:AzureVnet", name, None, opts)
        vnet = azure.network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=args.cluster_name,
            resource_group_name=args.resource_group,
            location=args.location,
            address_space=azure.network.AddressSpaceArgs(address_prefixes=[args.vnet_cidr]),
            subnets=[
                azure.network.SubnetArgs(
                    name=NODE_SUBNET,
                    address_prefix=args.node_subnet_cidr,
                    service_endpoints=[azure.network.ServiceEndpointPropertiesFormatArgs(service="Microsoft.Storage")],
                )
            ],
            tags=args.tags,
            # retain_on_delete, unlike protect, is not inherited from the component: handed down here
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=bool(opts and opts.retain_on_delete)),
        )
        # Built from the VNet's id (unknown until it exists) rather than read back from its subnets.
        self.node_subnet_id = vnet.id.apply(lambda vnet_id: f"{vnet_id}/subnets/{NODE_SUBNET}")
        self.register_outputs({"vnetId": vnet.id, "nodeSubnetId": self.node_subnet_id})
