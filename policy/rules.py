"""The guardrails, as plain functions of what the engine hands a policy: a resource's type token,
its inputs in wire names (camelCase), its URN and name; a stack rule sees every resource.

They live apart from `PolicyPack(...)` (constructing it starts the policy server, see
`__main__.py`), so the tests and `python -m stacks policy PLAN.json` call them directly. This
module imports only the standard library: the pack runs in its own virtualenv with
`pulumi-policy` alone, never the project's packages (a test checks its constants against theirs).

Each rule returns its violations as messages; an empty list passes. Values a preview cannot know
are skipped, never reported: a policy must not fail a PR for what only the cloud will decide.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = ("nvidia.com/gpu", "present", "NoSchedule")
NODE_ROLE_LABEL = "llm-platform.io/node-role"
CAPACITY_LABEL = "llm-platform.io/capacity-type"
PUBLIC_ALLOW_LABEL = "llm-platform.io/public"  # "true" on a Service, Ingress or Gateway meant for the internet
VLLM_APP = "vllm"
PROD_MIN_REPLICAS = 2
UNKNOWN = ("<computed>", "04da6b54-80e4-46f7-96ec-b56ff0331ba9")  # the offline plan's, the engine's

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
WORKLOADS = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
}
_CREDENTIAL_NAME = re.compile(r"(^|_)(TOKEN|PASSWORD|SECRET|API_?KEY|ACCESS_KEY)$", re.IGNORECASE)
_CREDENTIAL_KEY = re.compile(r"(password|token|secret|apikey|api_key|secretkey|accesskey)$", re.IGNORECASE)
# Keys that name where a credential is kept (a Secret's name), not the credential itself.
_REFERENCE_KEY = re.compile(r"^existing|secret_?name$|secretref$", re.IGNORECASE)


@dataclass(frozen=True)
class Resource:
    type: str
    props: Mapping[str, Any]
    urn: str
    name: str


ResourceRule = Callable[[Resource], list[str]]
StackRule = Callable[[list[Resource], Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    level: Literal["mandatory", "advisory"]
    resource: ResourceRule | None = None
    stack: StackRule | None = None


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _known(value: Any) -> bool:
    return value is not None and value not in UNKNOWN


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def pod_spec(resource: Resource) -> Mapping[str, Any] | None:
    path = WORKLOADS.get(resource.type)
    spec = _get(resource.props, *path) if path else None
    return spec if isinstance(spec, Mapping) else None


def _gpu_containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    return [c for c in containers if GPU_RESOURCE in (_get(c, "resources", "limits") or {}) or GPU_RESOURCE in (_get(c, "resources", "requests") or {})]


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: tuple[str, str, str]) -> bool:
    """Whether Kubernetes would admit a pod with these tolerations onto a node with this taint."""
    key, value, effect = taint
    for t in tolerations:
        if t.get("effect") not in (None, "", effect):
            continue
        if t.get("operator") == "Exists" and t.get("key") in (None, key):
            return True
        if t.get("key") == key and t.get("operator", "Equal") == "Equal" and t.get("value", "") == value:
            return True
    return False


# --- resource rules ---------------------------------------------------------------------------


def helm_chart_pinned(resource: Resource) -> list[str]:
    if resource.type != HELM_RELEASE:
        return []
    version = resource.props.get("version")
    return [] if version and isinstance(version, str) else [f"Helm release {resource.props.get('name', resource.name)!r} pins no chart version"]


def gpu_workload_scheduling(resource: Resource) -> list[str]:
    """A GPU pod tolerates the GPU taint and asks for whole GPUs, request = limit."""
    spec = pod_spec(resource)
    if spec is None:
        return []
    problems = []
    gpu = _gpu_containers(spec)
    if gpu and not tolerates(spec.get("tolerations") or [], GPU_TAINT):
        problems.append("requests GPUs but does not tolerate nvidia.com/gpu=present:NoSchedule")
    for container in gpu:
        limit = _get(container, "resources", "limits", GPU_RESOURCE)
        request = _get(container, "resources", "requests", GPU_RESOURCE)
        if not _known(limit) or not _known(request if request is not None else limit):
            continue
        whole = _number(limit)
        if whole is None or whole < 1 or whole != int(whole):
            problems.append(f"container {container.get('name')!r}: GPU limit {limit!r} is not a whole number of GPUs")
        elif request is not None and _number(request) != whole:
            problems.append(f"container {container.get('name')!r}: GPU request {request!r} differs from its limit {limit!r}")
    return problems


def _arg(args: list[Any], flag: str) -> str | None:
    for i, token in enumerate(args):
        if token == flag and i + 1 < len(args):
            return str(args[i + 1])
        if isinstance(token, str) and token.startswith(flag + "="):
            return token.split("=", 1)[1]
    return None


def _vllm_container(spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The container that runs the vLLM server: a vLLM image whose command is the image's own
    (`vllm serve`) or names vllm. The same image running something else (a warm-headroom
    placeholder's `sleep`) serves nothing, so the server rules do not apply to it."""
    for container in spec.get("containers") or []:
        if "vllm" not in str(container.get("image", "")):
            continue
        command = [str(c) for c in container.get("command") or []]
        if not command or "vllm" in " ".join(command[:3]):
            return container
    return None


def tensor_parallel_matches_gpus(resource: Resource) -> list[str]:
    spec = pod_spec(resource)
    container = _vllm_container(spec) if spec else None
    if container is None:
        return []
    args = [*(container.get("command") or []), *(container.get("args") or [])]
    tp = _number(_arg(args, "--tensor-parallel-size") or 1)
    limit = _number(_get(container, "resources", "limits", GPU_RESOURCE))
    if limit is not None and tp != limit:
        return [f"--tensor-parallel-size {tp:g} but {limit:g} GPUs: the rest sit idle, or vLLM fails to start"]
    return []


def startup_probe_covers_load(resource: Resource, shortest_load_seconds: int = 300) -> list[str]:
    spec = pod_spec(resource)
    container = _vllm_container(spec) if spec else None
    if container is None or resource.type != "kubernetes:apps/v1:Deployment":
        return []
    probe = container.get("startupProbe")
    if not probe:
        return ["vLLM container has no startupProbe: the liveness probe would kill it while it loads weights"]
    budget = (_number(probe.get("failureThreshold")) or 3) * (_number(probe.get("periodSeconds")) or 10)
    if budget < shortest_load_seconds:
        return [f"startupProbe allows {budget:g} s to load; loading weights takes longer than {shortest_load_seconds} s"]
    return []


def grace_covers_pre_stop_and_drain(resource: Resource) -> list[str]:
    spec = pod_spec(resource)
    container = _vllm_container(spec) if spec else None
    if container is None:
        return []
    pre_stop = _number(_get(container, "lifecycle", "preStop", "sleep", "seconds")) or 0
    args = [*(container.get("command") or []), *(container.get("args") or [])]
    drain = _number(_arg(args, "--shutdown-timeout")) or 0
    grace = _number(spec.get("terminationGracePeriodSeconds"))
    grace = 30 if grace is None else grace  # Kubernetes' default
    if grace < pre_stop + drain:
        return [f"terminationGracePeriodSeconds {grace:g} < preStop {pre_stop:g} + drain {drain:g}: in-flight requests are killed"]
    return []


def no_public_endpoint_without_allow_label(resource: Resource) -> list[str]:
    labels = _get(resource.props, "metadata", "labels") or {}
    if labels.get(PUBLIC_ALLOW_LABEL) == "true":
        return []
    if resource.type == "kubernetes:core/v1:Service" and _get(resource.props, "spec", "type") == "LoadBalancer":
        annotations = _get(resource.props, "metadata", "annotations") or {}
        internal = any(k.endswith(("load-balancer-internal", "aws-load-balancer-scheme")) and str(v).lower() in ("true", "internal") for k, v in annotations.items())
        return [] if internal else [f"a LoadBalancer Service without the {PUBLIC_ALLOW_LABEL}=true label"]
    if resource.type == "kubernetes:networking.k8s.io/v1:Ingress":
        scheme = (_get(resource.props, "metadata", "annotations") or {}).get("alb.ingress.kubernetes.io/scheme")
        return [f"an internet-facing Ingress without the {PUBLIC_ALLOW_LABEL}=true label"] if scheme == "internet-facing" else []
    if resource.type == "kubernetes:gateway.networking.k8s.io/v1:Gateway":
        # GKE's external classes (gke-l7-global-external-managed, gke-l7-regional-external-managed, …)
        gateway_class = str(_get(resource.props, "spec", "gatewayClassName") or "")
        return [f"an internet-facing Gateway ({gateway_class}) without the {PUBLIC_ALLOW_LABEL}=true label"] if "external" in gateway_class else []
    return []


def _plaintext_values(values: Any, path: str = "") -> Iterable[str]:
    if isinstance(values, Mapping):
        for key, value in values.items():
            where = f"{path}.{key}" if path else str(key)
            if (
                isinstance(value, str)
                and value
                and _CREDENTIAL_KEY.search(str(key))
                and not _REFERENCE_KEY.search(str(key))
                and value not in ("[secret]", *UNKNOWN)
            ):
                yield where
            yield from _plaintext_values(value, where)
    elif isinstance(values, list):
        for i, value in enumerate(values):
            yield from _plaintext_values(value, f"{path}[{i}]")


def no_plaintext_credentials(resource: Resource) -> list[str]:
    problems = []
    spec = pod_spec(resource)
    for container in [*((spec or {}).get("containers") or []), *((spec or {}).get("initContainers") or [])]:
        for env in container.get("env") or []:
            value = env.get("value")
            if _CREDENTIAL_NAME.search(str(env.get("name", ""))) and isinstance(value, str) and value and value not in ("[secret]", *UNKNOWN):
                problems.append(f"container {container.get('name')!r}: {env['name']} is a credential in plain text; use valueFrom.secretKeyRef")
    if resource.type == HELM_RELEASE:
        problems += [f"Helm value {where} is a credential in plain text; use the chart's existingSecret" for where in _plaintext_values(resource.props.get("values"))]
    return problems


def gpu_node_pools_tainted(resource: Resource) -> list[str]:
    """Every GPU node pool, on every cloud, carries nvidia.com/gpu=present:NoSchedule."""
    props, key, value, effect = resource.props, *GPU_TAINT
    if resource.type == "aws:eks/nodeGroup:NodeGroup" and (props.get("labels") or {}).get(NODE_ROLE_LABEL) == "gpu":
        ok = any(t.get("key") == key and t.get("value") == value and t.get("effect") == "NO_SCHEDULE" for t in props.get("taints") or [])
    elif resource.type == "gcp:container/nodePool:NodePool" and _get(props, "nodeConfig", "guestAccelerators"):
        ok = any(t.get("key") == key and t.get("value") == value and t.get("effect") == "NO_SCHEDULE" for t in _get(props, "nodeConfig", "taints") or [])
    elif resource.type == "azure-native:containerservice:AgentPool" and (props.get("nodeLabels") or {}).get(NODE_ROLE_LABEL) == "gpu":
        ok = f"{key}={value}:{effect}" in (props.get("nodeTaints") or [])
    elif resource.type == "kubernetes:karpenter.sh/v1:NodePool":
        ok = any((t.get("key"), t.get("value"), t.get("effect")) == GPU_TAINT for t in _get(props, "spec", "template", "spec", "taints") or [])
    else:
        return []
    return [] if ok else ["a GPU node pool without the nvidia.com/gpu=present:NoSchedule taint: any CPU pod could take its nodes"]


def image_pinned_by_digest(resource: Resource) -> list[str]:
    spec = pod_spec(resource)
    container = _vllm_container(spec) if spec else None
    if container is None or "@sha256:" in str(container.get("image", "")):
        return []
    return [f"vLLM image {container.get('image')!r} is a tag, not a digest: a re-pushed tag changes what serves"]


# --- stack rules ------------------------------------------------------------------------------


def is_prod_stack(stack: str) -> bool:
    """The project's convention, shared with the workflows (deploy's production environment): a
    stack whose name starts with `prod` is production."""
    return stack.startswith("prod")


def _is_prod(resources: list[Resource], config: Mapping[str, Any]) -> bool:
    stacks = {r.urn.split("::", 2)[0].removeprefix("urn:pulumi:") for r in resources}
    if "prodStacks" in config:
        return bool(stacks & set(config["prodStacks"]))
    return any(is_prod_stack(s) for s in stacks)


def _gpu_pools(resources: list[Resource]) -> list[tuple[str, bool]]:
    """(pool, spot?) for every GPU node pool of any cloud, Karpenter NodePools included."""
    pools = []
    for r in resources:
        p = r.props
        if r.type == "aws:eks/nodeGroup:NodeGroup" and (p.get("labels") or {}).get(NODE_ROLE_LABEL) == "gpu":
            pools.append((r.name, p.get("capacityType") == "SPOT"))
        elif r.type == "gcp:container/nodePool:NodePool" and _get(p, "nodeConfig", "guestAccelerators"):
            pools.append((r.name, bool(_get(p, "nodeConfig", "spot"))))
        elif r.type == "azure-native:containerservice:AgentPool" and (p.get("nodeLabels") or {}).get(NODE_ROLE_LABEL) == "gpu":
            pools.append((r.name, p.get("scaleSetPriority") == "Spot"))
        elif r.type == "kubernetes:karpenter.sh/v1:NodePool":
            labels = _get(p, "spec", "template", "metadata", "labels") or {}
            pools.append((r.name, labels.get(CAPACITY_LABEL) == "spot"))
    return pools


def prod_keeps_on_demand_and_two_replicas(resources: list[Resource], config: Mapping[str, Any]) -> list[str]:
    if not _is_prod(resources, config):
        return []
    problems = []
    pools = _gpu_pools(resources)
    if pools and all(spot for _, spot in pools):
        problems.append("every GPU pool is spot: one spot reclaim wave takes every model down")
    for r in resources:
        if r.type == "kubernetes:keda.sh/v1alpha1:ScaledObject":
            low = _number(_get(r.props, "spec", "minReplicaCount"))
            if low is not None and low < PROD_MIN_REPLICAS:
                problems.append(f"{r.name}: minReplicaCount {low:g}; prod keeps at least {PROD_MIN_REPLICAS} replicas per model")
    return problems


def model_deployments_have_disruption_budgets(resources: list[Resource], config: Mapping[str, Any]) -> list[str]:
    budgets = [
        (_get(r.props, "metadata", "namespace"), _get(r.props, "spec", "selector", "matchLabels") or {})
        for r in resources
        if r.type == "kubernetes:policy/v1:PodDisruptionBudget"
    ]
    problems = []
    for r in resources:
        if r.type != "kubernetes:apps/v1:Deployment":
            continue
        labels = _get(r.props, "spec", "template", "metadata", "labels") or {}
        if labels.get("app.kubernetes.io/name") != VLLM_APP:
            continue
        namespace = _get(r.props, "metadata", "namespace")
        if not any(ns == namespace and selector and selector.items() <= labels.items() for ns, selector in budgets):
            problems.append(f"{r.name}: no PodDisruptionBudget selects its pods: a node drain may take every replica at once")
    return problems


def gpus_within_budget(resources: list[Resource], config: Mapping[str, Any]) -> list[str]:
    """Advisory: the GPUs the stack may run at maximum scale, against `maxGpus` in the policy config."""
    budget = config.get("maxGpus")
    if budget is None:
        return []
    total = 0.0
    for r in resources:
        p = r.props
        if r.type == "aws:eks/nodeGroup:NodeGroup" and (p.get("labels") or {}).get(NODE_ROLE_LABEL) == "gpu":
            total += (_number(_get(p, "scalingConfig", "maxSize")) or 0) * (_number((p.get("labels") or {}).get("llm-platform.io/gpu-count")) or 0)
        elif r.type == "gcp:container/nodePool:NodePool" and _get(p, "nodeConfig", "guestAccelerators"):
            count = sum(_number(a.get("count")) or 0 for a in _get(p, "nodeConfig", "guestAccelerators"))
            total += (_number(_get(p, "autoscaling", "totalMaxNodeCount")) or 0) * count
        elif r.type == "azure-native:containerservice:AgentPool" and (p.get("nodeLabels") or {}).get(NODE_ROLE_LABEL) == "gpu":
            total += (_number(p.get("maxCount")) or 0) * (_number((p.get("nodeLabels") or {}).get("llm-platform.io/gpu-count")) or 0)
        elif r.type == "kubernetes:karpenter.sh/v1:NodePool":
            total += _number(_get(p, "spec", "limits", GPU_RESOURCE)) or 0
    return [f"up to {total:g} GPUs at maximum scale, over the budget of {budget}"] if total > budget else []


RULES: tuple[Rule, ...] = (
    Rule("helm-chart-version-pinned", "Every Helm release pins its chart version.", "mandatory", resource=helm_chart_pinned),
    Rule("gpu-workload-scheduling", "GPU pods tolerate the GPU taint and request whole GPUs, request = limit.", "mandatory", resource=gpu_workload_scheduling),
    Rule("vllm-tensor-parallel-equals-gpus", "vLLM's --tensor-parallel-size equals its GPU limit.", "mandatory", resource=tensor_parallel_matches_gpus),
    Rule("vllm-startup-probe-covers-load", "Model Deployments have a startup probe that covers loading weights.", "mandatory", resource=startup_probe_covers_load),
    Rule("grace-covers-prestop-and-drain", "terminationGracePeriodSeconds ≥ preStop sleep + vLLM's drain.", "mandatory", resource=grace_covers_pre_stop_and_drain),
    Rule("no-public-endpoint-without-label", "No LoadBalancer Service or internet-facing Ingress without llm-platform.io/public=true.", "mandatory", resource=no_public_endpoint_without_allow_label),
    Rule("no-plaintext-credentials", "No credential in plain text in a container's env or a Helm value.", "mandatory", resource=no_plaintext_credentials),
    Rule("gpu-node-pools-tainted", "Every GPU node pool carries nvidia.com/gpu=present:NoSchedule, on every cloud.", "mandatory", resource=gpu_node_pools_tainted),
    Rule("model-deployments-have-pdbs", "Every model Deployment has a PodDisruptionBudget selecting its pods.", "mandatory", stack=model_deployments_have_disruption_budgets),
    Rule("prod-on-demand-and-two-replicas", "Prod stacks are never all spot and keep ≥ 2 replicas per model.", "mandatory", stack=prod_keeps_on_demand_and_two_replicas),
    Rule("gpus-within-budget", "GPUs at maximum scale stay within the configured budget (maxGpus).", "advisory", stack=gpus_within_budget),
    Rule("vllm-image-pinned-by-digest", "vLLM images are pinned by digest.", "advisory", resource=image_pinned_by_digest),
)

# JSON Schemas of the rules that take policy config (the pack hands them to the engine, which
# validates `--policy-pack-config` files against them; `policy/config.json` is the project's).
CONFIG_SCHEMAS: dict[str, dict[str, Any]] = {
    "gpus-within-budget": {"maxGpus": {"type": "number", "minimum": 0}},
    "prod-on-demand-and-two-replicas": {"prodStacks": {"type": "array", "items": {"type": "string"}}},
}


@dataclass(frozen=True)
class Violation:
    rule: str
    level: str
    urn: str | None
    message: str


def check(resources: list[Resource], config: Mapping[str, Mapping[str, Any]] | None = None) -> list[Violation]:
    """Every rule over every resource, as the engine would run them; `config` maps a rule's name
    to its policy config."""
    config = config or {}
    violations = []
    for rule in RULES:
        if rule.resource is not None:
            for resource in resources:
                violations += [Violation(rule.name, rule.level, resource.urn, m) for m in rule.resource(resource)]
        if rule.stack is not None:
            violations += [Violation(rule.name, rule.level, None, m) for m in rule.stack(resources, config.get(rule.name, {}))]
    return violations
