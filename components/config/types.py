"""Building blocks shared by the stack config models (`stack.py`) and the add-on models
(`addons.py`): the base model, constrained string types, and the GPU instance-type rules
that managed node groups and Karpenter NodePools must both obey.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from ..catalog.gpus import gpu_instance, gpu_instance_names, gpu_models
from ..scheduling import LABEL_DOMAIN, RESERVED_TAINT_KEYS, TaintEffect
from .errors import Problem

DNS_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_LABEL_KEY = rf"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?{_LABEL_NAME}$"

PoolName = Annotated[str, StringConstraints(pattern=rf"^{DNS_LABEL}$", min_length=1, max_length=30)]
LabelKey = Annotated[str, StringConstraints(pattern=_LABEL_KEY, max_length=316)]
LabelValue = Annotated[str, StringConstraints(pattern=rf"^({_LABEL_NAME})?$", max_length=63)]
# m7i.large (AWS), g2-standard-8 (GCP), Standard_NC24ads_A100_v4 (Azure)
InstanceTypeName = Annotated[str, StringConstraints(pattern=r"^([a-z][a-z0-9-]*(\.[a-z0-9-]+)?|Standard_[A-Za-z0-9_]+)$")]


def formatted(pattern: str, what: str):
    """A string type whose error says what is expected in words, not as a regular expression."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return Annotated[str, AfterValidator(check), Field(json_schema_extra={"pattern": f"^{pattern}$"})]


# Prometheus durations (retention): a number and one unit.
PrometheusDuration = formatted(r"[1-9]\d*(m|h|d|w|y)", "a Prometheus duration such as 12h, 15d or 4w")
# Go durations as Karpenter reads them (consolidateAfter, expireAfter), e.g. 10m, 720h, 1h30m.
GoDuration = formatted(r"([0-9]+(s|m|h))+", "a duration such as 30s, 10m, 720h or 1h30m")

_DURATION_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(duration: str) -> int:
    """Seconds in a GoDuration ("1h30m" -> 5400), for fields Kubernetes takes as integers."""
    return sum(int(n) * _DURATION_UNIT_SECONDS[u] for n, u in re.findall(r"(\d+)([smh])", duration))


def _known_gpu_type(value: str) -> str:
    if value not in gpu_models():
        raise ValueError(f"unknown GPU type {value!r} (known: {', '.join(sorted(gpu_models()))})")
    return value


GpuType = Annotated[str, AfterValidator(_known_gpu_type), Field(json_schema_extra={"enum": sorted(gpu_models())})]


class ConfigModel(BaseModel):
    """camelCase in YAML, snake_case in Python; unknown keys are errors (a typo must not be ignored)."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid", frozen=True
    )


class TaintConfig(ConfigModel):
    key: LabelKey
    value: LabelValue = ""
    effect: TaintEffect = "NoSchedule"


def one_architecture(instance_types: list[str], arch_of) -> list[Problem]:
    archs = {t: arch_of(t) for t in instance_types}
    first = instance_types[0] if instance_types else None
    return [
        (("instanceTypes", i), f"{t} is {archs[t]} but {first} is {archs[first]}: a node group runs one AMI architecture")
        for i, t in enumerate(instance_types)
        if first and archs[t] != archs[first]
    ]


# Karpenter's NodePool CRD (v1.14.1) refuses template labels whose first segment ends in these
# (CEL: `!x.find("^([^/]+)").endsWith("karpenter.sh")`), bar a few it sets itself.
KARPENTER_LABEL_DOMAINS = ("karpenter.sh", "karpenter.k8s.aws")


def label_problems(labels: Mapping[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    for key in labels:
        domain = key.split("/", 1)[0] if "/" in key else ""
        first_segment = key.split("/", 1)[0]  # what Karpenter's rules test, prefix or not
        if domain == LABEL_DOMAIN or domain.endswith("." + LABEL_DOMAIN):
            problems.append((("labels", key), f"the {LABEL_DOMAIN}/ prefix is set by the platform"))
        elif domain.endswith("kubernetes.io") or domain.endswith("k8s.io"):
            problems.append((("labels", key), "kubernetes.io and k8s.io labels are reserved for Kubernetes and EKS"))
        elif first_segment.endswith(KARPENTER_LABEL_DOMAINS):
            problems.append((("labels", key), "karpenter.sh and karpenter.k8s.aws labels are set by Karpenter (its NodePool CRD refuses them)"))
    return problems


def taint_problems(taints: list[TaintConfig]) -> list[Problem]:
    return [
        (("taints", i, "key"), f"{t.key} is set by the platform (GPU and spot taints)")
        for i, t in enumerate(taints)
        if t.key in RESERVED_TAINT_KEYS
    ]


class GpuInstanceSet(ConfigModel):
    """Instance types that all carry `gpusPerNode` GPUs of `gpuType`: workloads request GPUs and pick
    nodes by those two values, so a pool mixing sizes with different GPU counts would misplace
    tensor-parallel pods. Shared by managed node groups and Karpenter NodePools."""

    gpu_type: GpuType = Field(description="GPU model every instance type carries.")
    gpus_per_node: int = Field(ge=1, le=16, description="GPUs every instance type carries.")
    instance_types: list[InstanceTypeName] = Field(
        min_length=1, description="Instance types with that GPU and count; several sizes help spot capacity."
    )

    def instance_set_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if len(set(self.instance_types)) != len(self.instance_types):
            problems.append((("instanceTypes",), "lists an instance type twice"))
        for i, name in enumerate(self.instance_types):
            problems += [(("instanceTypes", i), msg) for msg in self._instance_type_problems(name)]
        if not any(loc[0] == "instanceTypes" for loc, _ in problems):
            problems += one_architecture(self.instance_types, lambda t: gpu_instance(t).arch)
        return problems

    def _instance_type_problems(self, name: str) -> list[str]:
        known = gpu_instance(name)
        if known is None:
            close = difflib.get_close_matches(name, gpu_instance_names(), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            return [f"{name} is not a known GPU instance type{hint}"]
        problems = []
        if known.gpu.key != self.gpu_type:
            problems.append(f"{name} carries {known.gpu.key}, not gpuType {self.gpu_type}")
        if known.gpus_per_node != self.gpus_per_node:
            problems.append(f"{name} has {known.gpus_per_node} GPU(s) per node, not gpusPerNode {self.gpus_per_node}")
        return problems
