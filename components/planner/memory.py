"""Will a model fit its GPUs, and how many tokens of KV cache will each replica have?

vLLM sizes the KV cache at start-up, per GPU (tensor-parallel rank):

    budget   = CUDA total memory × --gpu-memory-utilization
    kv cache = budget − weights − activation peak − non-torch growth − CUDA-graph pool

then cuts it into blocks of `block_size` tokens across all attention layers, and refuses to start
when one request of `--max-model-len` tokens does not fit. This module follows the same steps:
weights from the architecture and weight format, the version-dependent terms from the release's
memory profile, the block arithmetic exactly as vLLM's KV-cache manager does it. Teams then learn
at `pulumi preview` what they would otherwise learn from `CUDA out of memory` after the nodes are
paid for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from ..vllm.flags import VLLM_VERSION
from ..vllm.memory_profiles import MemoryProfile, memory_profile
from .architectures import ModelArchitecture
from .weight_formats import WeightFormat, activation_dtype, kv_cache_bytes, weight_format

GIB = 1 << 30
TP_SIZES = (1, 2, 4, 8)


@dataclass(frozen=True)
class ServingShape:
    """What one replica is asked to do, in vLLM's own terms."""

    gpu_memory_gib: float  # CUDA-visible total per GPU
    tensor_parallel: int = 1
    gpu_memory_utilization: float = 0.90
    max_model_len: int | None = None  # None: the model's own maximum
    dtype: str = "auto"
    quantization: str | None = None
    kv_cache_dtype: str = "auto"
    vllm_version: str = VLLM_VERSION
    gpu_name: str | None = None  # decides vLLM's default batch sizes (A100s stay in the small tier)
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enforce_eager: bool = False
    expert_parallel: int = 1  # EP group size: experts are split over it instead of over TP
    cpu_offload_gib: float = 0.0  # --cpu-offload-gb: weights per GPU kept in host memory
    kv_cache_memory_gib: float | None = None  # --kv-cache-memory-bytes: replaces the gmu budget
    engine: str | None = None  # "v0" only to replay logs of releases that still offered it
    flashinfer_sampler: bool | None = None  # None: what the release's official image does


@dataclass(frozen=True)
class MemoryEstimate:
    """Per GPU (one tensor-parallel rank) unless named per replica."""

    weights_gib: float
    activation_gib: float
    non_torch_gib: float
    cuda_graph_gib: float
    budget_gib: float
    kv_cache_gib: float
    kv_cache_tokens: int  # per replica: what vLLM logs as "GPU KV cache size"
    max_concurrency: float  # requests of max_model_len at once: "Maximum concurrency for N tokens"
    max_model_len: int
    weight_format: str
    tensor_parallel: int
    max_num_batched_tokens: int
    max_num_seqs: int
    fits: bool  # the expected value holds one max-model-len request (preview warns when not)
    reason: str
    profile_since: str
    # The uncertainty band, per GPU / per replica like the expected figures: the budget less every
    # term raised (low) or lowered (high) by the spread the fixture shows for it.
    kv_cache_gib_low: float = 0.0
    kv_cache_gib_high: float = 0.0
    kv_cache_tokens_low: int = 0
    kv_cache_tokens_high: int = 0
    refused: bool = False  # even the optimistic bound cannot hold one request: preview fails

    @property
    def band(self) -> str:
        return f"{self.kv_cache_tokens_low:,} to {self.kv_cache_tokens_high:,} tokens of KV cache per replica (expected {self.kv_cache_tokens:,})"

    def as_dict(self) -> dict[str, Any]:
        """The `fit --json` contract: issue-named keys first, all GiB per GPU, rounded for reading."""
        return {
            "weights_gib": round(self.weights_gib, 2),
            "activation_gib": round(self.activation_gib, 2),
            "non_torch_gib": round(self.non_torch_gib, 2),
            "kv_cache_gib": round(self.kv_cache_gib, 2),
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_concurrency": round(self.max_concurrency, 2),
            "fits": self.fits,
            "reason": self.reason,
            "kv_cache_tokens_low": self.kv_cache_tokens_low,
            "kv_cache_tokens_high": self.kv_cache_tokens_high,
            "refused": self.refused,
            "cuda_graph_gib": round(self.cuda_graph_gib, 2),
            "budget_gib": round(self.budget_gib, 2),
            "kv_cache_gib_low": round(self.kv_cache_gib_low, 2),
            "kv_cache_gib_high": round(self.kv_cache_gib_high, 2),
            "per_replica": {
                "gpus": self.tensor_parallel,
                "weights_gib": round(self.weights_gib * self.tensor_parallel, 2),
                "kv_cache_gib": round(max(self.kv_cache_gib, 0.0) * self.tensor_parallel, 2),
            },
            "max_model_len": self.max_model_len,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "max_num_seqs": self.max_num_seqs,
            "weight_format": self.weight_format,
            "vllm_memory_profile": self.profile_since,
        }


class FitError(ValueError):
    """The inputs cannot describe a real replica (e.g. TP that does not divide the heads)."""


def estimate(arch: ModelArchitecture, shape: ServingShape) -> MemoryEstimate:
    tp = shape.tensor_parallel
    if arch.heads % tp:
        raise FitError(f"{arch.name}: {arch.heads} attention heads are not divisible by tensor-parallel size {tp}")
    profile = memory_profile(shape.vllm_version, shape.engine)
    act = activation_dtype(shape.dtype, arch.torch_dtype)
    fmt = weight_format(shape.quantization, arch.quantization_config, act, arch.hidden)
    max_len = shape.max_model_len or arch.max_position_embeddings
    batched, max_seqs = batch_sizes(shape, profile, max_len)

    weights = max(0.0, weight_bytes_per_rank(arch, fmt, tp, shape.expert_parallel) / GIB - shape.cpu_offload_gib)
    flashinfer = profile.flashinfer_sampler if shape.flashinfer_sampler is None else shape.flashinfer_sampler
    activation = activation_gib(arch, profile, tp, batched, max_seqs, fmt.dense_bytes, flashinfer)
    optimistic_activation = activation
    pcie = shape.gpu_name in profile.pcie_only_gpus
    per_doubling = profile.non_torch_per_doubling_pcie_gib if pcie else profile.non_torch_per_doubling_gib
    non_torch = profile.non_torch_gib + profile.non_torch_per_extra_rank_gib * (tp - 1) + per_doubling * math.log2(tp)
    graphs = cuda_graph_gib(arch, profile) if profile.cuda_graph_subtracted and not shape.enforce_eager else 0.0
    used = weights + activation + non_torch + graphs
    band = profile.band
    w_spread, other = band.weights("mxfp4" in fmt.name, arch.vision_params > 0), band.other_gib(tp)
    used_low = weights * (1 - w_spread) + optimistic_activation * (1 - band.activation) + non_torch + graphs * max(0.0, 1 - band.cuda_graph) - other
    used_high = weights * (1 + w_spread) + activation * (1 + band.activation) + non_torch + graphs * (1 + band.cuda_graph) + other
    if shape.kv_cache_memory_gib is None:
        budget = shape.gpu_memory_gib * shape.gpu_memory_utilization
    else:  # vLLM reserves exactly this and skips the budget: it fits only if the GPU holds it all
        budget = shape.gpu_memory_gib

    def kv_left(spent: float) -> float:
        return budget - spent if shape.kv_cache_memory_gib is None else min(shape.kv_cache_memory_gib, budget - spent)

    kv_gib, kv_high, kv_low = kv_left(used), kv_left(max(used_low, 0.0)), kv_left(used_high)
    cache = kv_cache_layout(arch, tp, kv_cache_bytes(shape.kv_cache_dtype, act), profile, batched)
    tokens, concurrency = cache.capacity(kv_gib * GIB, max_len)
    fits, reason = _verdict(kv_gib, cache, max_len, concurrency)
    optimistic_fits = _verdict(kv_high, cache, max_len, 0.0)[0]
    if shape.kv_cache_memory_gib is not None and shape.kv_cache_memory_gib > budget - used:
        if fits:
            fits, reason = False, (
                f"--kv-cache-memory-bytes asks for {shape.kv_cache_memory_gib:.2f} GiB per GPU, but only "
                f"{budget - used:.2f} GiB of the GPU's {budget:.2f} GiB is left after weights, activations and CUDA graphs"
            )
        optimistic_fits = optimistic_fits and shape.kv_cache_memory_gib <= budget - max(used_low, 0.0)
    return MemoryEstimate(
        weights_gib=weights,
        activation_gib=activation,
        non_torch_gib=non_torch,
        cuda_graph_gib=graphs,
        budget_gib=budget,
        kv_cache_gib=kv_gib,
        kv_cache_tokens=tokens,
        max_concurrency=concurrency,
        max_model_len=max_len,
        weight_format=fmt.name,
        tensor_parallel=tp,
        max_num_batched_tokens=batched,
        max_num_seqs=max_seqs,
        fits=fits,
        reason=reason,
        profile_since=profile.since,
        kv_cache_gib_low=kv_low,
        kv_cache_gib_high=kv_high,
        kv_cache_tokens_low=cache.capacity(kv_low * GIB, max_len)[0],
        kv_cache_tokens_high=cache.capacity(kv_high * GIB, max_len)[0],
        refused=not optimistic_fits,
    )


def batch_sizes(shape: ServingShape, profile: MemoryProfile, max_len: int) -> tuple[int, int]:
    """(max-num-batched-tokens, max-num-seqs) as vLLM resolves them: the stack's values, else the
    release's defaults for the GPU, tokens capped at seqs × max-model-len (V0 without chunked
    prefill: at least max-model-len), seqs capped at tokens."""
    batch = profile.batch_defaults(shape.gpu_memory_gib, shape.gpu_name)
    max_seqs = shape.max_num_seqs or batch.max_num_seqs
    chunked = profile.chunked_prefill or max_len > profile.chunked_prefill_above_len
    batched = shape.max_num_batched_tokens or (
        min(batch.max_num_batched_tokens, max_seqs * max_len) if chunked else max(batch.max_num_batched_tokens, max_len)
    )
    return batched, min(max_seqs, batched)


def smallest_fit(arch: ModelArchitecture, shape: ServingShape, gpus: dict[str, float]) -> dict[str, Any]:
    """When a shape does not fit: the fewest GPUs of this size that do, and the smallest GPU
    (name -> CUDA GiB) that does at this tensor-parallel size; None where nothing does."""
    tp = next(
        (t for t in TP_SIZES if t > shape.tensor_parallel and arch.heads % t == 0 and estimate(arch, replace(shape, tensor_parallel=t)).fits),
        None,
    )
    gpu = next(
        (
            name
            for name, gib in sorted(gpus.items(), key=lambda item: item[1])
            if gib > shape.gpu_memory_gib and estimate(arch, replace(shape, gpu_memory_gib=gib, gpu_name=name)).fits
        ),
        None,
    )
    return {"gpus_per_replica": tp, "gpu_type": gpu}


def weight_bytes_per_rank(arch: ModelArchitecture, fmt: WeightFormat, tp: int, ep: int = 1) -> float:
    """Tensor parallelism splits every projection, the experts and the (vocab-parallel) embedding
    and LM head; only norms and routers are copied on each rank. With expert parallelism the
    experts are split over the EP group instead."""
    sharded = (
        (arch.embedding_params + arch.lm_head_params + arch.vision_params) * fmt.dense_bytes
        + arch.decoder_linear_params * fmt.linear_bytes
    )
    experts = arch.expert_params * fmt.expert_bytes / (ep if ep > 1 else tp)
    return sharded / tp + experts + arch.small_params * fmt.dense_bytes


# vLLM's non-FlashInfer sampler takes its Triton top-k/top-p kernel from this many rows (0.17+).
TRITON_SAMPLER_MIN_ROWS = 8


def activation_gib(
    arch: ModelArchitecture, profile: MemoryProfile, tp: int, batched: int, max_seqs: int, act_bytes: int, flashinfer: bool
) -> float:
    """The profile run's transient peak: the larger of the forward pass over `batched` tokens
    (hidden states and the widest MLP / expert intermediate on this rank) and the dummy sampler
    over `max_seqs` rows of full-vocabulary fp32 logits. The sampler usually dominates: sorting
    for top-k/top-p in torch (up to 0.16) keeps values, int64 indices and sort buffers per logit,
    which FlashInfer's sort-free kernels and, from 0.17, vLLM's Triton kernel do not."""
    k = profile.forward_bytes_per_token
    mlp = arch.intermediate / tp
    experts = (arch.moe.experts_per_token * arch.moe.expert_intermediate / tp) if arch.moe else 0.0
    forward = batched * act_bytes * (k["hidden"] * arch.hidden + k["mlp"] * mlp + k["experts"] * experts)
    per_logit = profile.sampler_bytes_per_logit_flashinfer if flashinfer else profile.sampler_bytes_per_logit
    sampler = max_seqs * arch.vocab * per_logit
    if not flashinfer and profile.sampler_buffer_rows and max_seqs >= TRITON_SAMPLER_MIN_ROWS:
        sampler += min(max_seqs, profile.sampler_buffer_rows) * arch.vocab * 4  # the Triton kernel's fp32 rows
    return max(forward, sampler) / GIB + profile.activation_floor_gib


def cuda_graph_gib(arch: ModelArchitecture, profile: MemoryProfile) -> float:
    return profile.cuda_graph_gib + profile.cuda_graph_per_layer_gib * arch.layers


@dataclass(frozen=True)
class KvCacheLayout:
    """How vLLM's KV-cache manager cuts memory into blocks for this model on one rank.

    Layers are grouped so that every group has the same number of layers (`group_size`); one
    block id then addresses one page in each layer of a group. Full-attention groups need
    ceil(len / block) blocks per request, sliding-window groups only the window plus the tokens
    in flight, plus one block.
    """

    block_size: int
    page_bytes: int  # one block of one layer
    group_size: int
    full_groups: int
    sliding_groups: int
    window: int
    inflight_tokens: int
    null_block: bool
    tokens_from_concurrency: bool

    @property
    def groups(self) -> int:
        return self.full_groups + self.sliding_groups

    @property
    def bytes_per_block(self) -> int:
        return self.page_bytes * self.group_size

    def blocks(self, kv_bytes: float) -> int:
        return max(int(kv_bytes // self.bytes_per_block), 0)

    def blocks_per_request(self, max_len: int) -> int:
        full = math.ceil(max_len / self.block_size) * self.full_groups
        sliding = 0
        if self.sliding_groups:
            span = min(self.window - 1 + self.inflight_tokens, max_len)
            sliding = (math.ceil(span / self.block_size) + 1) * self.sliding_groups
        return full + sliding

    def capacity(self, kv_bytes: float, max_len: int) -> tuple[int, float]:
        """(tokens vLLM reports as "GPU KV cache size", max concurrency at max_len)."""
        blocks = self.blocks(kv_bytes)
        concurrency = blocks / self.blocks_per_request(max_len)
        if self.tokens_from_concurrency:
            return int(concurrency * max_len), concurrency
        return blocks // self.groups * self.block_size, concurrency

    def bytes_for_one_request(self, max_len: int) -> int:
        return (self.blocks_per_request(max_len) + (1 if self.null_block else 0)) * self.bytes_per_block

    def longest_fitting_len(self, kv_bytes: float) -> int:
        """The largest max-model-len one request could still have (vLLM's own suggestion)."""
        lo, hi = 0, 1 << 24
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.bytes_for_one_request(mid) <= kv_bytes:
                lo = mid
            else:
                hi = mid - 1
        return lo


def kv_cache_layout(arch: ModelArchitecture, tp: int, kv_bytes: int, profile: MemoryProfile, batched: int) -> KvCacheLayout:
    if arch.mla:
        # The compressed latent is the same on every rank (not split by TP).
        per_layer_token = (arch.mla.kv_lora_rank + arch.mla.qk_rope_head_dim) * kv_bytes
    else:
        kv_heads = max(1, arch.kv_heads // tp)  # fewer KV heads than ranks: heads are replicated
        per_layer_token = 2 * kv_heads * arch.head_dim * kv_bytes
    sliding = arch.sliding_layers
    full = arch.layers - sliding
    windows = [w for w in arch.layer_windows if w is not None]
    if sliding and full:
        group = min(sliding, full)
        full_groups, sliding_groups = math.ceil(full / group), math.ceil(sliding / group)
    elif sliding:
        group, full_groups, sliding_groups = sliding, 0, 1
    else:
        group, full_groups, sliding_groups = full, 1, 0
    return KvCacheLayout(
        block_size=profile.block_size,
        page_bytes=profile.block_size * per_layer_token,
        group_size=group,
        full_groups=full_groups,
        sliding_groups=sliding_groups,
        window=max(windows) if windows else 0,
        inflight_tokens=profile.sliding_inflight_batches * batched,
        null_block=profile.null_block,
        tokens_from_concurrency=profile.tokens_from_concurrency,
    )


def _verdict(kv_gib: float, cache: KvCacheLayout, max_len: int, concurrency: float) -> tuple[bool, str]:
    if kv_gib <= 0:
        return False, f"no memory left for the KV cache ({kv_gib:.2f} GiB per GPU after weights, activations and CUDA graphs)"
    need = cache.bytes_for_one_request(max_len)
    if need > kv_gib * GIB:
        longest = cache.longest_fitting_len(kv_gib * GIB)
        return False, (
            f"one request of max-model-len {max_len} needs {need / GIB:.2f} GiB of KV cache per GPU, "
            f"only {kv_gib:.2f} GiB is left (the longest that fits is about {longest})"
        )
    return True, f"fits: {concurrency:.1f} requests of {max_len} tokens at once"
