"""Building blocks shared by the stack config models (`stack.py`) and the add-on models
(`addons.py`): the base model, constrained string types, and the GPU instance-type rules
that managed node groups and Karpenter NodePools must both obey.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from ..catalog.gpus import gpu_instance, gpu_instance_names, gpu_models
from ..scheduling import LABEL_DOMAIN, RESERVED_TAINT_KEYS, TaintEffect
from .errors import Problem

DNS_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_DNS_SUBDOMAIN = rf"{DNS_LABEL}(\.{DNS_LABEL})*"
# Kubernetes bounds (apimachinery validation.IsQualifiedName, IsDNS1123Subdomain, IsValidLabelValue)
LABEL_NAME_MAX, LABEL_PREFIX_MAX, LABEL_VALUE_MAX = 63, 253, 63
# Durations Kubernetes stores as int32 seconds (probes, deadlines, cooldowns) cannot be longer.
INT32_MAX = 2**31 - 1


def formatted(pattern: str, what: str, *, min_length: int | None = None, max_length: int | None = None):
    """A string type whose error says what is expected in words, not as a regular expression.

    Matched with ASCII classes: Python's `\\d` and `\\w` also match other scripts' digits and
    letters (`us-west-٢`, `1.٣٥`), which no cloud API or Kubernetes field accepts."""
    compiled = re.compile(pattern, re.ASCII)

    def check(value: str) -> str:
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"too long ({len(value)} characters, at most {max_length}): expected {what}")
        if min_length is not None and len(value) < min_length:
            raise ValueError(f"{value!r} is too short (at least {min_length} characters): expected {what}")
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    schema: dict[str, object] = {"pattern": f"^{pattern}$"}
    if min_length is not None:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    return Annotated[str, AfterValidator(check), Field(json_schema_extra=schema)]


def _label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if not re.fullmatch(_LABEL_NAME, name, re.ASCII):
        raise ValueError(f"{value!r} is not a Kubernetes label key: the name{' after the prefix' if prefix else ''} is letters, digits, '-', '_' and '.', starting and ending with a letter or digit")
    if len(name) > LABEL_NAME_MAX:
        raise ValueError(f"{value!r}: the name part of a label key is at most {LABEL_NAME_MAX} characters (it has {len(name)})")
    if "/" in value and not re.fullmatch(_DNS_SUBDOMAIN, prefix, re.ASCII):
        raise ValueError(f"{value!r}: the prefix of a label key is a lowercase DNS name such as team.example.com")
    if len(prefix) > LABEL_PREFIX_MAX:
        raise ValueError(f"{value!r}: the prefix of a label key is at most {LABEL_PREFIX_MAX} characters (it has {len(prefix)})")
    return value


PoolName = formatted(DNS_LABEL, "a pool name: a lowercase DNS label of at most 30 characters, such as l4-spot", min_length=1, max_length=30)
LabelKey = Annotated[str, AfterValidator(_label_key), Field(json_schema_extra={"maxLength": LABEL_PREFIX_MAX + 1 + LABEL_NAME_MAX})]
LabelValue = formatted(f"({_LABEL_NAME})?", "a Kubernetes label value: at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit", max_length=LABEL_VALUE_MAX)
# m7i.large (AWS), g2-standard-8 (GCP), Standard_NC24ads_A100_v4 (Azure)
InstanceTypeName = formatted(r"[a-z][a-z0-9-]*(\.[a-z0-9-]+)?|Standard_[A-Za-z0-9_]+", "an instance type such as g6.xlarge, g2-standard-8 or Standard_NC24ads_A100_v4")


def _bounded_duration(pattern: str, what: str, units: dict[str, int], *, positive: bool):
    compiled = re.compile(pattern, re.ASCII)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        seconds = sum(int(n) * units[u] for n, u in re.findall(r"([0-9]+)([a-z]+)", value))
        if positive and seconds == 0:
            raise ValueError(f"{value!r} is zero: this duration must be longer than 0s")
        if seconds > INT32_MAX:
            raise ValueError(f"{value!r} is longer than Kubernetes can store ({INT32_MAX} seconds, about 68 years)")
        return value

    return Annotated[str, AfterValidator(check), Field(json_schema_extra={"pattern": f"^{pattern}$"})]


_DURATION_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_PROMETHEUS_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}

# Prometheus durations (retention): a number and one unit.
PrometheusDuration = _bounded_duration(r"[1-9][0-9]*(m|h|d|w|y)", "a Prometheus duration such as 12h, 15d or 4w", _PROMETHEUS_UNIT_SECONDS, positive=True)
# Go durations as Karpenter and our Kubernetes fields read them (consolidateAfter, loadTimeout), e.g. 10m, 720h, 1h30m.
_GO_DURATION = r"([0-9]+(s|m|h))+"
_GO_DURATION_WORDS = "a duration such as 30s, 10m, 720h or 1h30m"
GoDuration = _bounded_duration(_GO_DURATION, _GO_DURATION_WORDS, _DURATION_UNIT_SECONDS, positive=False)
# The same where Kubernetes needs more than zero (a Job's activeDeadlineSeconds, a probe's window).
PositiveGoDuration = _bounded_duration(_GO_DURATION, _GO_DURATION_WORDS, _DURATION_UNIT_SECONDS, positive=True)


def duration_seconds(duration: str) -> int:
    """Seconds in a GoDuration ("1h30m" -> 5400), for fields Kubernetes takes as integers."""
    return sum(int(n) * _DURATION_UNIT_SECONDS[u] for n, u in re.findall(r"([0-9]+)([smh])", duration))


def _known_gpu_type(value: str) -> str:
    if value not in gpu_models():
        raise ValueError(f"unknown GPU type {value!r} (known: {', '.join(sorted(gpu_models()))})")
    return value


GpuType = Annotated[str, AfterValidator(_known_gpu_type), Field(json_schema_extra={"enum": sorted(gpu_models())})]


def _takes_numbers_only(annotation: Any) -> bool:
    """Whether a field's type is int or float (or optional of one), with no bool or str in it."""
    args = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    kinds = {a for a in args if a is not type(None)}
    return bool(kinds) and kinds <= {int, float}


class ConfigModel(BaseModel):
    """camelCase in YAML, snake_case in Python; unknown keys are errors (a typo must not be ignored);
    `true` is not a number and `.nan` or `.inf` are not sizes (pydantic's lax mode takes all three)."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid", frozen=True,
        allow_inf_nan=False,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_yes_no_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name and _takes_numbers_only(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"must be a number, not {str(value).lower()}")
        return value


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
