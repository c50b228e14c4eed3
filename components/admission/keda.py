"""What KEDA v2.20.2 refuses in a ScaledObject: its admission webhook, and its operator on reconcile.

The webhook (`apis/keda/v1alpha1/scaledobject_webhook.go`, `validateWorkload`) runs, for every create
and update: `verifyName`, `verifyReplicaCount` (`CheckReplicaCountBoundsAreValid`), `verifyFallback`
(`CheckFallbackValid`), `verifyTriggers` (`ValidateTriggers`), and in `verifyScaledObjects` the
scalingModifiers checks (`ValidateAndCompileScalingModifiers`) and two warnings. Its other checks
need the cluster (another ScaledObject or HPA on the same workload, container requests for cpu/memory
triggers); `scaled_object_conflicts` covers the part our own objects can cause. The operator then
builds the scalers (`pkg/scalers/prometheus_scaler.go`, `cron_scaler.go`) and the HPA; a failure
there is not a refusal but a ScaledObject that never scales (Ready=False), so it is checked too.

One rule is ours rather than KEDA's and is marked as such: with a fallback, every trigger has an
`AverageValue` target. KEDA's own rule (since v2.18, #6655) only asks for one trigger that is not
cpu/memory, but its fallback for a `Value` target divides by the ready replicas and does nothing
when none is ready (`pkg/fallback/fallback.go`), which is when a fallback is needed most.
"""

from __future__ import annotations

import re
from typing import Any

from . import Finding
from .cron import cron_problem, timezone_problem
from .formula import formula_problem
from .promql import one_series_problem, promql_problem

VERSION = "KEDA v2.20.2"
MAX_LABEL_VALUE = 63  # maxK8sLabelValueLength: the names become label values
DEFAULT_MAX_REPLICAS = 100  # defaultHPAMaxReplicas
RESOURCE_TRIGGERS = frozenset({"cpu", "memory"})
PLATFORM_POLICY = "llm-platform policy: KEDA's fallback for a Value target needs ready replicas (pkg/fallback/fallback.go)"
HPA_MAX_PERIOD_SECONDS = 1800  # k8s.io/kubernetes pkg/apis/autoscaling/validation: MaxPeriodSeconds
HPA_MAX_STABILIZATION_SECONDS = 3600
_JSON_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
_JSON_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")
_GO_BOOL = frozenset({"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"})


def _webhook(function: str) -> str:
    return f"{VERSION} webhook, {function}"


def hpa_name(obj: dict[str, Any]) -> str:
    """The HPA KEDA creates for this ScaledObject (`getHpaName`)."""
    config = ((obj.get("spec") or {}).get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
    return config.get("name") or f"keda-hpa-{obj['metadata']['name']}"


def _name_findings(obj: dict[str, Any]) -> list[Finding]:
    name, source = obj["metadata"]["name"], _webhook("verifyName")
    if len(name.encode()) > MAX_LABEL_VALUE:
        return [
            Finding(
                ("metadata", "name"),
                f"scaledobject name {name!r} is {len(name)} characters long; must be no more than {MAX_LABEL_VALUE}",
                source,
            )
        ]
    hpa = hpa_name(obj)
    if len(hpa.encode()) > MAX_LABEL_VALUE:
        return [
            Finding(
                ("metadata", "name"),
                f"HPA name {hpa!r} derived from scaledobject is {len(hpa)} characters long; must be no more than {MAX_LABEL_VALUE}",
                source,
            )
        ]
    return []


def _replica_findings(spec: dict[str, Any]) -> list[Finding]:
    source = _webhook("CheckReplicaCountBoundsAreValid")
    configured_min = spec.get("minReplicaCount")
    # GetHPAMinReplicas: an explicit 0 counts as 1 here; an unset minimum as 0.
    minimum = 0 if configured_min is None else max(1, configured_min)
    maximum = spec.get("maxReplicaCount", DEFAULT_MAX_REPLICAS)
    if minimum > maximum:
        return [
            Finding(("spec", "minReplicaCount"), f"MinReplicaCount={minimum} must be less than MaxReplicaCount={maximum}", source)
        ]
    idle = spec.get("idleReplicaCount")
    if idle is not None and idle >= minimum:
        return [
            Finding(("spec", "idleReplicaCount"), f"IdleReplicaCount={idle} must be less than MinReplicaCount={minimum}", source)
        ]
    return []


def _uses_modifiers(spec: dict[str, Any]) -> bool:
    return any(((spec.get("advanced") or {}).get("scalingModifiers") or {}).values())


def _fallback_findings(spec: dict[str, Any]) -> list[Finding]:
    fallback = spec.get("fallback")
    if fallback is None:
        return []
    findings: list[Finding] = []
    if fallback.get("failureThreshold", 0) < 0 or fallback.get("replicas", 0) < 0:
        findings.append(
            Finding(
                ("spec", "fallback"),
                f"FailureThreshold={fallback.get('failureThreshold')} & Replicas={fallback.get('replicas')} must both be greater than or equal to 0",
                _webhook("CheckFallbackValid"),
            )
        )
    triggers = spec.get("triggers") or []
    if not _uses_modifiers(spec):
        if not any(t.get("type") not in RESOURCE_TRIGGERS for t in triggers):
            findings.append(
                Finding(
                    ("spec", "fallback"),
                    "at least one trigger (that is not cpu or memory) has to have the `AverageValue` type for the fallback to be enabled",
                    _webhook("CheckFallbackValid"),
                )
            )
        for i, trigger in enumerate(triggers):
            if trigger.get("type") not in RESOURCE_TRIGGERS and trigger.get("metricType", "AverageValue") != "AverageValue":
                findings.append(
                    Finding(
                        ("spec", "triggers", i, "metricType"),
                        f"a {trigger.get('metricType')} target with a fallback: KEDA divides the fallback by the ready replicas and "
                        "skips it when none is ready; use an AverageValue target over a sum",
                        PLATFORM_POLICY,
                    )
                )
    if fallback.get("behavior") == "scalingModifiers" and not ((spec.get("advanced") or {}).get("scalingModifiers") or {}).get(
        "formula"
    ):
        findings.append(
            Finding(
                ("spec", "fallback", "behavior"),
                "scalingModifiers fallback behavior requires scalingModifiers.formula to be defined",
                _webhook("verifyScaledObjects"),
            )
        )
    return findings


def _trigger_findings(spec: dict[str, Any]) -> list[Finding]:
    source = _webhook("ValidateTriggers")
    triggers = spec.get("triggers") or []
    if not triggers:
        return [Finding(("spec", "triggers"), "no triggers defined in the ScaledObject/ScaledJob", source)]
    findings, names = [], set()
    for i, trigger in enumerate(triggers):
        if trigger.get("useCachedMetrics") and trigger.get("type") in ("cpu", "memory", "cron"):
            findings.append(
                Finding(
                    ("spec", "triggers", i, "useCachedMetrics"),
                    f'property "useCachedMetrics" is not supported for "{trigger["type"]}" scaler',
                    source,
                )
            )
        name = trigger.get("name", "")
        if name and name in names:
            findings.append(
                Finding(
                    ("spec", "triggers", i, "name"),
                    f'triggerName "{name}" is defined multiple times in the ScaledObject/ScaledJob, but it must be unique',
                    source,
                )
            )
        names.add(name)
    return findings


def _modifier_findings(spec: dict[str, Any]) -> list[Finding]:
    if not _uses_modifiers(spec):
        return []
    modifiers = spec["advanced"]["scalingModifiers"]
    path, source = ("spec", "advanced", "scalingModifiers"), _webhook("ValidateAndCompileScalingModifiers")
    formula, target = modifiers.get("formula", ""), modifiers.get("target", "")
    if not formula:
        return [Finding((*path, "formula"), "error ScalingModifiers.Formula is mandatory", source)]
    if not target:
        return [
            Finding(
                (*path, "target"), "error validating formula in ScalingModifiers: formula is given but target is empty", source
            )
        ]
    names = frozenset(t["name"] for t in spec.get("triggers") or [] if t.get("name") and t.get("type") not in RESOURCE_TRIGGERS)
    problem = formula_problem(formula, names)
    if problem:
        return [Finding((*path, "formula"), f"error validating formula in ScalingModifiers: {problem}", source)]
    try:
        valid_target = float(target) > 0
    except ValueError:
        valid_target = False
    if not valid_target:
        return [
            Finding(
                (*path, "target"),
                f"error converting target for scalingModifiers (string->float) to valid target: {target!r}",
                source,
            )
        ]
    if modifiers.get("metricType") == "Utilization":
        return [
            Finding(
                (*path, "metricType"),
                "error trigger type is Utilization, but it needs to be AverageValue or Value for external metrics",
                source,
            )
        ]
    return []


def _warning_findings(spec: dict[str, Any]) -> list[Finding]:
    """The webhook's two warnings (`verifyScaledObjects`): accepted, but a setting that does nothing."""
    minimum, idle = spec.get("minReplicaCount") or 0, spec.get("idleReplicaCount")
    above_zero = minimum > 0 and idle != 0
    cached = any(t.get("useCachedMetrics") for t in spec.get("triggers") or [])
    findings = []
    if "pollingInterval" in spec and above_zero and not cached:
        findings.append(
            Finding(
                ("spec", "pollingInterval"),
                "PollingInterval is configured but is not relevant. PollingInterval is only relevant when minReplicaCount = 0 or "
                "idleReplicaCount = 0 or useCachedMetrics is enabled",
                _webhook("verifyScaledObjects"),
                "warning",
            )
        )
    if "cooldownPeriod" in spec and above_zero:
        findings.append(
            Finding(
                ("spec", "cooldownPeriod"),
                "CooldownPeriod is configured but is not relevant. CooldownPeriod is only relevant when minReplicaCount = 0 or idleReplicaCount = 0",
                _webhook("verifyScaledObjects"),
                "warning",
            )
        )
    return findings


def _metadata(trigger: dict[str, Any], key: str) -> str:
    return str((trigger.get("metadata") or {}).get(key, "")).strip()  # typed_config: blank means missing


def _prometheus_findings(path: tuple, trigger: dict[str, Any]) -> list[Finding]:
    source = f"{VERSION} prometheus scaler, parsePrometheusMetadata"
    findings = [
        Finding((*path, "metadata", key), f'missing required parameter "{key}" in [triggerMetadata]', source)
        for key in ("serverAddress", "query", "threshold")
        if not _metadata(trigger, key)
    ]
    for key in ("threshold", "activationThreshold"):
        value = _metadata(trigger, key)
        if value and not _JSON_NUMBER.match(value):
            findings.append(
                Finding((*path, "metadata", key), f'unable to set param "{key}" value "{value}": not a JSON number', source)
            )
    for key in ("ignoreNullValues", "unsafeSsl"):
        value = _metadata(trigger, key)
        if value and value not in _GO_BOOL:
            findings.append(
                Finding((*path, "metadata", key), f'unable to set param "{key}" value "{value}": not a boolean', source)
            )
    if trigger.get("metricType") == "Utilization":
        findings.append(
            Finding(
                (*path, "metricType"),
                "'Utilization' metric type is unsupported for external metrics, allowed values are 'Value' or 'AverageValue'",
                f"{VERSION} GetMetricTargetType",
            )
        )
    query = _metadata(trigger, "query")
    problem = promql_problem(query) if query else None
    several = one_series_problem(query) if query and not problem else None
    if problem:
        findings.append(
            Finding(
                (*path, "metadata", "query"),
                f"Prometheus refuses the query on every poll: {problem}",
                "Prometheus 3.13 query parser",
            )
        )
    elif several:
        findings.append(
            Finding((*path, "metadata", "query"), several, f"{VERSION} prometheus scaler, ExecutePromQuery")
        )
    return findings


def _cron_findings(path: tuple, trigger: dict[str, Any]) -> list[Finding]:
    source = f"{VERSION} cron scaler, cronMetadata.Validate"
    findings = [
        Finding((*path, "metadata", key), f'missing required parameter "{key}" in [triggerMetadata]', source)
        for key in ("start", "end", "timezone", "desiredReplicas")
        if not _metadata(trigger, key)
    ]
    if findings:
        return findings
    for key in ("start", "end"):
        problem = cron_problem(_metadata(trigger, key))
        if problem:
            findings.append(Finding((*path, "metadata", key), f"error parsing {key} schedule: {problem}", source))
    if _metadata(trigger, "start") == _metadata(trigger, "end"):
        findings.append(Finding((*path, "metadata", "end"), "start and end can not have exactly same time input", source))
    replicas = _metadata(trigger, "desiredReplicas")
    if not _JSON_INT.match(replicas) or int(replicas) == 0:
        findings.append(
            Finding((*path, "metadata", "desiredReplicas"), "no desiredReplicas specified (a non-zero integer)", source)
        )
    problem = timezone_problem(_metadata(trigger, "timezone"))
    if problem:
        findings.append(
            Finding(
                (*path, "metadata", "timezone"),
                f"unable to load timezone: {problem}",
                f"{VERSION} cron scaler, GetMetricsAndActivity",
            )
        )
    return findings


_SCALERS = {"prometheus": _prometheus_findings, "cron": _cron_findings}


def _hpa_behavior_findings(spec: dict[str, Any]) -> list[Finding]:
    """The HPA the operator creates from `advanced.horizontalPodAutoscalerConfig.behavior` meets the
    API server's HPA validation; a refusal leaves the ScaledObject Ready=False."""
    behavior = ((spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get("behavior") or {}
    source = "Kubernetes HPA validation (autoscaling/v2 validateScalingRules), met when KEDA creates the HPA"
    findings = []
    for direction in ("scaleUp", "scaleDown"):
        rules = behavior.get(direction)
        if rules is None:
            continue
        path = ("spec", "advanced", "horizontalPodAutoscalerConfig", "behavior", direction)
        window = rules.get("stabilizationWindowSeconds")
        if window is not None and not 0 <= window <= HPA_MAX_STABILIZATION_SECONDS:
            findings.append(
                Finding((*path, "stabilizationWindowSeconds"), f"must be between 0 and {HPA_MAX_STABILIZATION_SECONDS}", source)
            )
        if rules.get("selectPolicy", "Max") not in ("Max", "Min", "Disabled"):
            findings.append(Finding((*path, "selectPolicy"), "must be one of Max, Min, Disabled", source))
        policies = rules.get("policies")
        if policies is not None and not policies:
            findings.append(Finding((*path, "policies"), "must specify at least one Policy", source))
        for i, policy in enumerate(policies or []):
            if policy.get("type") not in ("Pods", "Percent"):
                findings.append(Finding((*path, "policies", i, "type"), "must be Pods or Percent", source))
            if not policy.get("value", 0) > 0:
                findings.append(Finding((*path, "policies", i, "value"), "must be greater than zero", source))
            if not 0 < policy.get("periodSeconds", 0) <= HPA_MAX_PERIOD_SECONDS:
                findings.append(
                    Finding(
                        (*path, "policies", i, "periodSeconds"),
                        f"must be greater than zero and at most {HPA_MAX_PERIOD_SECONDS}",
                        source,
                    )
                )
    return findings


def scaled_object_findings(obj: dict[str, Any]) -> list[Finding]:
    """Everything KEDA (and the HPA it creates) would refuse or warn about in one ScaledObject."""
    spec = obj.get("spec") or {}
    findings = _name_findings(obj) + _replica_findings(spec) + _fallback_findings(spec) + _trigger_findings(spec)
    findings += _modifier_findings(spec) + _warning_findings(spec) + _hpa_behavior_findings(spec)
    for i, trigger in enumerate(spec.get("triggers") or []):
        check = _SCALERS.get(trigger.get("type", ""))
        if check:
            findings += check(("spec", "triggers", i), trigger)
    return findings


def scaled_object_conflicts(objects: list[dict[str, Any]]) -> list[tuple[int, Finding]]:
    """`verifyScaledObjects` between our own objects: one workload, one ScaledObject; one HPA name."""
    found: list[tuple[int, Finding]] = []
    seen_targets: dict[tuple, str] = {}
    seen_hpas: dict[tuple, str] = {}
    for index, obj in enumerate(objects):
        namespace, name = obj["metadata"].get("namespace", "default"), obj["metadata"]["name"]
        target = (obj.get("spec") or {}).get("scaleTargetRef") or {}
        target_key = (namespace, target.get("apiVersion", "apps/v1"), target.get("kind", "Deployment"), target.get("name"))
        if target_key in seen_targets:
            found.append(
                (
                    index,
                    Finding(
                        ("spec", "scaleTargetRef"),
                        f"the workload '{target.get('name')}' of type '{target_key[2]}' is already managed by the ScaledObject '{seen_targets[target_key]}'",
                        _webhook("verifyScaledObjects"),
                    ),
                )
            )
        seen_targets.setdefault(target_key, name)
        hpa_key = (namespace, hpa_name(obj))
        if hpa_key in seen_hpas:
            found.append(
                (
                    index,
                    Finding(
                        ("metadata", "name"),
                        f"the HPA '{hpa_key[1]}' is already managed by the ScaledObject '{seen_hpas[hpa_key]}'",
                        _webhook("verifyScaledObjects"),
                    ),
                )
            )
        seen_hpas.setdefault(hpa_key, name)
    return found
