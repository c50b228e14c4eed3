"""vLLM's start-up memory rules, keyed by version (`data/vllm_memory.yaml`).

What vLLM reserves before the KV cache changed between releases: the V1 engine replaced V0's
profiling, and since 0.21 the CUDA-graph pool is measured and subtracted before the KV cache is
sized. So the terms that differ by release (activation peak per token, sampler working set,
non-torch growth per extra rank, CUDA-graph pool, default batch sizes) are data with their
evidence, and the planner picks the profile whose `since` is the newest at or below the version.
Each profile in the data file states only what changed since the one before; the rest is inherited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

_DATA = Path(__file__).parent / "data" / "vllm_memory.yaml"


@dataclass(frozen=True)
class BatchDefaults:
    max_num_batched_tokens: int
    max_num_seqs: int


@dataclass(frozen=True)
class BatchTier:
    """`vllm serve` defaults for GPUs of at least `min_gib` (EngineArgs' batch defaults by device)."""

    min_gib: float
    excluded: tuple[str, ...]  # GPU names kept in a lower tier whatever their size (A100)
    defaults: BatchDefaults


@dataclass(frozen=True)
class KvBand:
    """How far each predicted term may stray from what vLLM logs (the fixture's spread): relative
    for weights (by checkpoint kind), activation peak and CUDA-graph pool; GiB per GPU for what no
    term explains, which only shows with more than one rank (NCCL and Ray buffers)."""

    weights_text: float
    weights_mxfp4: float
    weights_vision: float
    activation: float
    cuda_graph: float
    other_gib_tp1: float
    other_gib_multi_rank: float

    def weights(self, mxfp4: bool, vision: bool) -> float:
        return max(self.weights_text, self.weights_mxfp4 if mxfp4 else 0.0, self.weights_vision if vision else 0.0)

    def other_gib(self, tensor_parallel: int) -> float:
        return self.other_gib_tp1 if tensor_parallel == 1 else self.other_gib_multi_rank


@dataclass(frozen=True)
class MemoryProfile:
    since: str
    engine: str
    block_size: int
    chunked_prefill: bool  # without it (V0) the profile batch is at least max-model-len tokens
    chunked_prefill_above_len: int  # V0: longer max-model-len turns chunked prefill on anyway
    batch_tiers: tuple[BatchTier, ...]  # biggest first; the last has min_gib 0
    forward_bytes_per_token: dict[str, float]  # multipliers of activation bytes per token: hidden, mlp, experts
    sampler_bytes_per_logit: float  # the dummy sampler run over its rows × vocab logits without FlashInfer (torch sort; Triton from 0.17)
    sampler_buffer_rows: int  # the Triton top-k/top-p kernel's fp32 buffer: at most this many vocab-wide rows (0: none)
    sampler_bytes_per_logit_flashinfer: float  # the same with FlashInfer's sort-free top-k/top-p kernels
    flashinfer_sampler: bool  # whether the release's usual install (the official image) samples with FlashInfer
    activation_floor_gib: float
    non_torch_gib: float
    non_torch_per_extra_rank_gib: float
    non_torch_per_doubling_gib: float  # NCCL's buffers grow with log2(TP) on NVLink (0.11+ logs), not per rank
    pcie_only_gpus: frozenset[str]  # GPUs without NVLink: they grow by non_torch_per_doubling_pcie_gib instead
    non_torch_per_doubling_pcie_gib: float
    cuda_graph_subtracted: bool
    cuda_graph_gib: float
    cuda_graph_per_layer_gib: float
    sliding_inflight_batches: int  # batches in flight a sliding-window layer must hold beside its window
    null_block: bool  # one block reserved, so a request needs one more than its own
    tokens_from_concurrency: bool  # "GPU KV cache size" = max concurrency x max-model-len (else blocks // groups x block)
    band: KvBand
    evidence: str

    def batch_defaults(self, gpu_memory_gib: float, gpu_name: str | None) -> BatchDefaults:
        name = (gpu_name or "").lower()
        for tier in self.batch_tiers:
            if gpu_memory_gib >= tier.min_gib and not any(x in name for x in tier.excluded):
                return tier.defaults
        return self.batch_tiers[-1].defaults


def version_key(version: str) -> tuple[int, ...]:
    """'0.10.1.1' -> (0, 10, 1, 1); dev/rc suffixes are dropped ('0.29.1rc1.dev17+g…' -> (0, 29, 1))."""
    parts = []
    for piece in version.split("+", 1)[0].split("."):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
        if match.group() != piece:
            break
    if not parts:
        raise ValueError(f"vLLM version {version!r} is not a release number such as 0.33.0")
    return tuple(parts)


@cache
def _profiles() -> tuple[MemoryProfile, ...]:
    raw = yaml.safe_load(_DATA.read_text())
    out = []
    inherited: dict = {}
    for changes in raw["profiles"]:
        p = inherited = _merged(inherited, changes)
        out.append(
            MemoryProfile(
                since=str(p["since"]),
                engine=p["engine"],
                block_size=int(p["blockSize"]),
                chunked_prefill=bool(p["chunkedPrefill"]),
                chunked_prefill_above_len=int(p["chunkedPrefillAboveLen"]),
                batch_tiers=tuple(_tier(t) for t in p["batchDefaults"]),
                forward_bytes_per_token={k: float(v) for k, v in p["activation"]["forwardPerToken"].items()},
                sampler_bytes_per_logit=float(p["activation"]["samplerBytesPerLogit"]["torch"]),
                sampler_bytes_per_logit_flashinfer=float(p["activation"]["samplerBytesPerLogit"]["flashinfer"]),
                sampler_buffer_rows=int(p["activation"].get("samplerBufferRows", 0)),
                flashinfer_sampler=bool(p["activation"]["flashinferSampler"]),
                activation_floor_gib=float(p["activation"]["floorGib"]),
                non_torch_gib=float(p["nonTorch"]["baseGib"]),
                non_torch_per_extra_rank_gib=float(p["nonTorch"]["perExtraRankGib"]),
                non_torch_per_doubling_gib=float(p["nonTorch"].get("perDoublingGib", 0.0)),
                pcie_only_gpus=frozenset(p["nonTorch"].get("pcieOnlyGpus", ())),
                non_torch_per_doubling_pcie_gib=float(p["nonTorch"].get("perDoublingPcieGib", 0.0)),
                cuda_graph_subtracted=bool(p["cudaGraph"]["subtracted"]),
                cuda_graph_gib=float(p["cudaGraph"]["baseGib"]),
                cuda_graph_per_layer_gib=float(p["cudaGraph"]["perLayerGib"]),
                sliding_inflight_batches=int(p["kvCache"]["slidingInflightBatches"]),
                null_block=bool(p["kvCache"]["nullBlock"]),
                tokens_from_concurrency=bool(p["kvCache"]["tokensFromConcurrency"]),
                band=KvBand(
                    weights_text=float(p["band"]["weights"]["text"]),
                    weights_mxfp4=float(p["band"]["weights"]["mxfp4"]),
                    weights_vision=float(p["band"]["weights"]["vision"]),
                    activation=float(p["band"]["activation"]),
                    cuda_graph=float(p["band"]["cudaGraph"]),
                    other_gib_tp1=float(p["band"]["otherGib"]["tp1"]),
                    other_gib_multi_rank=float(p["band"]["otherGib"]["multiRank"]),
                ),
                evidence=str(p["evidence"]),
            )
        )
    return tuple(sorted(out, key=lambda prof: version_key(prof.since)))


def _merged(base: dict, changes: dict) -> dict:
    """`changes` over `base`, nested mappings merged key by key (lists are replaced whole)."""
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def _tier(raw: dict) -> BatchTier:
    return BatchTier(
        min_gib=float(raw.get("minGib", 0)),
        excluded=tuple(str(x).lower() for x in raw.get("except", [])),
        defaults=BatchDefaults(max_num_batched_tokens=int(raw["maxNumBatchedTokens"]), max_num_seqs=int(raw["maxNumSeqs"])),
    )


def memory_profile(version: str, engine: str | None = None) -> MemoryProfile:
    """The newest profile at or below `version`; `engine` picks V0 in the releases that still
    offered it beside V1 (VLLM_USE_V1=0, up to 0.10)."""
    key = version_key(version)
    profiles = _profiles()
    chosen = [p for p in profiles if version_key(p.since) <= key and (engine is None or p.engine == engine)]
    if not chosen:
        raise ValueError(f"vLLM {version} is older than the oldest modelled release ({profiles[0].since})")
    return chosen[-1]
