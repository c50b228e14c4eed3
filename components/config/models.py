"""The typed config of one vLLM model service (`llm-platform:models[]`) and the stack's model policy.

Defaults are the ones we would pick for a production service; every field a platform engineer is
likely to tune is here rather than in `extraArgs`, so it is typed, documented and checked. Rules
that need the rest of the stack (which pools exist, whether the stack allows scale-to-zero, the
HF token) are in `stack.py`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, PrivateAttr, model_validator
from pydantic.alias_generators import to_camel

from ..admission.cron import cron_problem, timezone_problem
from ..planner.memory_flags import memory_flags
from ..vllm.flags import VLLM_IMAGE, VLLM_VERSION, extra_arg_problems
from .errors import Problem, raise_problems
from .images import IMAGE_REFERENCE, NAME_MAX, image_name, image_tag
from .levers import WeightLoader
from .types import DNS_LABEL, ConfigModel, GoDuration, GpuType, PositiveGoDuration, duration_seconds, formatted

ModelName = formatted(rf"(?=.{{1,40}}$){DNS_LABEL}", "a lowercase DNS label of at most 40 characters, such as qwen3-8b")
Namespace = formatted(rf"(?=.{{1,63}}$){DNS_LABEL}", "a Kubernetes namespace name (lowercase DNS label)")
# A Hugging Face repo id (org/name), or an absolute path inside the model's weights volume.
ModelSource = formatted(r"[\w.-]+/[\w.-]+|/[\w./-]+", "a Hugging Face id such as Qwen/Qwen3-8B or a path such as /custom/model")
# A relative path inside the project: stack files travel with the program, absolute paths do not.
ArchitecturePath = formatted(r"(?!/)(?!.*(^|/)\.\.(/|$))[\w./-]+", "a path inside the project such as models/my-model/config.json")
Revision = formatted(r"[\w.-]+", "a Hugging Face revision: a commit sha, tag or branch")
CpuQuantity = formatted(r"\d+(\.\d+)?|\d+m", "a CPU quantity such as 4, 2.5 or 500m")
MemoryQuantity = formatted(r"\d+(Mi|Gi|Ti)", "a memory quantity such as 16Gi or 512Mi")


def _cron(value: str) -> str:
    problem = cron_problem(value)
    if problem:
        raise ValueError(f"{value!r} is not a schedule KEDA's cron trigger reads ({problem}): five fields, "
                         "minute hour day-of-month month day-of-week, such as '0 8 * * 1-5'")
    return value


def _timezone(value: str) -> str:
    if timezone_problem(value):
        raise ValueError(f"{value!r} is not an IANA time zone (such as Europe/Berlin, America/New_York or UTC)")
    return value


# Checked as KEDA v2.20.2's cron scaler parses them (components/admission/cron.py), at the key.
CronExpression = Annotated[str, AfterValidator(_cron), Field(json_schema_extra={"pattern": r"^\S+( \S+){4}$"})]
IanaTimezone = Annotated[str, AfterValidator(_timezone)]
IngressPath = formatted(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*", "a URL path starting with /")
ServedModelName = formatted(r"[A-Za-z0-9_./:-]+", "a model name clients send, such as qwen3-8b or Qwen/Qwen3-8B", max_length=128)
ImageReference = formatted(
    IMAGE_REFERENCE,
    "an image reference such as vllm/vllm-openai:v0.33.0 or a mirror's host/path:tag@sha256:<digest> "
    "(lower-case path, a tag of at most 128 characters)",
)
QuantizationName = formatted(r"[a-z0-9_-]+", "a vLLM --quantization method such as fp8 or awq_marlin")
Hostname = formatted(r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+", "a DNS host name")

# Platform namespaces a model must not share: its NetworkPolicy and quota would apply to them.
RESERVED_NAMESPACES = frozenset(
    {"default", "kube-system", "kube-public", "kube-node-lease", "monitoring", "keda", "karpenter",
     "gpu-operator", "dcgm-exporter", "aws-efs-csi-driver"}
)

_MEMORY_UNITS = {"Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def tensor_parallel_fits(gpus_per_replica: int, gpus_per_node: int) -> bool:
    """Whether replicas of this TP size use a node's GPUs whole: TP cannot span nodes, and a size
    that does not divide the node's count leaves GPUs no replica can take."""
    return gpus_per_node >= gpus_per_replica and gpus_per_node % gpus_per_replica == 0


def memory_bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"([0-9]+)(Mi|Gi|Ti)", quantity).groups()
    return int(number) * _MEMORY_UNITS[unit]


class ActiveHours(ConfigModel):
    """When a scale-to-zero model is kept up (a KEDA cron trigger). vLLM's own metrics vanish with
    its last pod, so a model at zero needs a signal from outside to wake: this window."""

    timezone: IanaTimezone = Field("UTC", description="IANA time zone of start and end.")
    start: CronExpression = Field(description="Cron expression: when the model comes up, e.g. '0 8 * * 1-5'.")
    end: CronExpression = Field(description="Cron expression: from when it may go back to zero, e.g. '0 20 * * 1-5'.")


class ScalingConfig(ConfigModel):
    """KEDA scaling signals. Queue depth per replica is the signal that moves with user-visible
    latency; KV-cache usage catches long contexts that fill memory before a queue forms. GPU
    utilisation is not used: vLLM keeps it high even when it could take more work."""

    waiting_requests_per_replica: int = Field(
        4, ge=1, le=1000, description="Target queued requests per replica (vllm:num_requests_waiting); more adds replicas."
    )
    kv_cache_usage: float = Field(
        0.8, ge=0.3, le=0.95, description="Target mean KV-cache usage (vllm:kv_cache_usage_perc, 0-1) across replicas."
    )
    polling_interval: GoDuration = Field(
        "15s",
        description="With scaleToZero: how often KEDA checks whether to wake the model or let it go to zero. Above zero "
        "replicas the HPA asks KEDA every 15 s itself, so KEDA ignores this (and its webhook warns).",
    )
    scale_down_stabilization: GoDuration = Field(
        "10m", description="Scale down only to the highest replica count wanted in this window: GPU pods take minutes to come back."
    )
    scale_to_zero: bool = Field(
        False, description="Let the model go to zero replicas when idle (the stack must allow it: modelPolicy.allowScaleToZero)."
    )
    idle_before_scale_to_zero: GoDuration = Field("30m", description="With scaleToZero: how long without requests before zero.")
    active_hours: ActiveHours | None = Field(None, description="With scaleToZero (required): when the model is kept up.")

    @model_validator(mode="after")
    def _check(self) -> ScalingConfig:
        problems: list[Problem] = []
        if self.scale_to_zero and self.active_hours is None:
            problems.append(
                (
                    ("activeHours",),
                    "required with scaleToZero: at zero replicas no vLLM pod exports the metrics that would wake "
                    "the model, so the activeHours window is what brings it back",
                )
            )
        if not self.scale_to_zero:
            # KEDA uses these only for the 0 <-> 1 step; set without it they would silently do nothing.
            for key in ("active_hours", "polling_interval", "idle_before_scale_to_zero"):
                if key in self.model_fields_set and getattr(self, key) is not None:
                    problems.append(((to_camel(key),), "only with scaleToZero"))
        stabilization = duration_seconds(self.scale_down_stabilization)
        if stabilization > 3600:
            problems.append((("scaleDownStabilization",), "at most 1h (the HPA limit)"))
        if not 5 <= duration_seconds(self.polling_interval) <= 300:
            problems.append((("pollingInterval",), "between 5s and 5m"))
        raise_problems(problems)
        return self


class ResourcesConfig(ConfigModel):
    """CPU and memory of a vLLM pod; GPUs come from gpusPerReplica. Unset values scale with the GPU
    count: 2 CPUs and 12Gi per GPU fit the smallest single-GPU nodes (g6.xlarge: 4 vCPU, 16 GiB)."""

    cpu: CpuQuantity | None = Field(None, description="CPU request (default 2 per GPU). No CPU limit: throttling a tokenizer stalls the GPU.")
    memory: MemoryQuantity | None = Field(None, description="Memory request and limit (default 12Gi per GPU).")
    shm_size: MemoryQuantity | None = Field(
        None, description="/dev/shm size for NCCL and vLLM's IPC (default 2Gi, 8Gi with tensor parallelism); counts against memory."
    )


class IngressConfig(ConfigModel):
    """An Ingress for the model's OpenAI API, served by an ingress controller the cluster already runs."""

    class_name: str = Field(min_length=1, description="IngressClass of the controller, e.g. alb or nginx.")
    host: Hostname = Field(description="Host name clients use.")
    path: IngressPath = Field("/", description="Path prefix.")
    tls_secret_name: str | None = Field(None, description="TLS Secret in the model's namespace (omit when the controller terminates TLS).")
    controller_namespace: Namespace = Field(
        description="Namespace of the controller's pods, admitted by the model's NetworkPolicy."
    )
    annotations: dict[str, str] = Field(default_factory=dict, description="Controller-specific annotations.")


class AccessConfig(ConfigModel):
    """Who may call the model: its NetworkPolicy admits only these namespaces, the ingress controller
    and Prometheus."""

    allowed_namespaces: list[Namespace] = Field(default_factory=list, description="Namespaces whose pods may call the API.")
    ingress: IngressConfig | None = Field(None, description="Expose the model through an Ingress.")
    api_key: bool = Field(
        True,
        description="A random API key for this model (a Secret in its namespace, and the secret stack output modelApiKeys): "
        "vLLM answers every path only with `Authorization: Bearer <key>` but /health, /ping, /version and /metrics "
        "(open for probes and Prometheus). false: anyone the NetworkPolicy admits may call it.",
    )


# Without a budget (fitCheck off: the planner cannot size the weights): the old fixed windows.
DEFAULT_LOAD_SECONDS = 20 * 60
DEFAULT_BEFORE_START_SECONDS = 15 * 60


class ModelConfig(ConfigModel):
    """One vLLM model service: what to serve, on which GPUs, how it scales and who may call it."""

    name: ModelName = Field(description="Service name; also the namespace unless `namespace` is set.")
    model: ModelSource = Field(description="Hugging Face model id, or an absolute path inside the model's weights volume.")
    revision: Revision = Field(
        "main", description="Hugging Face revision to download; pin a commit sha so every replica serves the same weights."
    )
    served_model_name: ServedModelName | None = Field(
        None, description="The `model` clients send (default: name); also the metrics' model_name label."
    )
    namespace: Namespace | None = Field(None, description="Share a namespace with other models (default: a namespace named after the model).")
    image: ImageReference = Field(
        VLLM_IMAGE,
        description=f"vLLM image; a mirror or digest of vLLM {VLLM_VERSION} (flags are checked against that version).",
    )
    gated: bool = Field(False, description="The model needs a Hugging Face token (llm-platform:hfToken) to download.")
    gpu_type: GpuType = Field(description="GPU model the replica runs on; a pool must provide it.")
    gpus_per_replica: int = Field(1, ge=1, le=8, description="GPUs per replica = vLLM --tensor-parallel-size (one node).")
    max_model_len: int | None = Field(None, ge=256, le=10_000_000, description="--max-model-len (default: the model's own).")
    gpu_memory_utilization: float = Field(0.90, ge=0.5, le=0.98, description="--gpu-memory-utilization: GPU memory vLLM may use.")
    max_num_seqs: int | None = Field(None, ge=1, le=4096, description="--max-num-seqs: concurrent sequences per replica (default: derived from the predicted KV cache, room for each to reach a quarter of maxModelLen, at most vLLM's default).")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field("auto", description="--dtype of weights and activations.")
    quantization: QuantizationName | None = Field(
        None, description="--quantization method, e.g. fp8, awq_marlin (default: from the checkpoint)."
    )
    kv_cache_dtype: Literal["auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"] = Field(
        "auto", description="--kv-cache-dtype; fp8 roughly doubles KV-cache capacity."
    )
    architecture: ArchitecturePath | None = Field(
        None,
        description="The model's config.json for the capacity planner, as a path in the project (or its directory); "
        "required for a model outside the planner's catalog (a local path or an unlisted id) so preview can check it fits.",
    )
    fit_check: bool = Field(
        True,
        description="Fail preview when a replica cannot fit its GPUs, and derive maxNumSeqs from the predicted KV cache. "
        "Turn off only for what the planner cannot model (hybrid recurrent models, flags that shrink the model).",
    )
    prefix_caching: bool = Field(True, description="--enable-prefix-caching (shared system prompts are computed once).")
    extra_args: list[str] = Field(
        default_factory=list, description=f"More vLLM {VLLM_VERSION} flags; unknown, removed or platform-owned flags are errors."
    )
    min_replicas: int = Field(1, ge=1, le=1000, description="Replicas always running (scaling.scaleToZero may still idle to zero).")
    max_replicas: int = Field(1, ge=1, le=1000, description="Most replicas KEDA scales to.")
    capacity: Literal["on-demand", "spot-allowed", "spot-preferred"] = Field(
        "on-demand",
        description="on-demand: never on spot. spot-allowed: prefer on-demand, burst onto spot. spot-preferred: spot first.",
    )
    scaling: ScalingConfig = Field(ScalingConfig(), description="Autoscaling signals and behaviour.")
    resources: ResourcesConfig = Field(ResourcesConfig(), description="CPU and memory per replica.")
    load_timeout: GoDuration | None = Field(
        None,
        description="Longest a replica may take from its container's start to ready (weights, engine start) before it counts as failed "
        "(startupProbe). Default: twice what the scale-out budget gives those phases, at least 5m (20m when the planner cannot size the model).",
    )
    drain_seconds: int = Field(
        60, ge=5, le=3600, description="Time in-flight requests get to finish when a pod stops (spot notice is 120s)."
    )
    download_timeout: PositiveGoDuration = Field("3h", description="Longest the weight download Job may run.")
    access: AccessConfig = Field(AccessConfig(), description="Namespaces and ingress allowed to call the model.")
    warm_headroom: int | None = Field(
        None, ge=0, le=16, description="Spare replica slots held for this model by placeholder pods (default: the stack's scaleOut.warmHeadroom)."
    )
    weight_loader: WeightLoader | None = Field(
        None,
        description="How vLLM reads this model's weights (default: the stack's scaleOut.weightLoader); 'safetensors' for "
        "checkpoints the Run:ai streamer cannot read (PyTorch .bin only, GGUF).",
    )
    priority: int | None = Field(
        None,
        ge=-100,
        le=100,
        description="Its requests' priority at the gateway (an InferenceObjective): below 0 they are sheddable, "
        "refused with 429 while every replica is saturated instead of queueing. Needs routing.",
    )

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        problems: list[Problem] = []
        if self.max_replicas < self.min_replicas:
            problems.append((("maxReplicas",), f"must be ≥ minReplicas ({self.min_replicas})"))
        problems += [(("extraArgs", i), msg) for i, msg in extra_arg_problems(self.extra_args)]
        problems += [(("extraArgs", i), msg) for i, msg in memory_flags(self.extra_args)[1]]
        if self.architecture and not self.fit_check:
            problems.append((("architecture",), "unused with fitCheck: false (the planner reads it only for the check)"))
        tag = image_tag(self.image) or ""
        if len(image_name(self.image)) > NAME_MAX:
            problems.append((("image",), f"the name before the tag is {len(image_name(self.image))} characters; registries take at most {NAME_MAX}"))
        if "@" not in self.image and tag in ("", "latest"):
            problems.append(
                (("image",), f"{'no tag means latest' if not tag else 'latest'}, which moves: name a release tag "
                 f"(v{VLLM_VERSION}) or a digest, so every node runs the vLLM the flags are checked against")
            )
        if re.fullmatch(r"v?[0-9]+\.[0-9]+(\.[0-9]+)?", tag) and not re.fullmatch(rf"v?{re.escape(VLLM_VERSION.rsplit('.', 1)[0])}(\.\d+)?", tag):
            problems.append(
                (("image",), f"tag {tag} is not vLLM {VLLM_VERSION.rsplit('.', 1)[0]}.x; flags and metrics are checked against {VLLM_VERSION}")
            )
        if self.is_local_path and self.gated:
            problems.append((("gated",), "only for Hugging Face models; a path on the weights volume needs no token"))
        if self.is_local_path and self.revision != "main":
            problems.append((("revision",), "only for Hugging Face models"))
        if memory_bytes(self.shm_size) >= memory_bytes(self.memory):
            problems.append((("resources", "shmSize"), f"must be less than the pod memory ({self.memory}): /dev/shm counts against it"))
        if self.load_timeout is not None and duration_seconds(self.load_timeout) < 60:
            problems.append((("loadTimeout",), "at least 1m: vLLM takes longer than that to start"))
        raise_problems(problems)
        return self

    # Set by the stack from the model's scale-out budget (config/scale_out.py): how long the pod may
    # take to start, and what comes before its container starts (node, GPU stack, image).
    _derived_load_seconds: int | None = PrivateAttr(None)
    _derived_before_start_seconds: int | None = PrivateAttr(None)
    _compile_cache: bool = PrivateAttr(False)  # the stack's scaleOut.compileCache
    _stack_headroom: int = PrivateAttr(0)  # the stack's scaleOut.warmHeadroom
    _stack_weight_loader: WeightLoader = PrivateAttr("runai-streamer")  # the stack's scaleOut.weightLoader
    _metrics_seconds: int = PrivateAttr(5)  # the stack's scaleOut.metricsInterval

    @property
    def compile_cache(self) -> bool:
        return self._compile_cache

    @property
    def headroom_slots(self) -> int:
        """Placeholder pods holding warm slots for this model."""
        return self._stack_headroom if self.warm_headroom is None else self.warm_headroom

    @property
    def metrics_seconds(self) -> int:
        """How often Prometheus scrapes the model's vLLM metrics."""
        return self._metrics_seconds

    @property
    def loader(self) -> WeightLoader:
        """How vLLM reads the weights: the model's choice, else the stack's."""
        return self._stack_weight_loader if self.weight_loader is None else self.weight_loader

    @property
    def load_seconds(self) -> int:
        """The startup probe's window."""
        if self.load_timeout is not None:
            return duration_seconds(self.load_timeout)
        return self._derived_load_seconds or DEFAULT_LOAD_SECONDS

    @property
    def before_start_seconds(self) -> int:
        """What a new replica may wait for before its container starts (node launch, GPU stack, image pull)."""
        return self._derived_before_start_seconds or DEFAULT_BEFORE_START_SECONDS

    @property
    def is_local_path(self) -> bool:
        return self.model.startswith("/")

    @property
    def served_name(self) -> str:
        return self.served_model_name or self.name

    @property
    def namespace_name(self) -> str:
        return self.namespace or self.name

    @property
    def cpu(self) -> str:
        return self.resources.cpu or str(2 * self.gpus_per_replica)

    @property
    def memory(self) -> str:
        return self.resources.memory or f"{12 * self.gpus_per_replica}Gi"

    @property
    def shm_size(self) -> str:
        return self.resources.shm_size or ("8Gi" if self.gpus_per_replica > 1 else "2Gi")

    @property
    def allows_spot(self) -> bool:
        return self.capacity != "on-demand"


class ModelPolicy(ConfigModel):
    """Stack-wide rules for model services."""

    allow_scale_to_zero: bool = Field(
        False, description="Models may set scaling.scaleToZero. Keep off in production: a cold start takes minutes."
    )
    require_pinned_revisions: bool = Field(
        False,
        description="Every model's revision must be a 40-character commit sha: a branch such as main moves, so two "
        "replicas (or a re-download) could serve different weights. Production stacks set it.",
    )
    require_pinned_images: bool = Field(
        False,
        description="Every model's image must name a digest (`name:tag@sha256:<digest>`): a moved tag would let two "
        "nodes run different builds under one name. Set it once your registry's digests are recorded "
        "(`python -m stacks images --resolve` for the default image).",
    )
