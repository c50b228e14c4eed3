"""Which scale-out assumptions apply to a model of a stack: the pools that can add a node for it,
its cloud's GPU stack, and the read rate of its weights volume. The arithmetic is the planner's
(`planner/scale_out.py`)."""

from __future__ import annotations

import math

from ..catalog.scale_out import Sourced, assumptions, gpu_stack, node_launch, storage_read
from ..planner.scale_out import IN_POD_PHASES, ScaleOutBudget, ScaleOutInputs, scale_out_budget
from .errors import Problem
from .models import ModelConfig
from .planning import model_fit
from .stack import StackConfig
from .types import duration_seconds

VLLM_SCRAPE_SECONDS = 15  # the model's ServiceMonitor interval (serving.signals)


def _cold_node(cfg: StackConfig, model: ModelConfig) -> tuple[Sourced, Sourced] | None:
    """(node launch, GPU stack) of the first pool that can add a node for this model, or None."""
    spot_ok = model.capacity != "on-demand"
    if cfg.cloud == "aws":
        if not cfg.addons.karpenter.enabled:
            return None
        for pool in cfg.addons.karpenter.node_pools:
            if pool.gpu_type == model.gpu_type and ("on-demand" in pool.capacity_types or spot_ok):
                return node_launch("aws", "karpenter", pool.instance_types[0]), gpu_stack("gpuOperator")
        return None
    for pool in cfg.gpu_pools:
        grows = pool.max_size > pool.min_size
        if pool.gpu_type == model.gpu_type and grows and (pool.capacity_type == "on-demand" or spot_ok):
            stack = gpu_stack("gkeManaged" if cfg.cloud == "gcp" else "gpuOperator")
            return node_launch(cfg.cloud, "autoscaler", pool.instance_types[0]), stack
    return None


def _storage(cfg: StackConfig) -> Sourced:
    if cfg.cloud == "aws":
        return storage_read(f"efs-{cfg.addons.efs_csi.throughput_mode}")
    if cfg.cloud == "gcp":
        assert cfg.gcp is not None
        return storage_read(f"filestore-{cfg.gcp.filestore.tier}", cfg.gcp.filestore.capacity_gib)
    return storage_read("azure-files-premium")


def read_rate(cfg: StackConfig, model: ModelConfig) -> Sourced:
    """One pod's read rate: the volume's per-client limit, or what its ranks' loaders can take."""
    client = _storage(cfg)
    loader = assumptions().loader_gib_per_second
    loaders = loader.value * 1024 * model.gpus_per_replica
    if loaders < client.value:
        return Sourced(loaders, f"{model.gpus_per_replica} rank(s) x {loader.value:g} GiB/s, below the volume's limit: {loader.source}")
    return client


def model_scale_out(cfg: StackConfig, model: ModelConfig) -> ScaleOutBudget | None:
    """The model's scale-out budget; None when the planner cannot size its weights (fitCheck off)."""
    fit = model_fit(model)
    if fit is None:
        return None
    cold = _cold_node(cfg, model)
    return scale_out_budget(
        ScaleOutInputs(
            scrape_seconds=VLLM_SCRAPE_SECONDS,
            from_zero=model.scaling.scale_to_zero,
            polling_seconds=duration_seconds(model.scaling.polling_interval),
            node_launch=cold[0] if cold else None,
            gpu_stack=cold[1] if cold else None,
            weights_gib=fit.weights_gib * model.gpus_per_replica,
            weights_mib_per_second=read_rate(cfg, model),
            tensor_parallel=model.gpus_per_replica,
            compile_cached=cfg.scale_out.compile_cache,
            warm_headroom=model.headroom_slots,
        )
    )


# Probes and deadlines allow twice the budget: the figures are typical values, and a slower volume,
# a cold page cache or a busy registry must not turn a slow start into a crash loop.
MARGIN = 2.0
MIN_LOAD_SECONDS = 5 * 60


def _whole_minutes(seconds: float) -> int:
    return int(math.ceil(seconds / 60) * 60)


def derive_model_timing(cfg: StackConfig) -> list[Problem]:
    """Give each model its startup window and rollout deadline from its budget, and refuse a
    loadTimeout shorter than what the budget says the pod needs."""
    problems: list[Problem] = []
    for i, model in enumerate(cfg.models):
        model._compile_cache = cfg.scale_out.compile_cache
        model._stack_headroom = cfg.scale_out.warm_headroom
        budget = model_scale_out(cfg, model)
        if budget is None:
            continue
        in_pod = budget.in_pod_cold_seconds
        before = sum(p.cold_seconds or 0 for p in budget.phases if p.phase not in IN_POD_PHASES and p.phase != "reaction")
        model._derived_load_seconds = max(MIN_LOAD_SECONDS, _whole_minutes(in_pod * MARGIN))
        model._derived_before_start_seconds = _whole_minutes(before * MARGIN)
        if model.load_timeout is not None and duration_seconds(model.load_timeout) < in_pod:
            parts = ", ".join(f"{p.phase} {p.cold_seconds} s" for p in budget.phases if p.phase in IN_POD_PHASES)
            problems.append(
                (("models", i, "loadTimeout"), f"{model.load_timeout} is shorter than this replica's start in the scale-out budget, {in_pod} s ({parts}): "
                 f"the startup probe would kill every new replica; leave it unset (then {model._derived_load_seconds // 60}m) or raise it")
            )
    return problems
