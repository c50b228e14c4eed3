"""What a stack costs per hour and per month, at its minimum and at its maximum scale.

Priced per node from the dated table (`pricing.py`), pool by pool:
- managed on-demand node groups launch their instance types in list order: the first is priced;
- managed spot node groups may launch any listed type: the dearest is priced (a ceiling);
- Karpenter NodePools launch the cheapest type that fits: the cheapest listed is priced. At
  minimum they have no nodes; at maximum, `maxGpus / gpusPerNode` nodes. A spot-first pool is
  priced at spot; the spot saving column says what it would cost more if spot ran short.

GPU nodes dominate; EBS, EFS, NAT, load balancers and the EKS fee are not included (they are
listed as such in the output), so the figure is the compute bill, not the whole bill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..catalog.prices import Capacity, hourly_price, price_table
from ..config.stack import StackConfig

HOURS_PER_MONTH = 730  # AWS's own convention for monthly estimates
NOT_INCLUDED = ("EKS control plane", "EBS volumes", "EFS storage and throughput", "NAT gateways and data transfer")


@dataclass(frozen=True)
class PoolCost:
    pool: str
    kind: str  # system | managed | karpenter
    capacity_type: Capacity
    instance_type: str
    nodes_min: int
    nodes_max: int
    node_price: float | None  # USD/hour at this capacity type
    on_demand_price: float | None  # USD/hour on demand, for the spot saving

    def hourly(self, nodes: int) -> float:
        return nodes * (self.node_price or 0.0)

    @property
    def spot_saving(self) -> float:
        """USD/hour saved at maximum scale against the same nodes on demand."""
        if self.capacity_type != "spot" or self.node_price is None or self.on_demand_price is None:
            return 0.0
        return self.nodes_max * (self.on_demand_price - self.node_price)


@dataclass(frozen=True)
class CostEstimate:
    region: str
    pools: list[PoolCost]
    warnings: list[str] = field(default_factory=list)

    @property
    def min_hourly(self) -> float:
        return sum(p.hourly(p.nodes_min) for p in self.pools)

    @property
    def max_hourly(self) -> float:
        return sum(p.hourly(p.nodes_max) for p in self.pools)

    @property
    def spot_saving_hourly(self) -> float:
        return sum(p.spot_saving for p in self.pools)

    def as_output(self) -> dict[str, Any]:
        """The `cost` stack output (USD, rounded to cents)."""

        def money(hourly: float) -> dict[str, float]:
            return {"perHour": round(hourly, 2), "perMonth": round(hourly * HOURS_PER_MONTH, 2)}

        return {
            "currency": "USD",
            "region": self.region,
            "pricesAsOf": price_table().as_of,
            "hoursPerMonth": HOURS_PER_MONTH,
            "atMinimum": money(self.min_hourly),
            "atMaximum": money(self.max_hourly),
            "spotSavingAtMaximum": money(self.spot_saving_hourly),
            "pools": [
                {
                    "pool": p.pool,
                    "kind": p.kind,
                    "capacityType": p.capacity_type,
                    "instanceType": p.instance_type,
                    "nodes": {"min": p.nodes_min, "max": p.nodes_max},
                    "nodePricePerHour": p.node_price,
                    "atMinimum": money(p.hourly(p.nodes_min)),
                    "atMaximum": money(p.hourly(p.nodes_max)),
                }
                for p in self.pools
            ],
            "notIncluded": list(NOT_INCLUDED),
            "warnings": list(self.warnings),
        }


def estimate_cost(cfg: StackConfig) -> CostEstimate:
    overrides = {name: price.as_table_entry() for name, price in cfg.prices.items()}
    warnings: list[str] = []

    def price(instance_type: str, capacity: Capacity) -> float | None:
        value = hourly_price(cfg.region, instance_type, capacity, overrides)
        if value is None:
            warnings.append(
                f"no {capacity} price for {instance_type} in {cfg.region}: it counts as 0 in the estimate; "
                f"set llm-platform:prices.{instance_type}"
            )
        return value

    def priced(types: list[str], capacity: Capacity, pick) -> tuple[str, float | None]:
        known = [(t, price(t, capacity)) for t in types]  # warns for each type without a price
        with_price = [(t, p) for t, p in known if p is not None]
        return pick(with_price, key=lambda tp: tp[1]) if with_price else (types[0], None)

    pools: list[PoolCost] = []
    system = cfg.system_pool
    first = system.instance_types[0]
    pools.append(PoolCost("system", "system", "on-demand", first, system.min_size, system.max_size, price(first, "on-demand"), None))
    for pool in cfg.gpu_pools:
        if pool.capacity_type == "on-demand":
            instance_type, node_price = pool.instance_types[0], price(pool.instance_types[0], "on-demand")
        else:
            instance_type, node_price = priced(pool.instance_types, "spot", max)
        on_demand = node_price if pool.capacity_type == "on-demand" else price(instance_type, "on-demand")
        pools.append(PoolCost(pool.name, "managed", pool.capacity_type, instance_type, pool.min_size, pool.max_size, node_price, on_demand))
    if cfg.addons.karpenter.enabled:
        for kpool in cfg.addons.karpenter.node_pools:
            capacity: Capacity = kpool.capacity_types[0]  # spot first when spot is allowed
            instance_type, node_price = priced(kpool.instance_types, capacity, min)
            on_demand = node_price if capacity == "on-demand" else price(instance_type, "on-demand")
            nodes_max = kpool.max_gpus // kpool.gpus_per_node
            pools.append(PoolCost(kpool.name, "karpenter", capacity, instance_type, 0, nodes_max, node_price, on_demand))
    return CostEstimate(cfg.region, pools, list(dict.fromkeys(warnings)))
