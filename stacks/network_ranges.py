"""Network ranges the config accepts but an expert would question: publicly routable ones.

AWS, Google Cloud and Azure all let a VPC or VNet use addresses outside the private ranges, and
some organisations do use public blocks they own. But a range someone else owns (a typo such as
8.8.0.0/16 for 10.8.0.0/16) hides those addresses from the cluster: traffic for them stays inside
the network, so a public DNS resolver or API in that block becomes unreachable. The program cannot
know who owns a block, so this is a warning, not an error.
"""

from __future__ import annotations

import ipaddress

from components.config.errors import Loc
from components.config.stack import StackConfig


def _ranges(cfg: StackConfig) -> list[tuple[Loc, str]]:
    ranges: list[tuple[Loc, str]] = []
    aws_network = cfg.cluster.network
    if aws_network is not None and aws_network.vpc_cidr:
        ranges.append((("cluster", "network", "vpcCidr"), aws_network.vpc_cidr))
    if cfg.gcp is not None:
        net = cfg.gcp.network
        for key, value in (("subnetCidr", net.subnet_cidr), ("podsCidr", net.pods_cidr), ("servicesCidr", net.services_cidr), ("proxyOnlyCidr", net.proxy_only_cidr)):
            if value:
                ranges.append((("gcp", "network", key), value))
    if cfg.azure is not None:
        net = cfg.azure.network
        for key, value in (("vnetCidr", net.vnet_cidr), ("nodeSubnetCidr", net.node_subnet_cidr), ("podCidr", net.pod_cidr), ("serviceCidr", net.service_cidr)):
            if value:
                ranges.append((("azure", "network", key), value))
    return ranges


def public_range_warnings(cfg: StackConfig) -> list[tuple[Loc, str]]:
    warnings = []
    for loc, cidr in _ranges(cfg):
        try:
            network = ipaddress.ip_network(cidr)
        except ValueError:
            continue  # a config error already
        if network.is_global:
            warnings.append((loc, f"{cidr} is publicly routable, not a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
                                  "100.64.0.0/10): unless your organisation owns it, the internet's hosts in it become unreachable from the cluster"))
    return warnings
