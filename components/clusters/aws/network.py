"""A VPC shaped for an EKS GPU cluster: large private subnets per zone, NAT egress, an S3 endpoint.

Why these shapes: the VPC CNI gives every pod a VPC address, so private subnets get a /19 each;
public subnets only hold NAT gateways and internet-facing load balancers, so a /22 is plenty.
vLLM images are ~10 GB and come from ECR, whose layers are served from S3: the S3 gateway endpoint
keeps those pulls off the NAT gateway (no per-GB NAT charge, no NAT bottleneck on a scale-out).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

SUBNET_TAG_INTERNAL_ELB = "kubernetes.io/role/internal-elb"
SUBNET_TAG_ELB = "kubernetes.io/role/elb"
# Karpenter's EC2NodeClass finds the subnets and security groups to launch nodes into by this tag.
KARPENTER_DISCOVERY_TAG = "karpenter.sh/discovery"


@dataclass(frozen=True)
class AwsVpcArgs:
    cluster_name: str
    region: str
    cidr: str
    zones: list[str]
    nat_gateways: Literal["single", "perZone"]
    karpenter_discovery: bool = False  # tag private subnets for Karpenter's EC2NodeClass


def subnet_cidrs(vpc_cidr: str, zone_count: int) -> tuple[list[str], list[str]]:
    """(private, public) CIDRs: the VPC is cut into 8 equal blocks; private subnets take the first
    `zone_count` blocks, public subnets are /+6 slices of the last block."""
    vpc = ipaddress.IPv4Network(vpc_cidr)
    blocks = list(vpc.subnets(prefixlen_diff=3))
    public = list(blocks[-1].subnets(prefixlen_diff=3))
    return [str(b) for b in blocks[:zone_count]], [str(b) for b in public[:zone_count]]


class AwsVpc(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: AwsVpcArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:network:AwsVpc", name, None, opts)
        # retain_on_delete, unlike protect, is not inherited from the component: handed down here
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=bool(opts and opts.retain_on_delete))
        cluster_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}
        discovery_tag = {KARPENTER_DISCOVERY_TAG: args.cluster_name} if args.karpenter_discovery else {}
        private_cidrs, public_cidrs = subnet_cidrs(args.cidr, len(args.zones))

        def tags(label: str, extra: dict[str, str] | None = None) -> dict[str, str]:
            # Stack-wide tags come from the AWS provider's default_tags; these name and classify.
            return {"Name": f"{name}-{label}", **(extra or {})}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,  # EKS nodes and EFS mount targets resolve by DNS name
            enable_dns_support=True,
            tags=tags("vpc"),
            opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags("igw"), opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags=tags("public"),
            opts=child,
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        nat_ids: list[pulumi.Output[str]] = []
        private_route_tables: list[aws.ec2.RouteTable] = []
        for i, zone in enumerate(args.zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=public_cidrs[i],
                availability_zone=zone,
                tags=tags(f"public-{zone}", {SUBNET_TAG_ELB: "1", **cluster_tag}),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}", subnet_id=public.id, route_table_id=public_rt.id, opts=child
            )
            public_subnets.append(public)
            if args.nat_gateways == "perZone" or i == 0:
                eip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", tags=tags(f"nat-{zone}"), opts=child)
                nat = aws.ec2.NatGateway(
                    f"{name}-nat-{zone}",
                    allocation_id=eip.id,
                    subnet_id=public.id,
                    tags=tags(f"nat-{zone}"),
                    opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[igw])),
                )
                nat_ids.append(nat.id)

            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=private_cidrs[i],
                availability_zone=zone,
                tags=tags(f"private-{zone}", {SUBNET_TAG_INTERNAL_ELB: "1", **cluster_tag, **discovery_tag}),
                opts=child,
            )
            route_table = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat_ids[-1])],
                tags=tags(f"private-{zone}"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=private.id, route_table_id=route_table.id, opts=child
            )
            private_subnets.append(private)
            private_route_tables.append(route_table)

        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_route_tables],
            tags=tags("s3"),
            opts=child,
        )

        self.vpc_id = vpc.id
        self.private_subnet_ids = [s.id for s in private_subnets]
        self.public_subnet_ids = [s.id for s in public_subnets]
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "publicSubnetIds": self.public_subnet_ids,
            }
        )
