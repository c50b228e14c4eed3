"""vLLM's command line, as the pinned version accepts it, and the policy for who sets which flag.

vLLM 0.33 exits at start-up on a flag it does not know (`unrecognized arguments`), and guides are
full of flags that older releases took (`--swap-space`, `--num-scheduler-steps`). On a GPU node
that means a pod that crash-loops after a ten-minute image pull and a paid-for node, so a model's
`extraArgs` are checked here, at config time, and each flag lands in one of four groups:

- set by the platform from typed config (`--tensor-parallel-size` comes from `gpusPerReplica`, so
  it always equals the pod's GPU limit): passing it again is an error naming the key to use;
- ruled out because it breaks how the platform runs vLLM (one replica per pod, metrics always on,
  weights read from the shared volume, no secrets in argv);
- removed from vLLM: an error naming the replacement;
- accepted: the flags below, a reviewed subset of the 0.33.0 parser.

Anything else is an error too. This is a table we own, not a copy of vLLM's parser: the tests
check every flag here against the flag list taken from the released 0.33.0 wheel
(`../shared/upstream/vllm/vllm-cli-flags.txt`), so a typo here or a vLLM bump that drops a flag
fails CI. A flag vLLM has but this table lacks is added here, with that test to guard it.
"""

from __future__ import annotations

import re

from ..catalog.images import catalog_image

VLLM_VERSION = "0.33.0"
VLLM_IMAGE = catalog_image("vllm").reference  # vllm/vllm-openai:v<VLLM_VERSION>, by digest once resolved

# Set by VllmModelService from ModelConfig; the value names the config key that sets it.
PLATFORM_FLAGS: dict[str, str] = {
    "--model": "model",
    "--served-model-name": "servedModelName",
    "--revision": "revision (the weights are downloaded at that revision)",
    "--tensor-parallel-size": "gpusPerReplica",
    "--max-model-len": "maxModelLen",
    "--gpu-memory-utilization": "gpuMemoryUtilization",
    "--device-memory-utilization": "gpuMemoryUtilization",
    "--max-num-seqs": "maxNumSeqs",
    "--dtype": "dtype",
    "--quantization": "quantization",
    "--kv-cache-dtype": "kvCacheDtype",
    "--enable-prefix-caching": "prefixCaching",
    "--disable-prefix-caching": "prefixCaching",
    "--no-enable-prefix-caching": "prefixCaching",
    "--host": "(the platform listens on all interfaces)",
    "--port": "(the platform's Service port)",
    "--shutdown-timeout": "drainSeconds",
    "--download-dir": "(weights come from the shared volume)",
    "--load-format": "weightLoader",
    "--model-loader-extra-config": "weightLoader (the Run:ai streamer's concurrency and buffer are set from the model)",
}

# Accepted by vLLM 0.33.0 but incompatible with how the platform runs it; the value says why.
RULED_OUT_FLAGS: dict[str, str] = {
    "--hf-token": "a secret in the pod spec; set llm-platform:hfToken with --secret (the download Job uses it)",
    "--api-key": "a secret on the command line; access.apiKey (on by default) gives each model a random key in a Secret, read as VLLM_API_KEY",
    "--disable-log-stats": "turns off the metrics autoscaling and alerts read",
    "--pipeline-parallel-size": "spans nodes; one replica runs on one node here (use gpusPerReplica)",
    "--data-parallel-size": "one engine per pod; scale with minReplicas/maxReplicas",
    "--data-parallel-size-local": "one engine per pod; scale with minReplicas/maxReplicas",
    "--nnodes": "one replica runs on one node",
    "--node-rank": "one replica runs on one node",
    "--headless": "the pod must serve the OpenAI API",
    "--uds": "the Service reaches vLLM over TCP",
    "--ssl-keyfile": "TLS ends at the gateway",
    "--ssl-certfile": "TLS ends at the gateway",
    "--config": "reads a YAML file the pod does not have; pass the flags themselves",
    "--device-ids": "the device plugin assigns GPUs",
    "--middleware": "imports a module the image does not have; the platform loads its own API key guard (access.apiKey)",
}

# Flags vLLM no longer accepts, with what to use instead (vLLM 0.33.0 rejects each of these).
REMOVED_FLAGS: dict[str, str] = {
    "--swap-space": "CPU swap was removed with the V0 engine; size the KV cache with gpuMemoryUtilization",
    "--num-scheduler-steps": "multi-step scheduling was removed with the V0 engine (V1 schedules asynchronously: --async-scheduling)",
    "--use-v2-block-manager": "the V1 engine has one block manager; drop the flag",
    "--task": "use --runner / --convert",
    "--device": "the platform is detected; drop the flag",
    "--guided-decoding-backend": "use --structured-outputs-config",
    "--max-seq-len-to-capture": "use --max-cudagraph-capture-size",
    "--disable-frontend-multiprocessing": "removed; drop the flag",
    "--enable-reasoning": "set --reasoning-parser alone",
    "--tokenizer-pool-size": "removed; drop the flag",
    "--preemption-mode": "V1 always recomputes; drop the flag",
    "--max-num-partial-prefills": "removed; use --long-prefill-token-threshold",
    "--worker-use-ray": "use --distributed-executor-backend",
    "--engine-use-ray": "removed; drop the flag",
}

# The reviewed subset of vLLM 0.33.0 flags a model may pass in extraArgs, by what they tune.
ALLOWED_EXTRA_FLAGS: frozenset[str] = frozenset(
    {
        # scheduling and batching
        "--max-num-batched-tokens", "--enable-chunked-prefill", "--disable-chunked-prefill",
        "--no-enable-chunked-prefill", "--long-prefill-token-threshold", "--async-scheduling",
        "--no-async-scheduling", "--scheduling-policy", "--max-num-queued-reqs", "--stream-interval",
        "--disable-chunked-mm-input", "--disable-hybrid-kv-cache-manager",
        # KV cache and memory
        "--block-size", "--kv-cache-memory-bytes", "--prefix-caching-hash-algo", "--cpu-offload-gb",
        "--kv-offloading-backend", "--kv-offloading-size", "--kv-cache-dtype-skip-layers",
        "--num-gpu-blocks-override", "--mamba-cache-dtype", "--mamba-ssm-cache-dtype",
        # model loading and behaviour
        "--trust-remote-code", "--tokenizer", "--tokenizer-mode", "--tokenizer-revision",
        "--code-revision", "--hf-overrides", "--generation-config", "--override-generation-config",
        "--enforce-eager", "--max-logprobs", "--logprobs-mode", "--seed", "--runner", "--convert",
        "--model-impl", "--quantization-config", "--disable-sliding-window", "--disable-cascade-attn",
        "--pooler-config", "--max-parallel-loading-workers", "--safetensors-load-strategy",
        "--ignore-patterns", "--enable-prompt-embeds",
        # parallelism within one node
        "--enable-expert-parallel", "--disable-custom-all-reduce", "--distributed-executor-backend",
        "--enable-eplb", "--eplb-config", "--all2all-backend", "--decode-context-parallel-size",
        # kernels and compilation
        "--attention-backend", "--attention-config", "--compilation-config", "--optimization-level",
        "--cudagraph-capture-sizes", "--max-cudagraph-capture-size", "--kernel-config", "--moe-backend",
        "--performance-mode",
        # speculative decoding
        "--speculative-config",
        # OpenAI frontend: tools, reasoning, chat templates
        "--enable-auto-tool-choice", "--tool-call-parser", "--tool-parser-plugin", "--reasoning-parser",
        "--reasoning-parser-plugin", "--structured-outputs-config", "--chat-template",
        "--chat-template-content-format", "--default-chat-template-kwargs", "--response-role",
        "--return-tokens-as-token-ids", "--enable-prompt-tokens-details", "--enable-force-include-usage",
        "--enable-request-id-headers", "--max-log-len", "--root-path", "--disable-fastapi-docs",
        "--exclude-tools-when-tool-choice-none", "--tokens-only", "--api-server-count",
        "--allowed-origins", "--allowed-methods", "--allowed-headers", "--allow-credentials",
        "--sse-keep-alive-interval",
        # LoRA adapters
        "--enable-lora", "--max-loras", "--max-lora-rank", "--max-cpu-loras", "--lora-modules",
        "--lora-dtype", "--fully-sharded-loras", "--lora-target-modules",
        # multimodal
        "--limit-mm-per-prompt", "--mm-processor-kwargs", "--mm-processor-cache-gb",
        "--mm-encoder-tp-mode", "--skip-mm-profiling", "--language-model-only", "--media-io-kwargs",
        "--allowed-media-domains",
        # logging and observability
        "--enable-log-requests", "--disable-log-requests", "--enable-log-outputs",
        "--disable-uvicorn-access-log", "--disable-access-log-for-endpoints", "--uvicorn-log-level",
        "--log-level", "--enable-server-load-tracking", "--kv-cache-metrics", "--cudagraph-metrics",
        "--enable-mfu-metrics", "--otlp-traces-endpoint", "--collect-detailed-traces",
        "--show-hidden-metrics-for-version", "--aggregate-engine-logging",
        # sleep mode (RL / multi-tenant GPU)
        "--enable-sleep-mode",
    }
)

# The accepted flags that are yes/no switches (vLLM's EnableDisableAction or store_true: no value).
# `--enforce-eager=maybe` makes argparse exit ("ignored explicit argument"), and a bare word after a
# switch is read as an unknown positional argument; tests check this set against the 0.33.0 parser.
SWITCH_FLAGS: frozenset[str] = frozenset(
    {
        "--aggregate-engine-logging", "--allow-credentials", "--async-scheduling", "--cudagraph-metrics",
        "--disable-cascade-attn", "--disable-chunked-mm-input", "--disable-chunked-prefill",
        "--disable-custom-all-reduce", "--disable-fastapi-docs", "--disable-hybrid-kv-cache-manager",
        "--disable-log-requests", "--disable-sliding-window", "--disable-uvicorn-access-log",
        "--enable-auto-tool-choice", "--enable-chunked-prefill", "--enable-eplb", "--enable-expert-parallel",
        "--enable-force-include-usage", "--enable-log-outputs", "--enable-log-requests", "--enable-lora",
        "--enable-mfu-metrics", "--enable-prompt-embeds", "--enable-prompt-tokens-details",
        "--enable-request-id-headers", "--enable-server-load-tracking", "--enable-sleep-mode", "--enforce-eager",
        "--exclude-tools-when-tool-choice-none", "--fully-sharded-loras", "--kv-cache-metrics",
        "--language-model-only", "--no-async-scheduling", "--no-enable-chunked-prefill",
        "--return-tokens-as-token-ids", "--skip-mm-profiling", "--tokens-only", "--trust-remote-code",
    }
)

# vLLM's short forms, resolved before the check (`-tp 2` is --tensor-parallel-size).
SHORT_ALIASES: dict[str, str] = {
    "-tp": "--tensor-parallel-size",
    "-pp": "--pipeline-parallel-size",
    "-dp": "--data-parallel-size",
    "-dpl": "--data-parallel-size-local",
    "-dcp": "--decode-context-parallel-size",
    "-ep": "--enable-expert-parallel",
    "-n": "--nnodes",
    "-r": "--node-rank",
    "-q": "--quantization",
    "-ac": "--attention-config",
    "-cc": "--compilation-config",
    "-sc": "--speculative-config",
    "-asc": "--api-server-count",
}

_NUMBER = re.compile(r"^-\d")


def canonical_flag(token: str) -> str | None:
    """The long flag a command-line token names, as vLLM's parser reads it, or None for a value.

    vLLM accepts `--max_model_len` for `--max-model-len`, `--flag=value`, dotted JSON sub-keys
    (`--compilation-config.mode 3`) and `-O3`; all of them are the same flag for this check.
    """
    if not token.startswith("-") or _NUMBER.match(token):
        return None
    if not token.startswith("--"):
        short = token.split("=", 1)[0]
        if short in SHORT_ALIASES:
            return SHORT_ALIASES[short]
        if short == "-O" or (short.startswith("-O") and short[2:].isdigit()):
            return "--optimization-level"
        return short
    name = token[2:].split("=", 1)[0].split(".", 1)[0].rstrip("+")
    return "--" + name.replace("_", "-")


def extra_arg_problems(args: list[str]) -> list[tuple[int, str]]:
    """(index in `args`, why) for every token naming a flag a model's extraArgs may not carry."""
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for i, token in enumerate(args):
        flag = canonical_flag(token)
        if flag is None:
            continue
        shown = flag if flag == token.split("=", 1)[0] else f"{token.split('=', 1)[0]} (= {flag})"
        if flag in PLATFORM_FLAGS:
            problems.append((i, f"{shown} is set by the platform from {PLATFORM_FLAGS[flag]}"))
        elif flag in RULED_OUT_FLAGS:
            problems.append((i, f"{shown} is not allowed: {RULED_OUT_FLAGS[flag]}"))
        elif flag in REMOVED_FLAGS:
            problems.append((i, f"{shown} was removed from vLLM before {VLLM_VERSION}: {REMOVED_FLAGS[flag]}"))
        elif flag not in ALLOWED_EXTRA_FLAGS:
            problems.append(
                (
                    i,
                    f"{shown} is not a vLLM {VLLM_VERSION} flag llm-platform accepts "
                    "(components/vllm/flags.py lists them; vLLM exits on an unknown flag)",
                )
            )
        elif flag in seen and "." not in token:
            problems.append((i, f"{shown} is given twice (also at extraArgs[{seen[flag]}])"))
        else:
            problems += _value_problems(args, i, flag, shown)
        seen.setdefault(flag, i)
    return problems


def _value_problems(args: list[str], i: int, flag: str, shown: str) -> list[tuple[int, str]]:
    """A switch given a value, or a flag that needs one given none: argparse exits on both."""
    token = args[i]
    attached = "=" in token or (flag == "--optimization-level" and not token.startswith("--"))
    following = args[i + 1] if i + 1 < len(args) else None
    has_value_after = following is not None and canonical_flag(following) is None
    if flag in SWITCH_FLAGS:
        if "=" in token:
            return [(i, f"{shown} is a yes/no switch and takes no value (got {token.split('=', 1)[1]!r}): "
                        "list it alone to turn it on, leave it out to keep it off")]
        if has_value_after:
            return [(i + 1, f"{following!r} follows {shown}, a yes/no switch that takes no value: vLLM would read it "
                            "as an unknown argument")]
        return []
    if not attached and not has_value_after:
        return [(i, f"{shown} needs a value (as its next item, or {shown.split(' ')[0]}=VALUE)")]
    return []

