"""Which scale-out assumptions apply to a model of a stack: the pools that can add a node for it,
its cloud's GPU stack, and the read rate of its weights volume. The arithmetic is the planner's
(`planner/scale_out.py`)."""

from __future__ import annotations

import math

from ..catalog.scale_out import Sourced, assumptions, fast_image_pull, gpu_stack, loader_read, node_launch, storage_read
from ..planner.scale_out import IN_POD_PHASES, ScaleOutBudget, ScaleOutInputs, scale_out_budget
from .errors import Problem
from .images import docker_hub_repository
from .levers import FAST_IMAGE_PULL_SINCE
from .models import ModelConfig, memory_bytes
from .planning import model_fit, runai_buffer_bytes
from .stack import StackConfig
from .types import duration_seconds



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
    assert cfg.azure is not None
    return storage_read("azure-files-premium", cfg.azure.files.share_gib)


def read_rate(cfg: StackConfig, model: ModelConfig) -> Sourced:
    """One pod's read rate: the slower of its loader and the volume's per-client limit."""
    client = _storage(cfg)
    loader = loader_read(model.loader)
    if loader.value < client.value:
        return Sourced(loader.value, f"the {model.loader} loader, below the volume's {client.value:g} MiB/s per client: {loader.source}")
    return Sourced(client.value, f"the volume's per-client limit, below the {model.loader} loader's {loader.value:g} MiB/s: {client.source}")


def pulls_fast(cfg: StackConfig, model: ModelConfig) -> bool:
    """The model's image takes the cloud's fast path: on GKE only through the mirror, so only when
    it is a Docker Hub image (a model's own registry is pulled as it is)."""
    return cfg.cloud != "gcp" or docker_hub_repository(model.image) is not None


def model_scale_out(cfg: StackConfig, model: ModelConfig) -> ScaleOutBudget | None:
    """The model's scale-out budget; None when the planner cannot size its weights (fitCheck off)."""
    fit = model_fit(model)
    if fit is None:
        return None
    cold = _cold_node(cfg, model)
    return scale_out_budget(
        ScaleOutInputs(
            scrape_seconds=model.metrics_seconds,
            from_zero=model.scaling.scale_to_zero,
            polling_seconds=duration_seconds(model.scaling.polling_interval),
            node_launch=cold[0] if cold else None,
            gpu_stack=cold[1] if cold else None,
            weights_gib=fit.weights_gib * model.gpus_per_replica,
            weights_mib_per_second=read_rate(cfg, model),
            tensor_parallel=model.gpus_per_replica,
            compile_cached=cfg.scale_out.compile_cache,
            warm_headroom=model.headroom_slots,
            fast_pull=fast_image_pull(cfg.cloud) if cfg.scale_out.fast_image_pull and pulls_fast(cfg, model) else None,
        )
    )


# Quantization methods that bring their own weight loader: vLLM picks it, and the Run:ai streamer
# cannot stand in for it.
OWN_LOADER_QUANTIZATION = frozenset({"gguf", "bitsandbytes"})


# Besides the vLLM image, a system node holds its OS and the controllers' images; kubelet starts
# removing images at 85 % of the disk (imageGCHighThresholdPercent), so the total must stay below.
SYSTEM_NODE_OTHER_GB = 20
IMAGE_GC_HIGH_THRESHOLD = 0.85


def system_disk_needed_gib() -> int:
    """The system pool's root volume that holds the vLLM image (compressed and unpacked) with the rest."""
    data = assumptions()
    needed_gb = (data.image_gb.value + data.image_unpacked_gb.value + SYSTEM_NODE_OTHER_GB) / IMAGE_GC_HIGH_THRESHOLD
    return math.ceil(needed_gb * 1e9 / 2**30)


def lever_problems(cfg: StackConfig) -> list[Problem]:
    """A lever the stack's nodes cannot honour."""
    problems: list[Problem] = []
    if any(not m.is_local_path for m in cfg.models) and cfg.system_pool.disk_size_gib < system_disk_needed_gib():
        problems.append(
            (("systemPool", "diskSizeGib"), f"{cfg.system_pool.disk_size_gib} GiB cannot hold the vLLM image the weight download Jobs run "
             f"({assumptions().image_gb.value:g} GB compressed, about {assumptions().image_unpacked_gb.value:g} GB unpacked) beside the "
             f"controllers' images below kubelet's image-GC threshold: at least {system_disk_needed_gib()} GiB")
        )
    karpenter = cfg.addons.karpenter
    if cfg.cloud == "aws" and cfg.scale_out.fast_image_pull and karpenter.enabled:
        pinned = karpenter.ami_alias.partition("@v")[2]
        if pinned and pinned < FAST_IMAGE_PULL_SINCE:
            problems.append((("addons", "karpenter", "amiAlias"), f"{karpenter.ami_alias} predates SOCI parallel pull (AL2023 v{FAST_IMAGE_PULL_SINCE}), "
                             "which scaleOut.fastImagePull turns on: pin a newer AMI or set scaleOut.fastImagePull: false"))
    return problems


def loader_problems(model: ModelConfig) -> list[Problem]:
    """A Run:ai streamer the model cannot use, or whose CPU buffers its pod cannot hold."""
    if model.loader != "runai-streamer":
        return []
    key = ("weightLoader",) if model.weight_loader else ()
    if model.quantization in OWN_LOADER_QUANTIZATION:
        where = key or ("quantization",)
        return [(where, f"--quantization {model.quantization} loads its own weight format, which the Run:ai streamer cannot read: set weightLoader: safetensors")]
    buffers = runai_buffer_bytes(model) * model.gpus_per_replica
    if buffers > memory_bytes(model.memory) // 2:
        return [(("resources", "memory"), f"{model.memory} cannot hold the Run:ai streamer's CPU buffers ({model.gpus_per_replica} x "
                 f"{runai_buffer_bytes(model) / 2**30:.0f} GiB, at most half the pod's memory) beside vLLM: raise it, or set weightLoader: safetensors")]
    return []


# Probes and deadlines allow twice the budget: the figures are typical values, and a slower volume,
# a cold page cache or a busy registry must not turn a slow start into a crash loop.
MARGIN = 2.0
MIN_LOAD_SECONDS = 5 * 60


def _whole_minutes(seconds: float) -> int:
    return int(math.ceil(seconds / 60) * 60)


def derive_model_timing(cfg: StackConfig) -> list[Problem]:
    """Give each model its startup window and rollout deadline from its budget, and refuse a
    loadTimeout shorter than what the budget says the pod needs."""
    problems: list[Problem] = lever_problems(cfg)
    for i, model in enumerate(cfg.models):
        model._compile_cache = cfg.scale_out.compile_cache
        model._stack_headroom = cfg.scale_out.warm_headroom
        model._stack_weight_loader = cfg.scale_out.weight_loader
        model._metrics_seconds = duration_seconds(cfg.scale_out.metrics_interval)
        problems += [(("models", i, *key), message) for key, message in loader_problems(model)]
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
        if model.scaling.scale_to_zero:
            problems += [(("models", i, "scaling", key), message) for key, message in _scale_to_zero_problems(model, budget)]
    return problems


def _scale_to_zero_problems(model: ModelConfig, budget: ScaleOutBudget) -> list[tuple[str, str]]:
    """From zero a replica takes the cold budget to serve. A KEDA cooldown or an HPA window shorter
    than that lets the model be taken down (to zero, or one replica fewer) while the replica the
    last burst asked for is still starting: a GPU node paid for, and the next request waits again."""
    start = budget.cold_seconds if budget.cold_seconds is not None else budget.warm_seconds
    problems = []
    for key, value, what in (
        ("idleBeforeScaleToZero", model.scaling.idle_before_scale_to_zero, "KEDA's cooldown"),
        ("scaleDownStabilization", model.scaling.scale_down_stabilization, "the HPA's scale-down window"),
    ):
        if duration_seconds(value) < start:
            problems.append((key, f"{value} ({what}) is shorter than this model's start from zero in the scale-out budget, {start} s: "
                                  f"it could scale away a replica before it serves; at least {_whole_minutes(start) // 60}m"))
    return problems
