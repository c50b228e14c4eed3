"""Bytes per stored parameter for each weight format vLLM loads, and which one a replica will use.

Quantized checkpoints shrink only the projections inside the decoder layers (and, for MoE-only
schemes such as mxfp4, only the routed experts); embeddings, the LM head, norms and routers stay
at the activation dtype. The per-parameter sizes include the scales and zero points each scheme
stores beside the packed values, e.g. AWQ 4-bit with group 128 keeps one fp16 scale and one 4-bit
zero per 128 weights: 0.5 + (2 + 0.5)/128 bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ACTIVATION_BYTES = {"bfloat16": 2, "float16": 2, "half": 2, "float32": 4, "float": 4}
FP8_KV_DTYPES = ("fp8", "fp8_e4m3", "fp8_e5m2")

# --quantization values vLLM maps onto the same storage (its marlin/machete kernels only change
# how the packed weights are multiplied, not how many bytes they take).
_METHOD_FAMILY = {
    "awq": "awq",
    "awq_marlin": "awq",
    "gptq": "gptq",
    "gptq_marlin": "gptq",
    "gptq_marlin_24": "gptq",
    "fp8": "fp8",
    "fbgemm_fp8": "fp8",
    "ptpc_fp8": "fp8",
    "compressed-tensors": "compressed-tensors",
    "bitsandbytes": "bitsandbytes",
    "mxfp4": "mxfp4",
    "modelopt": "modelopt",
    "modelopt_fp4": "nvfp4",
    "nvfp4": "nvfp4",
    "moe_wna16": "wna16",
}


class WeightFormatError(ValueError):
    """A quantization the planner does not know the storage of."""


@dataclass(frozen=True)
class WeightFormat:
    name: str  # e.g. "bf16", "fp8", "awq-int4-g128", "mxfp4 experts"
    linear_bytes: float  # attention and dense-MLP projections inside the decoder layers
    expert_bytes: float  # routed experts of MoE layers
    dense_bytes: int  # embeddings, LM head, norms, routers: the activation dtype


def known_methods() -> list[str]:
    return sorted(_METHOD_FAMILY)


def activation_dtype(dtype: str, checkpoint_dtype: str) -> str:
    """vLLM's `--dtype auto`: the checkpoint's dtype, but float32 checkpoints run in bfloat16."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if checkpoint_dtype in ("float32", "float") else checkpoint_dtype


def kv_cache_bytes(kv_cache_dtype: str, act_dtype: str) -> int:
    if kv_cache_dtype in FP8_KV_DTYPES:
        return 1
    if kv_cache_dtype in ("auto", "", None):
        return ACTIVATION_BYTES.get(act_dtype, 2)
    return ACTIVATION_BYTES.get(kv_cache_dtype, 2)


def weight_format(
    quantization: str | None, checkpoint_quant: dict[str, Any] | None, act_dtype: str, hidden: int = 0
) -> WeightFormat:
    """The storage a replica will load: `--quantization` when given, else the checkpoint's own
    `quantization_config`, else unquantized at the activation dtype. A 16-bit checkpoint served
    with `--quantization fp8` is quantized on load (one byte per projection weight)."""
    dense = ACTIVATION_BYTES.get(act_dtype, 2)
    method = (quantization or (checkpoint_quant or {}).get("quant_method") or "").lower()
    if not method:
        return WeightFormat(_short(act_dtype), dense, dense, dense)
    family = _METHOD_FAMILY.get(method)
    if family is None:
        raise WeightFormatError(f"quantization {method!r} is not modelled (known: {', '.join(known_methods())})")
    cq = checkpoint_quant or {}
    if family == "fp8":
        return WeightFormat("fp8", 1.0 + _fp8_scale_bytes(cq), 1.0 + _fp8_scale_bytes(cq), dense)
    if family in ("awq", "gptq", "wna16"):
        bits, group = int(cq.get("bits", cq.get("w_bit", 4))), int(cq.get("group_size", cq.get("q_group_size", 128)) or 128)
        per = _int_packed(bits, group, zero_points=family == "awq" or not cq.get("sym", True))
        return WeightFormat(f"{family}-int{bits}-g{group}", per, per, dense)
    if family == "bitsandbytes":
        if cq.get("load_in_8bit"):
            return WeightFormat("bnb-int8", 1.0, 1.0, dense)
        double = bool(cq.get("bnb_4bit_use_double_quant", False))
        per = 0.5 + (1 / 64 + 4 / (64 * 256) if double else 4 / 64)  # absmax per 64 weights
        return WeightFormat("bnb-nf4", per, per, dense)
    if family == "mxfp4":
        # e8m0 scale per 32 weights; vLLM pads the experts' hidden dimension to a multiple of 256
        # for its MoE kernels (gpt-oss: 2880 -> 3072), and the padding is allocated.
        pad = math.ceil(hidden / 256) * 256 / hidden if hidden else 1.0
        return WeightFormat("mxfp4 experts", dense, (0.5 + 1 / 32) * pad, dense)
    if family == "nvfp4" or (family == "modelopt" and "FP4" in str(cq.get("quant_algo", "")).upper()):
        return WeightFormat("nvfp4", 0.5 + 1 / 16, 0.5 + 1 / 16, dense)  # fp8 scale per 16
    if family == "modelopt":
        return WeightFormat("fp8", 1.0, 1.0, dense)
    return _compressed_tensors(cq, dense)


def _short(act_dtype: str) -> str:
    return {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}.get(act_dtype, act_dtype)


def _int_packed(bits: int, group: int, zero_points: bool) -> float:
    scales = 2 / group  # one fp16 scale per group
    zeros = bits / 8 / group if zero_points else 0.0
    return bits / 8 + scales + zeros


def _fp8_scale_bytes(cq: dict[str, Any]) -> float:
    block = cq.get("weight_block_size")
    return 4 / (int(block[0]) * int(block[1])) if block else 0.0


def _compressed_tensors(cq: dict[str, Any], dense: int) -> WeightFormat:
    """compressed-tensors (llm-compressor): W8A8 int8/fp8, W4A16 packed int4, NVFP4, per config group."""
    groups = cq.get("config_groups") or {}
    weights = next((g.get("weights") for g in groups.values() if g.get("weights")), None) if groups else None
    if not weights:
        raise WeightFormatError("compressed-tensors checkpoint without config_groups[*].weights; pass --quantization explicitly")
    bits = int(weights.get("num_bits", 8))
    kind = str(weights.get("type", "int"))
    group = int(weights.get("group_size") or 0)
    fmt = str(cq.get("format", ""))
    if (bits == 4 and kind == "float") or "nvfp4" in fmt:
        return WeightFormat("nvfp4", 0.5 + 1 / 16, 0.5 + 1 / 16, dense)
    if bits >= 8:
        return WeightFormat(f"w8-{kind}{bits}", 1.0, 1.0, dense)
    per = _int_packed(bits, group or 128, zero_points=not weights.get("symmetric", True))
    return WeightFormat(f"w{bits}a16-g{group or 'channel'}", per, per, dense)
