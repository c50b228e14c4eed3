"""The one place a stack's config becomes the cost estimate's priced pools (`planner/cost.py`)."""

from __future__ import annotations

from ..planner.cost import CostEstimate, HeadroomCost, PoolToPrice, estimate_cost
from .models import ModelConfig
from .stack import StackConfig


def cost_pools(cfg: StackConfig) -> list[PoolToPrice]:
    """The stack's pools as the cost estimate prices them (see `planner/cost.py` for why each is
    priced at its first, dearest or cheapest type)."""
    system = cfg.system_pool
    pools = [PoolToPrice("system", "system", "on-demand", tuple(system.instance_types), system.min_size, system.max_size, "first")]
    for pool in cfg.gpu_pools:
        priced_as = "first" if pool.capacity_type == "on-demand" else "dearest"
        pools.append(PoolToPrice(pool.name, "managed", pool.capacity_type, tuple(pool.instance_types), pool.min_size, pool.max_size, priced_as))
    if cfg.addons.karpenter.enabled:
        for kpool in cfg.addons.karpenter.node_pools:
            capacity = kpool.capacity_types[0]  # spot first when spot is allowed
            nodes_max = kpool.max_gpus // kpool.gpus_per_node
            pools.append(PoolToPrice(kpool.name, "karpenter", capacity, tuple(kpool.instance_types), 0, nodes_max, "cheapest"))
    return pools


def stack_cost(cfg: StackConfig) -> CostEstimate:
    overrides = {name: price.as_table_entry() for name, price in cfg.prices.items()}
    estimate = estimate_cost(
        cfg.region, cost_pools(cfg), overrides, lambda instance_type: f"set llm-platform:prices.{instance_type}", cfg.cloud
    )
    # Placeholder pods hold real GPUs around the clock; the pools' minimum does not count them.
    for model in cfg.models:
        if model.headroom_slots:
            estimate.headroom.append(_headroom_cost(cfg, model, estimate))
    return estimate


def _headroom_cost(cfg: StackConfig, model: ModelConfig, estimate: CostEstimate) -> HeadroomCost:
    """The model's held GPUs at the lowest per-GPU price among the pools its replicas may use."""
    shapes: dict[str, tuple[str, int, tuple[str, ...]]] = {  # pool -> (GPU type, GPUs per node, capacity types)
        pool.name: (pool.gpu_type, pool.gpus_per_node, (pool.capacity_type,)) for pool in cfg.gpu_pools
    }
    if cfg.addons.karpenter.enabled:
        shapes |= {k.name: (k.gpu_type, k.gpus_per_node, k.capacity_types) for k in cfg.addons.karpenter.node_pools}
    options = [
        (priced.node_price / shapes[priced.pool][1], priced.instance_type)
        for priced in estimate.pools
        if priced.pool in shapes
        and shapes[priced.pool][0] == model.gpu_type
        and shapes[priced.pool][1] >= model.gpus_per_replica
        and (model.allows_spot or priced.capacity_type == "on-demand")
        and priced.node_price is not None
    ]
    gpus = model.headroom_slots * model.gpus_per_replica
    if not options:
        return HeadroomCost(model.name, gpus, "-", None)
    price, instance_type = min(options)
    return HeadroomCost(model.name, gpus, instance_type, round(price, 4))
