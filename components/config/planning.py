"""A configured model through the capacity planner: the one place a `ModelConfig` becomes the
planner's `ServingShape` (and a stack's pools the cost estimate's), and the planner's answers
phrased in config keys: does it fit, what does it hold, what `--max-num-seqs` to give it.

Used by the config check (a model that cannot start fails `pulumi preview` with the numbers and a
fix), by the `vllm serve` arguments and by the stack outputs. Every model is checked: the
architecture comes from the planner's catalog, or from the config.json a model names in
`architecture` (required outside the catalog, so an unlisted model cannot skip the check by
accident); `fitCheck: false` is the explicit way out for what the planner cannot model.
The shape is the command line vLLM will get, including the memory flags in `extraArgs`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ..catalog.gpus import gpu_models
from ..planner.architectures import ArchitectureError, ModelArchitecture, architecture_from_file, catalog_architecture
from ..planner.fit import derived_max_num_seqs, fit_doubt, fit_failure
from ..planner.memory import MemoryEstimate, ServingShape, estimate, smallest_fit
from ..planner.memory_flags import memory_flags
from ..vllm.flags import VLLM_VERSION
from .models import ModelConfig

# `architecture` paths are relative to the project (the directory holding Pulumi.yaml).
PROJECT_DIR = Path(__file__).resolve().parents[2]


def serving_shape(model: ModelConfig) -> ServingShape:
    """One replica of this model as the planner sees it: the command line vLLM will get."""
    flags = memory_flags(model.extra_args)[0]
    tp = model.gpus_per_replica
    return ServingShape(
        gpu_memory_gib=gpu_models()[model.gpu_type].cuda_total_gib,
        gpu_name=model.gpu_type,
        tensor_parallel=tp,
        gpu_memory_utilization=model.gpu_memory_utilization,
        max_model_len=model.max_model_len,
        dtype=model.dtype,
        quantization=model.quantization,
        kv_cache_dtype=model.kv_cache_dtype,
        vllm_version=VLLM_VERSION,
        max_num_seqs=model.max_num_seqs,
        max_num_batched_tokens=flags.max_num_batched_tokens,
        enforce_eager=flags.enforce_eager,
        expert_parallel=tp if flags.expert_parallel else 1,
        cpu_offload_gib=flags.cpu_offload_gib,
        kv_cache_memory_gib=flags.kv_cache_memory_gib,
    )


@cache
def _architecture_file(path: Path) -> ModelArchitecture:
    return architecture_from_file(path)


def model_architecture(model: ModelConfig) -> ModelArchitecture | None:
    """The architecture the planner sizes this model from (None: no source; raises ArchitectureError
    for an unreadable or unmodellable `architecture` file)."""
    if model.architecture:
        return _architecture_file(PROJECT_DIR / model.architecture)
    return None if model.is_local_path else catalog_architecture(model.model)


def architecture_problem(model: ModelConfig) -> str | None:
    """Why the planner has nothing to check this model with, or None."""
    if not model.fit_check:
        return None
    try:
        arch = model_architecture(model)
    except ArchitectureError as err:
        return f"{err}; fix the file, or set fitCheck: false to deploy {model.name} without the memory check"
    if arch is None:
        return (
            f"{model.model} is not in the capacity planner's catalog (components/catalog/data/model_architectures.yaml): "
            f"set architecture to its config.json, a path in the project such as models/{model.name}/config.json, "
            "so preview can check it fits its GPUs (or fitCheck: false to deploy it unchecked)"
        )
    return None


@cache
def _estimate(arch: ModelArchitecture, shape: ServingShape) -> MemoryEstimate:
    return estimate(arch, shape)


def model_fit(model: ModelConfig) -> MemoryEstimate | None:
    """The planner's estimate for one replica of this model; None when unchecked or without a source."""
    if not model.fit_check or architecture_problem(model):
        return None
    arch = model_architecture(model)
    assert arch is not None
    return _estimate(arch, serving_shape(model))


def unmodelled_flags(model: ModelConfig) -> tuple[str, ...]:
    """extraArgs whose memory effect the prediction leaves out."""
    return memory_flags(model.extra_args)[0].unmodelled


def max_num_seqs(model: ModelConfig) -> int | None:
    """The stack's value, else one derived from the predicted KV cache (None: leave vLLM's)."""
    if model.max_num_seqs is not None:
        return model.max_num_seqs
    fit = model_fit(model)
    return None if fit is None else derived_max_num_seqs(fit)


def fit_problem(model: ModelConfig) -> str | None:
    """Why the model cannot start on its GPUs even at the optimistic end of the planner's band,
    with the numbers and the nearest shape that fits (a config error)."""
    fit = model_fit(model)
    if fit is None or not fit.refused:
        return None
    flags = memory_flags(model.extra_args)[0]
    failure = fit_failure(model.model, serving_shape(model), fit, flags.unmodelled_note() if flags.unmodelled else None)
    return f"{failure}; fix: {_nearest_fit(model)}"


def fit_warning(model: ModelConfig) -> str | None:
    """Why the model is expected not to start although the band's optimistic end holds one request
    (a preview warning: the planner is not sure enough to refuse a model that may start)."""
    fit = model_fit(model)
    if fit is None or fit.fits or fit.refused:
        return None
    flags = memory_flags(model.extra_args)[0]
    doubt = fit_doubt(model.model, serving_shape(model), fit, flags.unmodelled_note() if flags.unmodelled else None)
    return f"{doubt}; to be sure: {_nearest_fit(model)}"


def fit_key(model: ModelConfig) -> str:
    """The key a fit problem or warning is reported at."""
    return "maxModelLen" if model.max_model_len else "gpusPerReplica"


def _nearest_fit(model: ModelConfig) -> str:
    gpus = {key: g.cuda_total_gib for key, g in gpu_models().items()}
    arch = model_architecture(model)
    assert arch is not None
    nearest = smallest_fit(arch, serving_shape(model), gpus)
    options = []
    if nearest["gpus_per_replica"]:
        options.append(f"gpusPerReplica: {nearest['gpus_per_replica']} on {model.gpu_type}")
    if nearest["gpu_type"]:
        options.append(f"gpuType: {nearest['gpu_type']} at {model.gpus_per_replica} GPUs")
    if model.kv_cache_dtype == "auto":
        options.append("kvCacheDtype: fp8")
    options.append("a smaller maxModelLen")
    return " or ".join(options)



# The Run:ai streamer's CPU buffer per rank: its default (40 GB on a file system) would not fit a
# 12 GiB-per-GPU pod, and it refuses a limit below the checkpoint's largest tensor
# (runai-model-streamer docs/src/usage.md, "CPU Memory Capping"). 4 GiB keeps the 16 readers busy;
# a vocabulary embedding larger than half of that raises it.
RUNAI_BUFFER_FLOOR_BYTES = 4 * 2**30


def runai_memory_limit(model: ModelConfig) -> int:
    """`memory_limit` for the Run:ai streamer: twice the largest tensor (the vocabulary embedding,
    in 16-bit) and at least the floor; 0 (the streamer's own minimum: its largest tensor) when the
    planner has no architecture to size it from."""
    try:
        arch = model_architecture(model) if model.fit_check else None
    except ArchitectureError:
        arch = None
    if arch is None:
        return 0
    largest = arch.vocab * arch.hidden * 2
    return max(RUNAI_BUFFER_FLOOR_BYTES, -(-2 * largest // 2**30) * 2**30)


def runai_buffer_bytes(model: ModelConfig) -> int:
    """What the streamer's buffer takes from the pod's memory, per rank (the floor when unsized)."""
    return runai_memory_limit(model) or RUNAI_BUFFER_FLOOR_BYTES
