"""The vLLM pod of a model service: command line, probes, shutdown, placement, volumes.

Pure functions from typed config to typed `pulumi_kubernetes` Args, so the numbers that decide
whether a model survives a rollout or a spot reclaim (probe budgets, grace period, tolerations)
are computed in one place and asserted by tests without a cluster.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from ..config.models import ModelConfig, tensor_parallel_fits
from ..config.planning import max_num_seqs, runai_memory_limit
from ..config.types import duration_seconds
from ..vllm.flags import VLLM_VERSION
from ..scheduling import (
    GPU_TAINT,
    HOSTNAME_LABEL,
    LABEL_CAPACITY_TYPE,
    LABEL_GPU_COUNT,
    LABEL_GPU_TYPE,
    SPOT_TAINT,
    ZONE_LABEL,
    GpuPoolPlacement,
    Taint,
)

GPU_RESOURCE = "nvidia.com/gpu"
VLLM_PORT = 8000
PORT_NAME = "http-openai"  # the OpenAI-compatible API (and /metrics, /health)
WEIGHTS_MOUNT = "/weights"
COMPLETE_MARKER = ".llm-platform-complete"  # written by the download Job after the last file
# vLLM's torch.compile cache (VLLM_CACHE_ROOT), on the weights volume beside the snapshots, one
# directory per vLLM version. vLLM keys each entry by its config, code and GPU, so replicas of one
# model and version share entries; since vLLM 0.12 (PR #27616) concurrent writers are safe.
COMPILE_CACHE_MOUNT = "/vllm-cache"
COMPILE_CACHE_DIR = f".vllm-cache/{VLLM_VERSION}"
COMPILE_CACHE_SETUP_MOUNT = "/weights-volume"  # the whole claim, writable, in the init container only

# Every container we write for a model runs as this user: not root, above the range images assign
# (1000-9999), and the same for the download Job and the server, so what one writes on an NFS share
# (Filestore, Azure Files, which keep POSIX owners) the other may read and, for the compile cache,
# write. The vLLM image itself runs as root; nothing in vLLM needs it.
MODEL_UID = 10001
# With a read-only root file system, the only places the server writes. HOME holds what vLLM,
# Triton, torch inductor and FlashInfer cache (~/.cache/vllm unless the compile cache is on,
# ~/.triton/cache, ~/.cache/flashinfer); /tmp their scratch files. Sizes bound what a runaway
# cache can take from the node's disk (the kubelet evicts the pod past them).
SERVER_HOME = "/home/vllm"
WRITABLE_DIRS = {"home": (SERVER_HOME, "8Gi"), "tmp": ("/tmp", "4Gi")}

# After a pod is marked terminating, Services, kube-proxy and ingress controllers take a few seconds
# to stop sending it traffic; vLLM keeps serving during this sleep, then drains on SIGTERM.
ENDPOINT_PROPAGATION_SECONDS = 15
# Beyond preStop + drain: vLLM's engine and NCCL teardown after the last request.
SHUTDOWN_MARGIN_SECONDS = 30
STARTUP_PROBE_PERIOD_SECONDS = 10


@dataclass(frozen=True)
class PodTiming:
    """Every shutdown and start-up budget of a vLLM pod, derived from the model's config."""

    pre_stop_seconds: int
    drain_seconds: int
    grace_seconds: int
    startup_failure_threshold: int
    progress_deadline_seconds: int

    @classmethod
    def of(cls, model: ModelConfig) -> PodTiming:
        """The startup window and the rollout deadline come from the model's scale-out budget
        (with a margin, `config/scale_out.py`), or from loadTimeout where the stack sets it."""
        load = model.load_seconds
        return cls(
            pre_stop_seconds=ENDPOINT_PROPAGATION_SECONDS,
            drain_seconds=model.drain_seconds,
            grace_seconds=ENDPOINT_PROPAGATION_SECONDS + model.drain_seconds + SHUTDOWN_MARGIN_SECONDS,
            startup_failure_threshold=math.ceil(load / STARTUP_PROBE_PERIOD_SECONDS),
            progress_deadline_seconds=load + model.before_start_seconds,
        )


def weights_dir(model: ModelConfig) -> str:
    """Where the model's files are inside the weights volume: one directory per revision, so a new
    revision downloads beside the old one and a rollback needs no download."""
    if model.is_local_path:
        return WEIGHTS_MOUNT + model.model
    return f"{WEIGHTS_MOUNT}/snapshots/{model.revision}"


# The API key guard (components/vllm/api_guard.py), shipped in a ConfigMap and imported by vLLM.
API_GUARD_MODULE = "llm_platform_api_guard"
API_GUARD_MOUNT = "/opt/llm-platform/python"


def api_guard_args(model: ModelConfig) -> list[str]:
    """vLLM guards only some of its paths with the key; this loads ours for all the others."""
    return ["--middleware", f"{API_GUARD_MODULE}.RequireApiKey"] if model.access.api_key else []


def api_guard_volumes(model: ModelConfig, config_map_name: pulumi.Input[str]) -> list[k8s.core.v1.VolumeArgs]:
    if not model.access.api_key:
        return []
    return [k8s.core.v1.VolumeArgs(name="api-guard", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config_map_name))]


def api_guard_mounts(model: ModelConfig) -> list[k8s.core.v1.VolumeMountArgs]:
    return [k8s.core.v1.VolumeMountArgs(name="api-guard", mount_path=API_GUARD_MOUNT, read_only=True)] if model.access.api_key else []


def api_guard_env(model: ModelConfig) -> list[k8s.core.v1.EnvVarArgs]:
    """The image sets no PYTHONPATH, so this only adds the guard's directory."""
    return [k8s.core.v1.EnvVarArgs(name="PYTHONPATH", value=API_GUARD_MOUNT)] if model.access.api_key else []


def vllm_args(model: ModelConfig) -> list[str]:
    """`vllm serve` arguments. Tensor parallelism is the pod's GPU limit, by construction."""
    args = [
        weights_dir(model),
        "--served-model-name", model.served_name,
        "--host", "0.0.0.0",
        "--port", str(VLLM_PORT),
        "--tensor-parallel-size", str(model.gpus_per_replica),
        "--gpu-memory-utilization", str(model.gpu_memory_utilization),
        "--dtype", model.dtype,
        "--kv-cache-dtype", model.kv_cache_dtype,
        "--enable-prefix-caching" if model.prefix_caching else "--no-enable-prefix-caching",
        # On SIGTERM vLLM stops taking requests and lets in-flight ones finish for this long.
        "--shutdown-timeout", str(model.drain_seconds),
    ]  # fmt: skip
    if model.max_model_len is not None:
        args += ["--max-model-len", str(model.max_model_len)]
    seqs = max_num_seqs(model)  # the stack's, else derived from the predicted KV cache
    if seqs is not None:
        args += ["--max-num-seqs", str(seqs)]
    if model.quantization is not None:
        args += ["--quantization", model.quantization]
    return args + loader_args(model) + api_guard_args(model) + list(model.extra_args)


# Run:ai's default for a file system: the readers that keep an NFS client's pipe full.
RUNAI_CONCURRENCY = 16


def loader_args(model: ModelConfig) -> list[str]:
    """The weight loader (scaleOut.weightLoader): the Run:ai streamer reads each file with 16
    concurrent readers into a bounded CPU buffer and streams tensors to the GPU as they arrive;
    vLLM's default memory-maps the files, which on NFS turns into slow page-sized reads."""
    if model.loader != "runai-streamer":
        return []
    extra = json.dumps({"concurrency": RUNAI_CONCURRENCY, "memory_limit": runai_memory_limit(model)}, separators=(",", ":"))
    return ["--load-format", "runai_streamer", "--model-loader-extra-config", extra]


def model_placements(model: ModelConfig, placements: tuple[GpuPoolPlacement, ...]) -> list[GpuPoolPlacement]:
    """The pools this model's pods may land on: its GPU type, whole GPUs, a node size its tensor
    parallelism divides, capacity it accepts, and no taint it does not tolerate."""
    tolerated = set(tolerated_taints(model, placements))
    return [
        p
        for p in placements
        if p.gpu_type == model.gpu_type
        and p.mig_profile is None
        and tensor_parallel_fits(model.gpus_per_replica, p.gpus_per_node)
        and set(p.taints) <= tolerated
    ]


def tolerated_taints(model: ModelConfig, placements: tuple[GpuPoolPlacement, ...] = ()) -> tuple[Taint, ...]:
    """The GPU taint always; the spot taints only when the model accepts interruption: ours, and
    those the cloud puts on spot nodes itself (AKS), as the cluster's placements declare them."""
    if not model.allows_spot:
        return (GPU_TAINT,)
    cloud_spot = [t for p in placements for t in p.spot_taints if t != SPOT_TAINT]
    return (GPU_TAINT, SPOT_TAINT, *dict.fromkeys(cloud_spot))


def tolerations(model: ModelConfig, placements: tuple[GpuPoolPlacement, ...] = ()) -> list[k8s.core.v1.TolerationArgs]:
    return [
        k8s.core.v1.TolerationArgs(key=t.key, operator="Equal", value=t.value, effect=t.effect)
        for t in tolerated_taints(model, placements)
    ]


def affinity(model: ModelConfig, pools: list[GpuPoolPlacement]) -> k8s.core.v1.AffinityArgs:
    """Required: the GPU type and a node size this model's tensor parallelism fits (and on-demand
    capacity when spot is not allowed). Preferred: spot for spot-preferred models.

    spot-allowed carries no preference on purpose: the scheduler fills the on-demand baseline nodes
    already running, and Karpenter launches burst nodes from its spot NodePool first (weight 100);
    a preference for on-demand would make Karpenter burst onto on-demand instead.
    """
    expressions = [
        k8s.core.v1.NodeSelectorRequirementArgs(key=LABEL_GPU_TYPE, operator="In", values=[model.gpu_type]),
        k8s.core.v1.NodeSelectorRequirementArgs(
            key=LABEL_GPU_COUNT, operator="In", values=sorted({str(p.gpus_per_node) for p in pools}, key=int)
        ),
    ]
    if not model.allows_spot:
        expressions.append(k8s.core.v1.NodeSelectorRequirementArgs(key=LABEL_CAPACITY_TYPE, operator="In", values=["on-demand"]))
    preferred = None
    if model.capacity == "spot-preferred":
        preferred = [
            k8s.core.v1.PreferredSchedulingTermArgs(
                weight=100,
                preference=k8s.core.v1.NodeSelectorTermArgs(
                    match_expressions=[k8s.core.v1.NodeSelectorRequirementArgs(key=LABEL_CAPACITY_TYPE, operator="In", values=["spot"])]
                ),
            )
        ]
    return k8s.core.v1.AffinityArgs(
        node_affinity=k8s.core.v1.NodeAffinityArgs(
            required_during_scheduling_ignored_during_execution=k8s.core.v1.NodeSelectorArgs(
                node_selector_terms=[k8s.core.v1.NodeSelectorTermArgs(match_expressions=expressions)]
            ),
            preferred_during_scheduling_ignored_during_execution=preferred,
        )
    )


def topology_spread(selector: dict[str, str]) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    """Spread replicas over zones and nodes, as a preference: when one zone is out of GPUs, a
    replica elsewhere beats a Pending one. `pod-template-hash` counts each rollout's pods apart."""
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key=key,
            when_unsatisfiable="ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
            match_label_keys=["pod-template-hash"],
        )
        for key in (ZONE_LABEL, HOSTNAME_LABEL)
    ]


def probes(timing: PodTiming) -> dict[str, k8s.core.v1.ProbeArgs]:
    """Startup covers the whole load (liveness starts only after it), so a 70B model that needs 15
    minutes is never killed while loading; afterwards readiness and liveness poll /health."""

    def health(period: int, failures: int, timeout: int) -> k8s.core.v1.ProbeArgs:
        return k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/health", port=PORT_NAME),
            period_seconds=period,
            failure_threshold=failures,
            timeout_seconds=timeout,
        )

    return {
        "startup_probe": health(STARTUP_PROBE_PERIOD_SECONDS, timing.startup_failure_threshold, 5),
        "readiness_probe": health(5, 3, 5),
        "liveness_probe": health(15, 4, 10),
    }


def wait_for_weights_script(model: ModelConfig) -> str:
    """The init container's check: model pods never start on a partial snapshot (and never pull
    from the hub themselves, so a scale-out of 20 replicas is 20 reads of EFS, not 20 downloads)."""
    directory = weights_dir(model)
    if model.is_local_path:
        return (
            f'test -f "{directory}/config.json" && exit 0; '
            f'echo "no config.json in {directory}: copy the model into the weights volume first" >&2; exit 1'
        )
    limit = duration_seconds(model.download_timeout)
    return (
        f'waited=0; while [ ! -f "{directory}/{COMPLETE_MARKER}" ]; do '
        f'if [ "$waited" -ge {limit} ]; then echo "weights not complete after {limit}s: see the download Job" >&2; exit 1; fi; '
        f'echo "waiting for the weight download to finish ({directory})"; sleep 15; waited=$((waited + 15)); done; '
        f'echo "weights complete: revision $(cat "{directory}/{COMPLETE_MARKER}")"'
    )


def compile_cache_volumes(model: ModelConfig, claim_name: pulumi.Input[str]) -> list[k8s.core.v1.VolumeArgs]:
    """The weights claim once more, writable: only the cache's subdirectory is mounted from it, so
    the server still sees its weights read-only."""
    if not model.compile_cache:
        return []
    return [k8s.core.v1.VolumeArgs(name="compile-cache", persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=claim_name))]


def compile_cache_mounts(model: ModelConfig) -> list[k8s.core.v1.VolumeMountArgs]:
    if not model.compile_cache:
        return []
    return [k8s.core.v1.VolumeMountArgs(name="compile-cache", mount_path=COMPILE_CACHE_MOUNT, sub_path=COMPILE_CACHE_DIR)]


def model_pod_security(weights_writer: bool = False) -> k8s.core.v1.PodSecurityContextArgs:
    """Pod Security `restricted`: non-root with our UID, RuntimeDefault seccomp.

    fsGroup only for a pod that writes a weights volume whose root stays root's until the kubelet
    hands it over (`SharedWeights.writers_need_fs_group`: Filestore): the model group then owns the
    root, group-writable and setgid. `OnRootMismatch`, so the kubelet looks at the root alone once
    it matches, and never walks a volume of weights on a pod start. Elsewhere none: the emptyDirs
    the containers write are writable by any user."""
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=MODEL_UID,
        run_as_group=MODEL_UID,
        fs_group=MODEL_UID if weights_writer else None,
        fs_group_change_policy="OnRootMismatch" if weights_writer else None,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def locked_down() -> k8s.core.v1.SecurityContextArgs:
    """Every capability dropped, NET_RAW among the runtime's defaults included; tensor parallelism
    needs none (its ranks share GPU memory over CUDA IPC and /dev/shm, as the same user in one
    pod), and the GPUs are device files the NVIDIA runtime makes readable to any user."""
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
    )


def writable_volumes() -> list[k8s.core.v1.VolumeArgs]:
    return [
        k8s.core.v1.VolumeArgs(name=name, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=size))
        for name, (_, size) in WRITABLE_DIRS.items()
    ]


def writable_mounts() -> list[k8s.core.v1.VolumeMountArgs]:
    return [k8s.core.v1.VolumeMountArgs(name=name, mount_path=path) for name, (path, _) in WRITABLE_DIRS.items()]


def server_user_env() -> list[k8s.core.v1.EnvVarArgs]:
    """HOME on its emptyDir; USER because our UID has no entry in the image's /etc/passwd and
    torch inductor names its cache directory after `getpass.getuser()`, which fails without it."""
    return [k8s.core.v1.EnvVarArgs(name="HOME", value=SERVER_HOME), k8s.core.v1.EnvVarArgs(name="USER", value="vllm")]


def compile_cache_setup(model: ModelConfig) -> str:
    """Creates the compile cache's directory as MODEL_UID before the server mounts it: a subPath
    that does not exist yet is created by the kubelet as root, which our user could not write on
    NFS. Prepended to the init container's script."""
    return f'mkdir -p "{COMPILE_CACHE_SETUP_MOUNT}/{COMPILE_CACHE_DIR}" && ' if model.compile_cache else ""



def compile_cache_setup_mounts(model: ModelConfig) -> list[k8s.core.v1.VolumeMountArgs]:
    if not model.compile_cache:
        return []
    return [k8s.core.v1.VolumeMountArgs(name="compile-cache", mount_path=COMPILE_CACHE_SETUP_MOUNT)]
