"""The VPC-native network of a GKE cluster: one subnet for nodes with secondary ranges for pods and
Services, and Cloud NAT, because private nodes have no external IP and still pull images from
nvcr.io, ghcr.io, Docker Hub and Hugging Face.

Choices, and why:
- A custom-mode VPC (no auto subnets): the ranges are written down, so they can be peered or
  routed later without a clash.
- Private Google Access on the subnet: nodes reach Google APIs (Artifact Registry, Cloud Logging)
  without NAT.
- NAT with dynamic port allocation: a node pulling a 10 GB vLLM image opens many connections, and
  a fixed 64 ports per VM runs out; NAT errors are logged, successes are not (cost).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

PODS_RANGE = "pods"
SERVICES_RANGE = "services"


@dataclass(frozen=True)
class GcpVpcArgs:
    cluster_name: str
    region: str
    subnet_cidr: str
    pods_cidr: str
    services_cidr: str
    proxy_only_cidr: str | None = None  # with routing: the regional gateway's proxy-only subnet


class GcpVpc(pulumi.ComponentResource):
    network_name: pulumi.Output[str]
    network_id: pulumi.Output[str]
    subnetwork_id: pulumi.Output[str]

    def __init__(self, name: str, args: GcpVpcArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:network:GcpVpc", name, None, opts)
        # retain_on_delete, unlike protect, is not inherited from the component: handed down here
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=bool(opts and opts.retain_on_delete))
        network = gcp.compute.Network(
            f"{name}-vpc",
            name=args.cluster_name,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            description=f"VPC of GKE cluster {args.cluster_name}",
            opts=child,
        )
        subnet = gcp.compute.Subnetwork(
            f"{name}-nodes",
            name=f"{args.cluster_name}-nodes",
            network=network.id,
            region=args.region,
            ip_cidr_range=args.subnet_cidr,
            secondary_ip_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=PODS_RANGE, ip_cidr_range=args.pods_cidr),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=SERVICES_RANGE, ip_cidr_range=args.services_cidr),
            ],
            private_ip_google_access=True,
            opts=child,
        )
        if args.proxy_only_cidr is not None:
            # Regional Application Load Balancers (GKE's inference gateway) run their proxies here.
            gcp.compute.Subnetwork(
                f"{name}-proxy-only",
                name=f"{args.cluster_name}-proxy-only",
                network=network.id,
                region=args.region,
                ip_cidr_range=args.proxy_only_cidr,
                purpose="REGIONAL_MANAGED_PROXY",
                role="ACTIVE",
                opts=child,
            )
        router = gcp.compute.Router(
            f"{name}-router", name=f"{args.cluster_name}-nat", network=network.id, region=args.region, opts=child
        )
        gcp.compute.RouterNat(
            f"{name}-nat",
            name=f"{args.cluster_name}-nat",
            router=router.name,
            region=args.region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            enable_dynamic_port_allocation=True,
            min_ports_per_vm=64,
            max_ports_per_vm=4096,
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=child,
        )
        self.network_name = network.name
        self.network_id = network.id
        self.subnetwork_id = subnet.id
        self.register_outputs({"networkName": network.name, "subnetwork": subnet.name})
