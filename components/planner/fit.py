"""What the planner concludes from an estimate: the `--max-num-seqs` to give vLLM when the stack
does not say (from the expected KV cache), and, for a replica that cannot start, why
(`memory.smallest_fit` finds what would): refused when even the optimistic end of the
uncertainty band cannot hold one request, a doubt (a preview warning) when only the expected
value cannot.

Pure: a `MemoryEstimate` and plain values in, numbers and sentences out. The config side
(`config/planning.py`) turns a model's config into the planner's `ServingShape`.
"""

from __future__ import annotations

from .memory import MemoryEstimate, ServingShape

# Derived --max-num-seqs: room for every admitted sequence to reach a quarter of max-model-len
# before vLLM must preempt, in steps of 8, never above vLLM's own default for the GPU.
AVERAGE_CONTEXT_SHARE = 4
SEQS_STEP = 8


def derived_max_num_seqs(fit: MemoryEstimate) -> int | None:
    """The concurrency the predicted KV cache supports (None: it does not fit; leave vLLM's)."""
    if not fit.fits:
        return None
    room = int(fit.max_concurrency * AVERAGE_CONTEXT_SHARE) // SEQS_STEP * SEQS_STEP
    return max(SEQS_STEP, min(room, fit.max_num_seqs))


def fit_failure(model: str, shape: ServingShape, fit: MemoryEstimate, unmodelled_note: str | None) -> str:
    """Why a replica of `model` in `shape` cannot start even at the optimistic end of the
    planner's band, with the numbers per GPU."""
    return f"{model} does not fit: {fit.reason}, and at most {fit.kv_cache_gib_high:.2f} GiB at the optimistic end of the planner's band; {_numbers(shape, fit, unmodelled_note)}"


def fit_doubt(model: str, shape: ServingShape, fit: MemoryEstimate, unmodelled_note: str | None) -> str:
    """Why a replica of `model` is expected not to start although the band's optimistic end says it
    might: preview warns and goes on, since the planner is not sure enough to refuse."""
    return (
        f"{model} may not fit: {fit.reason}; the optimistic end of the planner's band "
        f"({fit.kv_cache_gib_high:.2f} GiB per GPU, {fit.band}) holds one request, so preview goes on: "
        f"read the KV cache size in the first replica's start-up log; {_numbers(shape, fit, unmodelled_note)}"
    )


def _numbers(shape: ServingShape, fit: MemoryEstimate, unmodelled_note: str | None) -> str:
    numbers = (
        f"per GPU of {shape.tensor_parallel}x {shape.gpu_name} ({fit.budget_gib:.1f} GiB at gpu-memory-utilization "
        f"{shape.gpu_memory_utilization}): weights {fit.weights_gib:.1f} GiB, activations {fit.activation_gib:.1f} GiB, "
        f"CUDA graphs {fit.cuda_graph_gib:.1f} GiB, KV cache {fit.kv_cache_gib:.1f} GiB"
    )
    left_out = f"; the prediction leaves out {unmodelled_note}" if unmodelled_note else ""
    return f"{numbers}{left_out}"
