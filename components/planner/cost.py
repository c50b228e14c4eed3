"""What a stack costs per hour and per month, at its minimum and at its maximum scale.

Priced per node from the dated table (`catalog/prices.py`), pool by pool:
- managed on-demand node groups launch their instance types in list order: the first is priced;
- managed spot node groups may launch any listed type: the dearest is priced (a ceiling);
- Karpenter NodePools launch the cheapest type that fits: the cheapest listed is priced. At
  minimum they have no nodes; at maximum, `maxGpus / gpusPerNode` nodes. A spot-first pool is
  priced at spot; the spot saving column says what it would cost more if spot ran short.

GPU nodes dominate; storage, NAT, load balancers and the control-plane fee are not included (they
are listed per cloud in the output), so the figure is the compute bill, not the whole bill.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..catalog.prices import Capacity, hourly_price, price_table

HOURS_PER_MONTH = 730  # AWS's and Google's convention for monthly estimates
NOT_INCLUDED = {
    "aws": ("EKS control plane", "EBS volumes", "EFS storage and throughput", "NAT gateways and data transfer"),
    "gcp": ("GKE cluster management fee", "boot and persistent disks", "Filestore instances", "Cloud NAT and data transfer"),
    "azure": ("AKS Standard tier fee", "OS and managed disks", "Azure Files shares", "load balancer and data transfer"),
}
# What the table prices: the printed header names it.
PRICE_SOURCE = {"aws": "EC2", "gcp": "Compute Engine", "azure": "Azure VM"}


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
class HeadroomCost:
    """GPUs a model's placeholder pods hold idle around the clock, priced per GPU on the cheapest
    pool its replicas may use (a held slot is a slot on a node that runs for it)."""

    model: str
    gpus: int
    instance_type: str
    gpu_price: float | None  # USD/hour per GPU; None when the type has no price

    @property
    def hourly(self) -> float:
        return self.gpus * (self.gpu_price or 0.0)


@dataclass(frozen=True)
class CostEstimate:
    region: str
    pools: list[PoolCost]
    warnings: list[str] = field(default_factory=list)
    cloud: str = "aws"
    not_included: list[str] = field(default_factory=list)  # beyond the cloud's own list
    headroom: list[HeadroomCost] = field(default_factory=list)

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
            "pricesAsOf": price_table(self.cloud).as_of,
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
            # Not in atMinimum: whether a held slot needs a node of its own depends on what else runs.
            "warmHeadroom": {
                **money(sum(h.hourly for h in self.headroom)),
                "models": [
                    {"model": h.model, "gpus": h.gpus, "instanceType": h.instance_type, "gpuPricePerHour": h.gpu_price, **money(h.hourly)}
                    for h in self.headroom
                ],
            },
            "notIncluded": [*NOT_INCLUDED[self.cloud], *self.not_included],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class PoolToPrice:
    """A pool as the estimate prices it: which types it may launch, how many nodes, and which
    listed type a node is priced at (`first` launched, `dearest` as a ceiling, `cheapest` as
    Karpenter picks)."""

    pool: str
    kind: str  # system | managed | karpenter
    capacity_type: Capacity
    instance_types: tuple[str, ...]
    nodes_min: int
    nodes_max: int
    priced_as: Literal["first", "dearest", "cheapest"]


def estimate_cost(
    region: str,
    pools: list[PoolToPrice],
    overrides: dict[str, dict[str, float]],
    override_hint: Callable[[str], str] = lambda instance_type: "",
    cloud: str = "aws",
) -> CostEstimate:
    """Each pool priced from the dated table and `overrides` (instance type -> {onDemand, spot});
    a type without a price counts as 0 and is named in a warning, with `override_hint(type)`."""
    warnings: list[str] = []

    def price(instance_type: str, capacity: Capacity) -> float | None:
        value = hourly_price(region, instance_type, capacity, overrides, cloud)
        if value is None:
            hint = override_hint(instance_type)
            warnings.append(f"no {capacity} price for {instance_type} in {region}: it counts as 0 in the estimate" + (f"; {hint}" if hint else ""))
        return value

    def priced(pool: PoolToPrice) -> tuple[str, float | None]:
        if pool.priced_as == "first":
            return pool.instance_types[0], price(pool.instance_types[0], pool.capacity_type)
        known = [(t, price(t, pool.capacity_type)) for t in pool.instance_types]  # warns for each type without a price
        with_price = [(t, p) for t, p in known if p is not None]
        pick = max if pool.priced_as == "dearest" else min
        return pick(with_price, key=lambda tp: tp[1]) if with_price else (pool.instance_types[0], None)

    costs: list[PoolCost] = []
    for pool in pools:
        instance_type, node_price = priced(pool)
        on_demand = None if pool.kind == "system" else node_price if pool.capacity_type == "on-demand" else price(instance_type, "on-demand")
        costs.append(PoolCost(pool.pool, pool.kind, pool.capacity_type, instance_type, pool.nodes_min, pool.nodes_max, node_price, on_demand))
    return CostEstimate(region, costs, list(dict.fromkeys(warnings)), cloud)
