"""`python -m stacks fit`: will a model fit a GPU, before anything is deployed.

The same memory model the preview check uses, for any catalog model or any `config.json`.
"""

from __future__ import annotations

import argparse
import json

from components.catalog.gpus import gpu_models
from components.catalog.models import catalog_names
from components.planner.architectures import ArchitectureError, ModelArchitecture, architecture_from_file, catalog_architecture
from components.planner.memory import TP_SIZES, FitError, MemoryEstimate, ServingShape, estimate, smallest_fit
from components.planner.weight_formats import FP8_KV_DTYPES, WeightFormatError
from components.vllm.flags import VLLM_VERSION
from components.vllm.memory_profiles import memory_profile, version_key

from .cli_types import finite_number, whole_number


class FitInputError(ValueError):
    """A bad `fit` flag, said in one line."""


def add_fit_parser(sub: argparse._SubParsersAction) -> None:
    fit = sub.add_parser("fit", help="will a model fit its GPUs: weights, activations, KV-cache tokens, max concurrency")
    what = fit.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", metavar="HF_ID", help=f"a catalog model ({len(catalog_names())} listed; --model list shows them)")
    what.add_argument("--architecture", metavar="CONFIG_JSON", help="a model's config.json (or its directory)")
    gpu = fit.add_mutually_exclusive_group(required=True)
    gpu.add_argument("--gpu", metavar="NAME", help=f"GPU type: {', '.join(gpu_models())}")
    gpu.add_argument("--gpu-memory-gib", type=finite_number, metavar="N", help="GPU memory as CUDA reports it, GiB")
    fit.add_argument("--tp", type=whole_number, default=1, metavar="N", help="tensor-parallel size (GPUs per replica)")
    fit.add_argument("--gpu-memory-utilization", type=finite_number, default=0.90, metavar="F")
    fit.add_argument("--max-model-len", type=whole_number, metavar="N", help="default: the model's own maximum")
    fit.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"])
    fit.add_argument("--quantization", metavar="Q", help="--quantization as vLLM takes it (default: the checkpoint's)")
    fit.add_argument("--kv-cache-dtype", default="auto", choices=["auto", "bfloat16", *FP8_KV_DTYPES])
    fit.add_argument("--max-num-seqs", type=whole_number, metavar="N", help="default: the release's for this GPU (it sizes the profiled sampler batch)")
    fit.add_argument("--max-num-batched-tokens", type=whole_number, metavar="N", help="default: the release's for this GPU (it sizes the profiled forward pass)")
    fit.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs (and no graph memory set aside)")
    fit.add_argument(
        "--sampler", default="auto", choices=["auto", "flashinfer", "torch"],
        help="the sampler vLLM profiles with: auto = what the release's vllm/vllm-openai image uses (VLLM_USE_FLASHINFER_SAMPLER)",
    )
    fit.add_argument("--vllm-version", default=VLLM_VERSION, metavar="V")
    fit.add_argument("--json", action="store_true", help="machine-readable output")


def run_fit(args: argparse.Namespace) -> tuple[MemoryEstimate, ModelArchitecture, dict | None]:
    arch = _architecture(args)
    if args.gpu is not None and args.gpu not in gpu_models():
        raise FitInputError(f"--gpu {args.gpu!r}: not a known GPU type ({', '.join(gpu_models())})")
    gpu_gib = gpu_models()[args.gpu].cuda_total_gib if args.gpu else args.gpu_memory_gib
    if not gpu_gib or gpu_gib <= 0:
        raise FitInputError("--gpu-memory-gib: must be a positive number of GiB")
    if args.tp not in TP_SIZES:
        raise FitInputError(f"--tp {args.tp}: must be one of {', '.join(map(str, TP_SIZES))} (GPUs of one node)")
    if not 0 < args.gpu_memory_utilization <= 1:
        raise FitInputError(f"--gpu-memory-utilization {args.gpu_memory_utilization}: must be in (0, 1]")
    for flag, value in (("--max-model-len", args.max_model_len), ("--max-num-seqs", args.max_num_seqs), ("--max-num-batched-tokens", args.max_num_batched_tokens)):
        if value is not None and value < 1:
            raise FitInputError(f"{flag} {value}: must be positive")
    if args.max_num_seqs and args.max_num_batched_tokens and args.max_num_batched_tokens < args.max_num_seqs:
        # vLLM's SchedulerConfig refuses it at start-up: a step must hold one token of every sequence.
        raise FitInputError(f"--max-num-batched-tokens {args.max_num_batched_tokens}: must be ≥ --max-num-seqs ({args.max_num_seqs}), or vLLM refuses to start")
    try:
        version_key(args.vllm_version)
        memory_profile(args.vllm_version)
    except ValueError as err:
        raise FitInputError(f"--vllm-version {args.vllm_version!r}: {err}") from None
    try:
        shape = ServingShape(
            gpu_memory_gib=gpu_gib,
            gpu_name=args.gpu,
            tensor_parallel=args.tp,
            gpu_memory_utilization=args.gpu_memory_utilization,
            max_model_len=args.max_model_len,
            dtype=args.dtype,
            quantization=args.quantization,
            kv_cache_dtype=args.kv_cache_dtype,
            vllm_version=args.vllm_version,
            max_num_seqs=args.max_num_seqs,
            max_num_batched_tokens=args.max_num_batched_tokens,
            enforce_eager=args.enforce_eager,
            flashinfer_sampler=None if args.sampler == "auto" else args.sampler == "flashinfer",
        )
        result = estimate(arch, shape)
        nearest = None if result.fits else smallest_fit(arch, shape, {k: g.cuda_total_gib for k, g in gpu_models().items()})
        return result, arch, nearest
    except (FitError, WeightFormatError, ValueError) as err:
        raise FitInputError(str(err)) from None


def _architecture(args: argparse.Namespace) -> ModelArchitecture:
    try:
        if args.architecture:
            return architecture_from_file(args.architecture)
        if args.model == "list":
            raise FitInputError("catalog models: " + ", ".join(catalog_names()))
        arch = catalog_architecture(args.model)
    except ArchitectureError as err:
        raise FitInputError(str(err)) from None
    if arch is None:
        raise FitInputError(f"--model {args.model!r}: not in the catalog; pass its config.json with --architecture")
    return arch


def _verdict_line(result: MemoryEstimate) -> str:
    if result.fits:
        return f"  {result.reason[0].upper() + result.reason[1:]}"
    if not result.refused:
        return f"  MAY NOT FIT: {result.reason}; the band's optimistic end holds one request, so preview warns and goes on"
    return f"  DOES NOT FIT: {result.reason}, even at the band's optimistic end ({result.kv_cache_gib_high:.2f} GiB): preview refuses it"


def render_fit(result: MemoryEstimate, arch: ModelArchitecture, nearest: dict | None, as_json: bool) -> str:
    if as_json:
        return json.dumps({**result.as_dict(), "smallest_fit": nearest, "model": arch.name, "architecture_source": arch.source}, indent=2)
    tp = result.tensor_parallel
    lines = [
        f"{arch.name}: {arch.total_params / 1e9:.1f}B parameters, {result.weight_format}, TP {tp}",
        f"  per GPU         budget {result.budget_gib:6.2f} GiB",
        f"    weights              {result.weights_gib:6.2f} GiB",
        f"    activation peak      {result.activation_gib:6.2f} GiB  ({result.max_num_batched_tokens} tokens, {result.max_num_seqs} sequences)",
        f"    non-torch            {result.non_torch_gib:6.2f} GiB",
        f"    CUDA graphs          {result.cuda_graph_gib:6.2f} GiB",
        f"    KV cache             {result.kv_cache_gib:6.2f} GiB",
        f"  per replica     KV cache {result.kv_cache_tokens:,} tokens; {result.max_concurrency:.2f} requests of {result.max_model_len:,} tokens at once",
        f"  band            {result.kv_cache_tokens_low:,} to {result.kv_cache_tokens_high:,} tokens "
        f"({result.kv_cache_gib_low:.2f} to {result.kv_cache_gib_high:.2f} GiB per GPU: each term's spread on real start-up logs)",
        _verdict_line(result),
        f"  (vLLM memory profile {result.profile_since}; architecture from {arch.source})",
    ]
    if nearest:
        tp, gpu = nearest["gpus_per_replica"], nearest["gpu_type"]
        lines.insert(-1, f"  smallest fit: {f'--tp {tp}' if tp else 'no TP up to 8'} on this GPU; "
                         f"{f'--gpu {gpu}' if gpu else 'no listed GPU'} at TP {result.tensor_parallel}")
    return "\n".join(lines)
