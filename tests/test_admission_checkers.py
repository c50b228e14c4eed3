"""Each operator-rule checker catches one deliberately broken object per rule, and accepts the
boundary cases the operator accepts (so a checker that refuses everything fails here too)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from conftest import program_run

from components.admission.cron import cron_problem
from components.admission.durations import parse_prometheus_duration
from components.admission.formula import formula_problem
from components.admission.go_template import template_problem
from components.admission.keda import scaled_object_findings
from components.admission.prometheus_rule import prometheus_rule_findings
from components.admission.promql import one_series_problem, promql_problem
from components.admission.service_monitor import service_monitor_findings

Mutation = Callable[[dict[str, Any]], Any]


def _registered(stack: str, kind: str, name: str | None = None) -> dict[str, Any]:
    """A copy of the first object of this kind (and name) the stack registers."""
    objects = [r.inputs for r in program_run(stack, "preview").resources if r.type.endswith(f":{kind}")]
    return copy.deepcopy(next(o for o in objects if name in (None, o["metadata"]["name"])))


def _broken(base: dict[str, Any], mutate: Mutation) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    mutate(obj)
    return obj


def _assert_caught(check, base: dict[str, Any], mutate: Mutation, path: str, message: str) -> None:
    """`check` accepts the registered object and refuses it, at `path` and saying `message`, once broken."""
    assert check(base) == []
    errors = _errors(check(_broken(base, mutate)))
    assert any(e.startswith(f"{path}: ") and message in e for e in errors), "\n".join(errors)


def _errors(findings) -> list[str]:
    return [f"{'.'.join(map(str, f.path))}: {f.message} ({f.source})" for f in findings if f.severity == "error"]


def _warnings(findings) -> list[str]:
    return [f"{'.'.join(map(str, f.path))}: {f.message}" for f in findings if f.severity == "warning"]


# --- KEDA v2.20.2 -------------------------------------------------------------------------------


def _so(obj):
    return obj["spec"]


def _trigger(obj, name):
    return next(t for t in obj["spec"]["triggers"] if t["name"] == name)


def _behavior(obj):
    return obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]


KEDA_CASES: list[tuple[str, Mutation, str, str]] = [
    (
        "name over 63",
        lambda o: o["metadata"].update(name="m" * 64),
        "metadata.name",
        "must be no more than 63 (KEDA v2.20.2 webhook, verifyName)",
    ),
    ("derived HPA name over 63", lambda o: o["metadata"].update(name="m" * 55), "metadata.name", "HPA name 'keda-hpa-mmmm"),
    (
        "custom HPA name over 63",
        lambda o: o["spec"]["advanced"]["horizontalPodAutoscalerConfig"].update(name="h" * 64),
        "metadata.name",
        "HPA name 'hhh",
    ),
    (
        "min above max",
        lambda o: _so(o).update(minReplicaCount=5, maxReplicaCount=2),
        "spec.minReplicaCount",
        "MinReplicaCount=5 must be less than MaxReplicaCount=2 (KEDA v2.20.2 webhook, CheckReplicaCountBoundsAreValid)",
    ),
    (
        "min above the default max",
        lambda o: (_so(o).pop("maxReplicaCount"), _so(o).update(minReplicaCount=101)),
        "spec.minReplicaCount",
        "MaxReplicaCount=100",
    ),
    (
        "idle not below min",
        lambda o: _so(o).update(minReplicaCount=2, idleReplicaCount=2),
        "spec.idleReplicaCount",
        "IdleReplicaCount=2 must be less than MinReplicaCount=2",
    ),
    (
        "idle 0 with min unset",
        lambda o: (_so(o).pop("minReplicaCount"), _so(o).update(idleReplicaCount=0)),
        "spec.idleReplicaCount",
        "IdleReplicaCount=0 must be less than MinReplicaCount=0",
    ),
    (
        "negative fallback",
        lambda o: _so(o)["fallback"].update(failureThreshold=-1),
        "spec.fallback",
        "must both be greater than or equal to 0 (KEDA v2.20.2 webhook, CheckFallbackValid)",
    ),
    (
        "fallback with only cpu triggers",
        lambda o: _so(o).update(triggers=[{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}]),
        "spec.fallback",
        "at least one trigger (that is not cpu or memory)",
    ),
    (
        "fallback over a Value target",
        lambda o: _trigger(o, "kv-cache").update(metricType="Value"),
        "spec.triggers.1.metricType",
        "KEDA divides the fallback by the ready replicas",
    ),
    (
        "scalingModifiers fallback without a formula",
        lambda o: _so(o)["fallback"].update(behavior="scalingModifiers"),
        "spec.fallback.behavior",
        "scalingModifiers fallback behavior requires scalingModifiers.formula to be defined (KEDA v2.20.2 webhook, verifyScaledObjects)",
    ),
    ("no triggers", lambda o: _so(o).update(triggers=[]), "spec.triggers", "no triggers defined"),
    (
        "duplicate trigger names",
        lambda o: _trigger(o, "kv-cache").update(name="queue"),
        "spec.triggers.1.name",
        'triggerName "queue" is defined multiple times in the ScaledObject/ScaledJob, but it must be unique (KEDA v2.20.2 webhook, ValidateTriggers)',
    ),
    (
        "cached metrics on cron",
        lambda o: _trigger(o, "active-hours").update(useCachedMetrics=True),
        "spec.triggers.2.useCachedMetrics",
        'property "useCachedMetrics" is not supported for "cron" scaler',
    ),
    (
        "modifiers without a formula",
        lambda o: _so(o)["advanced"].update(scalingModifiers={"target": "2"}),
        "spec.advanced.scalingModifiers.formula",
        "error ScalingModifiers.Formula is mandatory (KEDA v2.20.2 webhook, ValidateAndCompileScalingModifiers)",
    ),
    (
        "formula without a target",
        lambda o: _so(o)["advanced"].update(scalingModifiers={"formula": "queue"}),
        "spec.advanced.scalingModifiers.target",
        "formula is given but target is empty",
    ),
    (
        "formula naming no trigger",
        lambda o: _so(o)["advanced"].update(scalingModifiers={"formula": "queue + kvcache", "target": "2"}),
        "spec.advanced.scalingModifiers.formula",
        "unknown name kvcache",
    ),
    (
        "non-positive target",
        lambda o: _so(o)["advanced"].update(scalingModifiers={"formula": "queue", "target": "0"}),
        "spec.advanced.scalingModifiers.target",
        "error converting target for scalingModifiers",
    ),
    (
        "Utilization modifiers",
        lambda o: _so(o)["advanced"].update(scalingModifiers={"formula": "queue", "target": "2", "metricType": "Utilization"}),
        "spec.advanced.scalingModifiers.metricType",
        "needs to be AverageValue or Value",
    ),
    (
        "blank Prometheus threshold",
        lambda o: _trigger(o, "queue")["metadata"].update(threshold=" "),
        "spec.triggers.0.metadata.threshold",
        'missing required parameter "threshold" in [triggerMetadata] (KEDA v2.20.2 prometheus scaler',
    ),
    (
        "no Prometheus address",
        lambda o: _trigger(o, "queue")["metadata"].pop("serverAddress"),
        "spec.triggers.0.metadata.serverAddress",
        "missing required parameter",
    ),
    (
        "threshold that is not a JSON number",
        lambda o: _trigger(o, "queue")["metadata"].update(threshold="+4"),
        "spec.triggers.0.metadata.threshold",
        "not a JSON number",
    ),
    (
        "activation threshold NaN",
        lambda o: _trigger(o, "kv-cache")["metadata"].update(activationThreshold="NaN"),
        "spec.triggers.1.metadata.activationThreshold",
        "not a JSON number",
    ),
    (
        "ignoreNullValues not a Go bool",
        lambda o: _trigger(o, "queue")["metadata"].update(ignoreNullValues="yes"),
        "spec.triggers.0.metadata.ignoreNullValues",
        "not a boolean",
    ),
    (
        "Utilization on Prometheus",
        lambda o: _trigger(o, "queue").update(metricType="Utilization"),
        "spec.triggers.0.metricType",
        "'Utilization' metric type is unsupported for external metrics",
    ),
    (
        "query Prometheus refuses",
        lambda o: _trigger(o, "queue")["metadata"].update(query="sum(vllm:num_requests_waiting{model_name=qwen})"),
        "spec.triggers.0.metadata.query",
        "Prometheus refuses the query on every poll",
    ),
    (
        "query of several series",
        lambda o: _trigger(o, "queue")["metadata"].update(query="sum by (pod) (vllm:num_requests_waiting)"),
        "spec.triggers.0.metadata.query",
        "aggregate it (sum, avg, max) (KEDA v2.20.2 prometheus scaler, ExecutePromQuery)",
    ),
    (
        "bare selector query",
        lambda o: _trigger(o, "kv-cache")["metadata"].update(query='vllm:kv_cache_usage_perc{model_name="qwen3-4b"}'),
        "spec.triggers.1.metadata.query",
        "may return more than one series",
    ),
    (
        "cron without start",
        lambda o: _trigger(o, "active-hours")["metadata"].pop("start"),
        "spec.triggers.2.metadata.start",
        "missing required parameter",
    ),
    (
        "cron robfig cannot parse",
        lambda o: _trigger(o, "active-hours")["metadata"].update(start="0 8 * * 7"),
        "spec.triggers.2.metadata.start",
        "error parsing start schedule: day of week: end of range (7) above maximum (6)",
    ),
    (
        "cron start equals end",
        lambda o: _trigger(o, "active-hours")["metadata"].update(end="0 8 * * 1-5"),
        "spec.triggers.2.metadata.end",
        "start and end can not have exactly same time input",
    ),
    (
        "cron zero replicas",
        lambda o: _trigger(o, "active-hours")["metadata"].update(desiredReplicas="0"),
        "spec.triggers.2.metadata.desiredReplicas",
        "no desiredReplicas specified",
    ),
    (
        "cron unknown zone",
        lambda o: _trigger(o, "active-hours")["metadata"].update(timezone="America/Gotham"),
        "spec.triggers.2.metadata.timezone",
        "unable to load timezone: unknown time zone America/Gotham",
    ),
    (
        "stabilization above the HPA limit",
        lambda o: _behavior(o)["scaleDown"].update(stabilizationWindowSeconds=3601),
        "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds",
        "between 0 and 3600",
    ),
    (
        "unknown select policy",
        lambda o: _behavior(o)["scaleUp"].update(selectPolicy="Maximum"),
        "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.selectPolicy",
        "Max, Min, Disabled",
    ),
    (
        "no scaling policies",
        lambda o: _behavior(o)["scaleUp"].update(policies=[]),
        "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.policies",
        "at least one Policy",
    ),
    (
        "policy of zero",
        lambda o: _behavior(o)["scaleDown"]["policies"][0].update(value=0),
        "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies.0.value",
        "greater than zero",
    ),
    (
        "policy period over 30 minutes",
        lambda o: _behavior(o)["scaleDown"]["policies"][0].update(periodSeconds=1801),
        "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies.0.periodSeconds",
        "at most 1800",
    ),
    (
        "policy of unknown type",
        lambda o: _behavior(o)["scaleUp"]["policies"][0].update(type="Nodes"),
        "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.policies.0.type",
        "Pods or Percent",
    ),
]


@pytest.mark.parametrize("mutate, path, message", [c[1:] for c in KEDA_CASES], ids=[c[0] for c in KEDA_CASES])
def test_keda_checker_catches_each_rule(mutate, path, message):
    # dev: queue, kv-cache and active-hours triggers, scale-to-zero
    _assert_caught(scaled_object_findings, _registered("dev", "ScaledObject"), mutate, path, message)


def _with_formula(obj):
    _trigger(obj, "kv-cache").update(name="kv_cache")
    _so(obj)["advanced"].update(scalingModifiers={"formula": "max(queue / 4, kv_cache)", "target": "1.5"})


def test_keda_checker_accepts_what_keda_accepts():
    base = _registered("prod", "ScaledObject")
    cron_only = [
        {"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "1"}}
    ]
    for mutate in (
        lambda o: _so(o).update(minReplicaCount=0, idleReplicaCount=0, pollingInterval=30),  # an explicit 0 counts as 1
        lambda o: _so(o).update(minReplicaCount=8, maxReplicaCount=8),  # "must be less than" allows equal
        lambda o: _so(o).update(triggers=cron_only),  # a cron trigger is enough for a fallback
        _with_formula,
        lambda o: o["metadata"].update(name="m" * 54),  # keda-hpa-<54> is 63
    ):
        assert _errors(scaled_object_findings(_broken(base, mutate))) == []


def test_keda_webhook_warnings_for_settings_that_do_nothing_above_zero():
    base = _registered("prod", "ScaledObject")
    warnings = _warnings(scaled_object_findings(_broken(base, lambda o: _so(o).update(pollingInterval=15, cooldownPeriod=300))))
    assert [w.split(":")[0] for w in warnings] == ["spec.pollingInterval", "spec.cooldownPeriod"]
    assert _warnings(scaled_object_findings(_registered("dev", "ScaledObject"))) == []


# --- Prometheus Operator v0.93 ------------------------------------------------------------------


def _rule(obj, i=0):
    return obj["spec"]["groups"][0]["rules"][i]


def _group(obj):
    return obj["spec"]["groups"][0]


RECORD = {"record": "model:vllm_queue:sum", "expr": "sum(vllm:num_requests_waiting)"}

PROMETHEUS_RULE_CASES: list[tuple[str, Mutation, str, str]] = [
    (
        "rule file over 512 KiB",
        lambda o: _rule(o)["annotations"].update(description="x" * 600_000),
        "spec",
        "above the maximum limit of 524288 bytes",
    ),
    ("empty group name", lambda o: _group(o).update(name=""), "spec.groups.0.name", "Groupname must not be empty"),
    (
        "duplicate group name",
        lambda o: o["spec"]["groups"].append(copy.deepcopy(_group(o))),
        "spec.groups.1.name",
        "is repeated in the same file",
    ),
    (
        "group label name",
        lambda o: _group(o).update(labels={"team-name": "x"}),
        "spec.groups.0.labels.team-name",
        "invalid label name: team-name",
    ),
    ("group interval", lambda o: _group(o).update(interval="1m30"), "spec.groups.0.interval", "not a valid duration string"),
    (
        "group query offset empty",
        lambda o: _group(o).update(query_offset=""),
        "spec.groups.0.query_offset",
        "empty duration string",
    ),
    (
        "record and alert",
        lambda o: _rule(o).update(record="a:b"),
        "spec.groups.0.rules.0",
        "only one of 'record' and 'alert' must be set",
    ),
    (
        "neither record nor alert",
        lambda o: _rule(o).pop("alert"),
        "spec.groups.0.rules.0",
        "one of 'record' or 'alert' must be set",
    ),
    ("empty expr", lambda o: _rule(o).update(expr=""), "spec.groups.0.rules.0.expr", "field 'expr' must be set in rule"),
    (
        "expr that does not parse",
        lambda o: _rule(o).update(expr="max by (pod) (vllm:kv_cache_usage_perc > 0.9"),
        "spec.groups.0.rules.0.expr",
        "could not parse expression",
    ),
    (
        "experimental function",
        lambda o: _rule(o).update(expr="mad_over_time(vllm:kv_cache_usage_perc[5m]) > 0.1"),
        "spec.groups.0.rules.0.expr",
        "function 'mad_over_time' is not enabled",
    ),
    (
        "for in Go's spelling",
        lambda o: _rule(o).update(**{"for": "1m30s0ms0"}),
        "spec.groups.0.rules.0.for",
        "not a valid duration string",
    ),
    (
        "for with units out of order",
        lambda o: _rule(o).update(**{"for": "30s1m"}),
        "spec.groups.0.rules.0.for",
        "not a valid duration string",
    ),
    (
        "keep_firing_for",
        lambda o: _rule(o).update(keep_firing_for="5 m"),
        "spec.groups.0.rules.0.keep_firing_for",
        "unknown unit",
    ),
    (
        "recording rule with annotations",
        lambda o: o["spec"]["groups"][0]["rules"].append(RECORD | {"annotations": {"a": "b"}}),
        "spec.groups.0.rules.5.annotations",
        "invalid field 'annotations' in recording rule",
    ),
    (
        "recording rule with for",
        lambda o: o["spec"]["groups"][0]["rules"].append(RECORD | {"for": "5m"}),
        "spec.groups.0.rules.5.for",
        "invalid field 'for' in recording rule",
    ),
    (
        "recording rule name",
        lambda o: o["spec"]["groups"][0]["rules"].append(RECORD | {"record": "model-queue"}),
        "spec.groups.0.rules.5.record",
        "invalid recording rule name: model-queue",
    ),
    (
        "recording rule with braces",
        lambda o: o["spec"]["groups"][0]["rules"].append(RECORD | {"record": 'queue{model="a"}'}),
        "spec.groups.0.rules.5.record",
        "braces present in the recording rule name",
    ),
    (
        "label name",
        lambda o: _rule(o)["labels"].update({"llm-platform/model": "x"}),
        "spec.groups.0.rules.0.labels.llm-platform/model",
        "invalid label name",
    ),
    (
        "__name__ label",
        lambda o: _rule(o)["labels"].update(__name__="x"),
        "spec.groups.0.rules.0.labels.__name__",
        "invalid label name: __name__",
    ),
    (
        "annotation name",
        lambda o: _rule(o)["annotations"].update({"runbook-url": "x"}),
        "spec.groups.0.rules.0.annotations.runbook-url",
        "invalid annotation name: runbook-url",
    ),
    (
        "annotation template",
        lambda o: _rule(o)["annotations"].update(summary="KV cache full on {{ $label.pod }}"),
        "spec.groups.0.rules.0.annotations.summary",
        'template: __alert_VllmKvCacheNearlyFull: undefined variable "$label"',
    ),
    (
        "label template",
        lambda o: _rule(o)["labels"].update(severity="{{ if $value }}critical"),
        "spec.groups.0.rules.0.labels.severity",
        "has no {{end}}",
    ),
]


@pytest.mark.parametrize(
    "mutate, path, message", [c[1:] for c in PROMETHEUS_RULE_CASES], ids=[c[0] for c in PROMETHEUS_RULE_CASES]
)
def test_prometheus_rule_checker_catches_each_rule(mutate, path, message):
    _assert_caught(prometheus_rule_findings, _registered("prod", "PrometheusRule", "qwen3-8b-vllm"), mutate, path, message)


def test_prometheus_rule_checker_accepts_what_rulefmt_accepts():
    base = _registered("prod", "PrometheusRule", "qwen3-8b-vllm")
    for mutate in (
        lambda o: o["spec"]["groups"][0]["rules"].append(
            RECORD | {"for": "0s", "labels": {"team": "ml"}}
        ),  # a zero for is no for
        lambda o: _rule(o).update(**{"for": "0", "keep_firing_for": "1h30m"}),
        lambda o: _rule(o)["annotations"].update(__name__="x", summary="{{ $value | humanizePercentage }} on {{ $labels.pod }}"),
        # recording rules' labels are never parsed as templates
        lambda o: o["spec"]["groups"][0]["rules"].append(RECORD | {"labels": {"summary": "{{ $labels.missing"}}),
    ):
        assert _errors(prometheus_rule_findings(_broken(base, mutate))) == []


SERVICE_MONITOR_CASES: list[tuple[str, Mutation, str, str]] = [
    (
        "timeout above interval",
        lambda o: o["spec"]["endpoints"][0].update(scrapeTimeout="20s"),
        "spec.endpoints.0.scrapeTimeout",
        "scrapeTimeout '20s' greater than scrapeInterval '15s' (Prometheus Operator v0.93 ServiceMonitor selection, CompareScrapeTimeoutToScrapeInterval)",
    ),
    (
        "timeout above the default interval",
        lambda o: (o["spec"]["endpoints"][0].pop("interval"), o["spec"]["endpoints"][0].update(scrapeTimeout="45s")),
        "spec.endpoints.0.scrapeTimeout",
        "greater than scrapeInterval '30s'",
    ),
    (
        "interval in Go's spelling",
        lambda o: o["spec"]["endpoints"][0].update(interval="1.5m"),
        "spec.endpoints.0.interval",
        "invalid interval '1.5m'",
    ),
    (
        "unknown relabel action",
        lambda o: o["spec"]["endpoints"][0]["relabelings"][0].update(action="rename"),
        "spec.endpoints.0.relabelings.0.action",
        "unknown relabel action 'rename'",
    ),
    (
        "relabel regex",
        lambda o: o["spec"]["endpoints"][0]["relabelings"][0].update(regex="(node"),
        "spec.endpoints.0.relabelings.0.regex",
        "invalid regex (node",
    ),
    (
        "relabel regex RE2 lacks",
        lambda o: o["spec"]["endpoints"][0]["relabelings"][0].update(regex="(?!kube).*"),
        "spec.endpoints.0.relabelings.0.regex",
        "not RE2 syntax",
    ),
    (
        "replace without target",
        lambda o: o["spec"]["endpoints"][0]["relabelings"][0].pop("targetLabel"),
        "spec.endpoints.0.relabelings.0.targetLabel",
        "relabel configuration for replace action needs targetLabel value",
    ),
    (
        "hashmod without modulus",
        lambda o: o["spec"]["endpoints"][0]["relabelings"][0].update(action="hashmod"),
        "spec.endpoints.0.relabelings.0.modulus",
        "requires non-zero modulus",
    ),
    (
        "labeldrop with more than a regex",
        lambda o: o["spec"]["endpoints"][0]["relabelings"][0].update(action="labeldrop"),
        "spec.endpoints.0.relabelings.0",
        "labeldrop action requires only 'regex'",
    ),
    (
        "keepequal with a regex",
        lambda o: o["spec"]["endpoints"][0]["relabelings"][0].update(action="keepequal", regex="a.*"),
        "spec.endpoints.0.relabelings.0",
        "keepequal action requires only 'source_labels'",
    ),
]


@pytest.mark.parametrize(
    "mutate, path, message", [c[1:] for c in SERVICE_MONITOR_CASES], ids=[c[0] for c in SERVICE_MONITOR_CASES]
)
def test_service_monitor_checker_catches_each_rule(mutate, path, message):
    # DCGM's: the one with a relabeling
    _assert_caught(service_monitor_findings, _registered("prod", "ServiceMonitor", "dcgm-exporter"), mutate, path, message)


# --- The building blocks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, problem",
    [
        ("sum(rate(vllm:request_success_total[5m]", "does not parse as PromQL: unclosed left parenthesis"),
        ("rate(vllm:request_success_total)", "expected type matrix in call to function 'rate'"),
        ("vllm:num_requests_waiting{model_name=qwen}", "unexpected identifier"),
        ("x > bool", "does not parse"),
        ("first_over_time(x[5m])", "function 'first_over_time' is not enabled"),
        ("start_timestamp(x)", "not in Prometheus 3.13"),
        ("limitk(2, x)", "limitk() is experimental"),
        ("x + fill(0) y", "binop fill modifiers are experimental"),
        ('x{a="b" or c="d"}', "'or' between label matchers is not PromQL"),
        ("x[1e300]", "does not parse as PromQL"),  # the Rust parser panics: still a refusal, not a crash
    ],
)
def test_promql_checker_refuses_what_prometheus_3_13_refuses(expr, problem):
    assert problem in (promql_problem(expr) or "")


def test_one_series_check_follows_what_aggregates_to_one_series():
    one = [
        "sum(x)",
        'avg(x{a="b"}) / 2',
        "sum(x) / count(x)",
        "(max(x) or vector(0))",
        "abs(sum(rate(x[5m])))",
        "sum by () (x)",
        "quantile(0.9, x)",
        "1",
    ]
    several = [
        "x",
        "sum by (pod) (x)",
        "sum without (pod) (x)",
        "topk(1, x)",
        "rate(x[5m])",
        "sum(x) / x",
        'count_values("v", x)',
    ]
    assert [q for q in one if one_series_problem(q)] == []
    assert [q for q in several if not one_series_problem(q)] == []


def test_promql_checker_accepts_what_prometheus_3_13_accepts():
    for expr in (
        'histogram_quantile(0.95, sum by (le, model_name) (rate(vllm:time_to_first_token_seconds_bucket{model_name=~".*"}[1m])))',
        "(sum(rate(x[5m])) or vector(0))",
        "x[5]",
        "x offset -5m",
        "x @ start()",
        'label_replace(x, "a", "$1", "b", "(.*)")',
    ):
        assert promql_problem(expr) is None, expr


def test_prometheus_durations_follow_model_parse_duration():
    assert [parse_prometheus_duration(d) for d in ("0", "0s", "1h30m", "5s5ms", "1y2w3d4h5m6s7ms")] == [
        0,
        0,
        5_400_000,
        5_005,
        31_536_000_000 + 1_209_600_000 + 259_200_000 + 14_400_000 + 300_000 + 6_000 + 7,
    ]
    for bad, message in (
        ("", "empty duration string"),
        ("30m1h", "not a valid duration string"),
        ("1.5h", "unknown unit '.'"),
        ("-5m", "not a valid"),
        ("5x", "unknown unit 'x'"),
        ("1h1h", "not a valid"),
        ("300y", "duration out of range"),
        ("1٥m", "unknown unit '٥m'"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_prometheus_duration(bad)


@pytest.mark.parametrize(
    "spec, problem",
    [
        ("@daily", "does not accept descriptors"),
        ("0 8 * * 7", "day of week: end of range (7) above maximum (6)"),
        ("60 * * * *", "minute: end of range (60)"),
        ("0 8 * *", "expected exactly 5 fields"),
        ("5-3 * * * *", "beyond end of range"),
        ("*/0 * * * *", "step of range should be a positive number"),
        ("1-2-3 * * * *", "too many hyphens"),
        ("1/2/3 * * * *", "too many slashes"),
        ("١ * * * *", "failed to parse int"),
        ("0 0 0 * *", "day of month: beginning of range (0) below minimum (1)"),
        ("0 8 * * FUN", "failed to parse int from FUN"),
        ("TZ=Mars/Base 0 8 * * *", "bad location"),
    ],
)
def test_cron_checker_refuses_what_robfig_cron_refuses(spec, problem):
    assert problem in (cron_problem(spec) or "")


def test_cron_checker_accepts_what_robfig_cron_accepts():
    for spec in (
        "0 8 * * 1-5",
        "*/15 * * * *",
        "0 8 * * MON-FRI",
        "0 0 1 jan *",
        "TZ=Europe/Berlin 0 8 * * *",
        "0 8,20 ? * sun",
        "+5 * * * *",
        "0 22/2 * * *",
    ):
        assert cron_problem(spec) is None, spec


@pytest.mark.parametrize(
    "formula, problem",
    [
        ("queue + kv", None),
        ("max(queue / 4, kv / 0.8)", None),
        ("queue > 3 ? queue : kv", None),
        ("queue ?? 0", None),
        ("-queue ** 2", None),
        ("quee + 1", "unknown name quee"),
        ("queue > 3", "invalid argument for float (type bool)"),
        ("queue % 2", "invalid operation: %"),
        ("(queue + kv", "expected ')'"),
        ('queue + "1"', "mismatched types float64 and string"),
        ("queue ? 1 : 0", "used as condition"),
        ("abs(queue, kv)", "expected 1, got 2"),
        ("not queue", "invalid operation: not"),
        ("queue in [1, 2]", "not checked here"),
    ],
)
def test_formula_checker_compiles_as_expr_lang_does(formula, problem):
    result = formula_problem(formula, frozenset({"queue", "kv"}))
    assert (result is None) if problem is None else (problem in (result or "")), result


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{{ $labels.pod }} and {{ $value | humanize }}", None),
        ("{{ if gt $value 0.9 }}hot{{ else }}ok{{ end }}", None),
        ("{{/* a comment */}}{{- $labels.gpu -}}", None),
        ('{{ with $p := index $labels "pod" }}{{ $p }}{{ end }}', None),
        ("{{ range $k, $v := $labels }}{{ $k }}={{ $v }}{{ end }}", None),
        ('{{ template "x" . }}', None),
        ("{{ $label.pod }}", 'undefined variable "$label"'),
        ("{{ humanise $value }}", 'function "humanise" not defined'),
        ("{{ if $value }}x", "has no {{end}}"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ “pod” }}", "unrecognized character in action: U+201C"),
        ("{{ $labels.pod ", "unclosed action"),
        ("{{ }}", "missing value for command"),
        ("{{ $value | }}", "missing value for command"),
        ("{{ (len $labels }}", "unclosed left paren"),
        ("{{ break }}", "outside {{range}}"),
        ('{{ "open }}', "unterminated quoted string"),
        ("{{ with $x := 1 }}{{ end }}{{ $x }}", 'undefined variable "$x"'),
        ("{{/* open }}", "unclosed comment"),
    ],
)
def test_template_checker_parses_as_go_text_template_does(text, problem):
    result = template_problem(text)
    assert (result is None) if problem is None else (problem in (result or "")), result
