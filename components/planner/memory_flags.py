"""What a model's `extraArgs` change in the memory a replica needs.

The capacity planner sizes a replica from typed config, but a few accepted vLLM flags move the
same numbers: a larger `--max-num-batched-tokens` raises the activation peak, `--enforce-eager`
drops the CUDA-graph pool, `--cpu-offload-gb` moves weights off the GPU, `--kv-cache-memory-bytes`
replaces the gpu-memory-utilization budget. Those are read here and given to the planner, so the
preview check judges the command line vLLM will actually get.

Other flags change memory in ways the planner does not model (a draft model, LoRA slots, a
rewritten architecture). They are named with the reason, so the stack output and the preview
error say what the prediction leaves out instead of pretending to be exact; `fitCheck: false`
turns the check off for a model whose flags make the prediction meaningless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..vllm.flags import canonical_flag
from .memory import GIB

# Flags that change GPU memory in ways the planner does not count, and what they change.
UNMODELLED_MEMORY_FLAGS: dict[str, str] = {
    "--speculative-config": "a draft model or MTP head and its KV cache are not counted",
    "--enable-lora": "LoRA adapter slots (max-loras x max-lora-rank) are not counted",
    "--num-gpu-blocks-override": "the KV block count is fixed instead of sized from memory",
    "--hf-overrides": "it may change the architecture the planner read",
    "--quantization-config": "it may change the weight format the planner assumed",
    "--language-model-only": "the vision encoder the planner counts is not loaded",
    "--kv-cache-dtype-skip-layers": "some layers keep a full-precision KV cache",
    "--disable-sliding-window": "sliding-window layers get a full-length KV cache",
    "--decode-context-parallel-size": "the KV cache is split across ranks",
    "--block-size": "the planner rounds to vLLM's default block size",
    "--compilation-config": "the CUDA-graph pool depends on the capture settings",
    "--cudagraph-capture-sizes": "the CUDA-graph pool depends on the capture sizes",
    "--max-cudagraph-capture-size": "the CUDA-graph pool depends on the capture sizes",
    "--optimization-level": "the CUDA-graph pool depends on the optimization level",
    "--limit-mm-per-prompt": "the multimodal encoder's profiling peak is not modelled",
    "--mm-processor-cache-gb": "the multimodal encoder's profiling peak is not modelled",
    "--skip-mm-profiling": "the multimodal encoder's profiling peak is not modelled",
}


@dataclass(frozen=True)
class MemoryFlags:
    """The memory-relevant part of a model's extraArgs, in the planner's terms."""

    max_num_batched_tokens: int | None = None
    enforce_eager: bool = False
    expert_parallel: bool = False
    cpu_offload_gib: float = 0.0
    kv_cache_memory_gib: float | None = None
    unmodelled: tuple[str, ...] = ()

    def unmodelled_note(self) -> str:
        return "; ".join(f"{flag}: {UNMODELLED_MEMORY_FLAGS[flag]}" for flag in self.unmodelled)


def memory_flags(args: list[str]) -> tuple[MemoryFlags, list[tuple[int, str]]]:
    """The flags read from `args`, and (index, why) for each memory flag whose value vLLM would reject."""
    numbers: dict[str, float] = {}
    switches: set[str] = set()
    unmodelled: list[str] = []
    problems: list[tuple[int, str]] = []
    for i, token in enumerate(args):
        flag = canonical_flag(token)
        if flag is None:
            continue
        inline = token.split("=", 1)[1] if "=" in token and token.startswith("--") else None
        following = args[i + 1] if i + 1 < len(args) and canonical_flag(args[i + 1]) is None else None
        value = inline if inline is not None else following
        if flag in ("--enforce-eager", "--enable-expert-parallel"):
            switches.add(flag)  # vLLM's boolean flags take no value
        elif flag in _EXPECTED:
            number = _number(flag, value)
            if number is None:
                problems.append((i, f"{flag} needs {_EXPECTED[flag]}, got {value!r}"))
            else:
                numbers[flag] = number
        elif flag in UNMODELLED_MEMORY_FLAGS and flag not in unmodelled:
            unmodelled.append(flag)
    batched = numbers.get("--max-num-batched-tokens")
    kv_bytes = numbers.get("--kv-cache-memory-bytes")
    flags = MemoryFlags(
        max_num_batched_tokens=None if batched is None else int(batched),
        enforce_eager="--enforce-eager" in switches,
        expert_parallel="--enable-expert-parallel" in switches,
        cpu_offload_gib=numbers.get("--cpu-offload-gb", 0.0),
        kv_cache_memory_gib=None if kv_bytes is None else kv_bytes / GIB,
        unmodelled=tuple(unmodelled),
    )
    return flags, problems


_EXPECTED = {
    "--max-num-batched-tokens": "a positive whole number of tokens (1k = 1000, 1K = 1024)",
    "--cpu-offload-gb": "a number of GiB (0 or more)",
    "--kv-cache-memory-bytes": "a whole number of bytes (8G = 8 GiB, 8g = 8e9)",
}
# vLLM's `human_readable_int`: a lowercase suffix is decimal, an uppercase one binary (whole numbers only).
_HUMAN_INT = re.compile(r"(\d+(?:\.\d+)?)([kKmMgGtT])")
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _number(flag: str, value: str | None) -> float | None:
    if value is None:
        return None
    if flag == "--cpu-offload-gb":
        try:
            gib = float(value)
        except ValueError:
            return None
        return gib if gib >= 0 else None
    number = _human_readable_int(value.strip())
    return float(number) if number is not None and number > 0 else None


def _human_readable_int(value: str) -> int | None:
    match = _HUMAN_INT.fullmatch(value)
    if match:
        number, suffix = match.groups()
        if suffix in _DECIMAL:
            return int(float(number) * _DECIMAL[suffix])
        return int(number) * _BINARY[suffix] if number.isdigit() else None
    return int(value) if value.isdigit() else None

