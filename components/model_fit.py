"""A configured model service through the memory model: does it fit, what does it hold, and what
`--max-num-seqs` to give it when the stack does not say.

Used by the config check (a model that cannot start fails `pulumi preview` with the numbers and a
fix), by the `vllm serve` arguments and by the stack outputs. Models outside the architecture
catalog (local paths, unlisted ids) are not checked: the catalog is the planner's source of facts,
and `python -m stacks fit --architecture config.json` covers the rest by hand.
"""

from __future__ import annotations

from functools import cache

from .gpu_catalog import gpu_models
from .memory_model import MemoryEstimate, ServingShape, estimate, smallest_fit
from .model_architecture import ModelArchitecture, catalog_architecture
from .model_config import ModelConfig
from .vllm_flags import VLLM_VERSION

# Derived --max-num-seqs: room for every admitted sequence to reach a quarter of max-model-len
# before vLLM must preempt, in steps of 8, never above vLLM's own default for the GPU.
AVERAGE_CONTEXT_SHARE = 4
SEQS_STEP = 8


def _shape(model: ModelConfig, gpu_type: str, tp: int) -> ServingShape:
    return ServingShape(
        gpu_memory_gib=gpu_models()[gpu_type].cuda_total_gib,
        gpu_name=gpu_type,
        tensor_parallel=tp,
        gpu_memory_utilization=model.gpu_memory_utilization,
        max_model_len=model.max_model_len,
        dtype=model.dtype,
        quantization=model.quantization,
        kv_cache_dtype=model.kv_cache_dtype,
        vllm_version=VLLM_VERSION,
        max_num_seqs=model.max_num_seqs,
    )


@cache
def _estimate(arch_name: str, shape: ServingShape) -> MemoryEstimate:
    return estimate(_architecture(arch_name), shape)


@cache
def _architecture(name: str) -> ModelArchitecture:
    arch = catalog_architecture(name)
    assert arch is not None
    return arch


def model_fit(model: ModelConfig) -> MemoryEstimate | None:
    """The planner's estimate for one replica of this model, or None outside the catalog."""
    if model.is_local_path or catalog_architecture(model.model) is None:
        return None
    return _estimate(model.model, _shape(model, model.gpu_type, model.gpus_per_replica))


def max_num_seqs(model: ModelConfig) -> int | None:
    """The stack's value, else one derived from the predicted KV cache (None: leave vLLM's)."""
    if model.max_num_seqs is not None:
        return model.max_num_seqs
    fit = model_fit(model)
    if fit is None or not fit.fits:
        return None
    room = int(fit.max_concurrency * AVERAGE_CONTEXT_SHARE) // SEQS_STEP * SEQS_STEP
    return max(SEQS_STEP, min(room, fit.max_num_seqs))


def fit_problem(model: ModelConfig) -> str | None:
    """Why the model cannot start on its GPUs, with the numbers and the nearest shape that fits."""
    fit = model_fit(model)
    if fit is None or fit.fits:
        return None
    numbers = (
        f"per GPU of {model.gpus_per_replica}x {model.gpu_type} ({fit.budget_gib:.1f} GiB at gpu-memory-utilization "
        f"{model.gpu_memory_utilization}): weights {fit.weights_gib:.1f} GiB, activations {fit.activation_gib:.1f} GiB, "
        f"CUDA graphs {fit.cuda_graph_gib:.1f} GiB, KV cache {fit.kv_cache_gib:.1f} GiB"
    )
    return f"{model.model} does not fit: {fit.reason}; {numbers}; fix: {_nearest_fit(model)}"


def _nearest_fit(model: ModelConfig) -> str:
    shape = _shape(model, model.gpu_type, model.gpus_per_replica)
    gpus = {key: g.cuda_total_gib for key, g in gpu_models().items()}
    nearest = smallest_fit(_architecture(model.model), shape, gpus)
    options = []
    if nearest["gpus_per_replica"]:
        options.append(f"gpusPerReplica: {nearest['gpus_per_replica']} on {model.gpu_type}")
    if nearest["gpu_type"]:
        options.append(f"gpuType: {nearest['gpu_type']} at {model.gpus_per_replica} GPUs")
    if model.kv_cache_dtype == "auto":
        options.append("kvCacheDtype: fp8")
    options.append("a smaller maxModelLen")
    return " or ".join(options)
