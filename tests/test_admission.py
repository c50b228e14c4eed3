"""What the operators would refuse: every object of every stack passes KEDA's, Prometheus Operator's
and the pinned CRDs' own rules; the preflight checks exactly what the program registers; and each
checker catches one deliberately broken object per rule."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest
import yaml
from conftest import PROJECT_DIR, STACKS, dev_config_values, program_run, stack_from
from hypothesis import given, settings
from hypothesis import strategies as st

from components.addons.dashboards import DASHBOARD_LABEL
from components.admission.keda import scaled_object_conflicts
from components.admission.objects import CHECKS, object_findings
from components.admission.promql import promql_problem
from components.config.stack import ConfigError
from stacks.offline import run_program
from stacks.preflight import adapter_queries, checked_stack_config, grafana_interpolated, planned_objects

CHECKED_TYPES = {f"kubernetes:{api}:{kind}" for api, kind in CHECKS}


def _manifests(run, types=CHECKED_TYPES) -> list[dict[str, Any]]:
    return [r.inputs for r in run.resources if r.type in types]


def _comparable(manifest: dict[str, Any]) -> tuple:
    meta = manifest["metadata"]
    return (
        manifest["apiVersion"],
        manifest["kind"],
        meta["name"],
        meta.get("namespace"),
        json.dumps(manifest["spec"], sort_keys=True),
    )


# --- Every stack ------------------------------------------------------------------------------


def test_every_operator_checked_object_is_accepted_without_warnings(run):
    manifests = _manifests(run)
    assert {m["kind"] for m in manifests} == {"ScaledObject", "ServiceMonitor", "PrometheusRule"}
    problems = [f"{m['kind']}/{m['metadata']['name']}: {f.describe()}" for m in manifests for f in object_findings(m)]
    assert not problems, "\n".join(problems)
    scaled = [m for m in manifests if m["kind"] == "ScaledObject"]
    assert not scaled_object_conflicts(scaled)


def test_preflight_checks_exactly_the_objects_the_program_registers(run, stack_config):
    registered = sorted(_comparable(m) for m in _manifests(run))
    planned = sorted(_comparable(p.custom.manifest()) for p in planned_objects(stack_config))
    assert planned == registered


def _dashboard_queries(run) -> list[str]:
    queries = []
    for config_map in run.of_type("kubernetes:core/v1:ConfigMap"):
        if DASHBOARD_LABEL not in (config_map.inputs["metadata"].get("labels") or {}):
            continue
        for text in config_map.inputs["data"].values():
            dashboard = json.loads(text)
            names = [v["name"] for v in dashboard["templating"]["list"]]
            for variable in dashboard["templating"]["list"]:
                if variable["type"] == "query":
                    queries.append(
                        grafana_interpolated(variable["query"]["query"].removeprefix("label_values(").rsplit(",", 1)[0], names)
                    )
            queries += [grafana_interpolated(t["expr"], names) for panel in dashboard["panels"] for t in panel["targets"]]
    return queries


def _registered_queries(run) -> list[str]:
    """Every PromQL query in what the program registered: triggers, rules, dashboards."""
    queries = []
    for manifest in _manifests(run):
        if manifest["kind"] == "ScaledObject":
            queries += [t["metadata"]["query"] for t in manifest["spec"]["triggers"] if t["type"] == "prometheus"]
        if manifest["kind"] == "PrometheusRule":
            queries += [r["expr"] for g in manifest["spec"]["groups"] for r in g["rules"]]
    return queries + _dashboard_queries(run)


def test_every_promql_query_we_ship_parses_as_prometheus_parses_it(run):
    queries = _registered_queries(run)
    assert len(queries) >= 30
    problems = [f"{q}: {promql_problem(q)}" for q in queries if promql_problem(q)]
    assert not problems, "\n".join(problems)


def test_adapter_rules_parse_when_the_adapter_is_on():
    values = dev_config_values()
    values["llm-platform:addons"]["prometheusAdapter"] = {"enabled": True}
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    (adapter,) = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "prometheus-adapter"]
    rules = adapter.inputs["values"]["rules"]["custom"]
    queries = list(adapter_queries(rules))  # the registered rules, template fields filled in
    assert len(queries) == 2 * len(rules) >= 2
    assert [q for q in queries if promql_problem(q)] == []


# --- The preflight turns a refusal into a config error at its key ---------------------------


def _broken_monitored_objects(break_it):
    from components.serving import service as model_service

    def broken(model, prometheus_url):
        objects = model_service.monitored_objects(model, prometheus_url)
        return [type(o)(o.api_version, o.kind, o.name, o.namespace, break_it(o.kind, copy.deepcopy(o.spec))) for o in objects]

    return broken


@pytest.mark.parametrize(
    "break_it, key, message",
    [
        (
            lambda kind, spec: spec | {"minReplicaCount": 9} if kind == "ScaledObject" else spec,
            "llm-platform:models[0].minReplicas",
            "MinReplicaCount=9 must be less than MaxReplicaCount=2 (KEDA v2.20.2 webhook, CheckReplicaCountBoundsAreValid)",
        ),
        (
            lambda kind, spec: (
                {**spec, "triggers": [{**t, "metricType": "Value"} for t in spec["triggers"]]} if kind == "ScaledObject" else spec
            ),
            "llm-platform:models[0].scaling.kvCacheUsage",
            "KEDA divides the fallback by the ready replicas",
        ),
        (
            lambda kind, spec: (
                {"groups": [{**g, "rules": [{**r, "for": "10 minutes"} for r in g["rules"]]} for g in spec["groups"]]}
                if kind == "PrometheusRule"
                else spec
            ),
            "llm-platform:models[0].loadTimeout",
            "unknown unit ' minutes' in duration",
        ),
        (
            lambda kind, spec: (
                {**spec, "endpoints": [{**e, "scrapeTimeout": "20s"} for e in spec["endpoints"]]}
                if kind == "ServiceMonitor"
                else spec
            ),
            "llm-platform:models[0]",
            "scrapeTimeout '20s' greater than scrapeInterval '5s'",
        ),
    ],
    ids=["replica bounds", "fallback target type", "alert duration", "scrape timeout"],
)
def test_preflight_reports_a_refused_object_at_the_config_key_before_anything_is_registered(monkeypatch, break_it, key, message):
    monkeypatch.setattr("stacks.preflight.monitored_objects", _broken_monitored_objects(break_it))
    values = dev_config_values()
    with pytest.raises(ConfigError) as error:
        checked_stack_config(stack_from(values).namespace_values(), "Pulumi.dev.yaml")
    lines = [f"{path}: {text}" for path, text in error.value.problems]
    assert any(line.startswith(f"{key}: ") and message in line for line in lines), "\n".join(lines)
    run = run_program(stack_from(values), preview=True)
    assert isinstance(run.error, ConfigError) and [r.type for r in run.resources] == ["pulumi:pulumi:Stack"]


def test_keda_webhook_warnings_are_returned_for_the_preview_log(monkeypatch):
    monkeypatch.setattr(
        "stacks.preflight.monitored_objects",
        _broken_monitored_objects(lambda kind, spec: spec | {"minReplicaCount": 1} if kind == "ScaledObject" else spec),
    )
    cfg, warnings = checked_stack_config(stack_from(dev_config_values()).namespace_values(), "Pulumi.dev.yaml")
    assert cfg.models and warnings
    assert any(
        key == "llm-platform:models[0].scaling.pollingInterval" and "PollingInterval is configured but is not relevant" in text
        for key, text in warnings
    )


@pytest.mark.parametrize("stack", STACKS)
def test_scaling_fields_that_only_matter_at_zero_are_only_set_at_zero(stack):
    for manifest in _manifests(program_run(stack, "preview")):
        if manifest["kind"] == "ScaledObject":
            at_zero = manifest["spec"]["minReplicaCount"] == 0
            assert ("pollingInterval" in manifest["spec"]) == at_zero == ("cooldownPeriod" in manifest["spec"])
            assert all(t.get("metricType", "AverageValue") == "AverageValue" for t in manifest["spec"]["triggers"])


def test_scaled_object_conflicts_between_our_own_objects():
    base = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "a", "namespace": "n"},
        "spec": {"scaleTargetRef": {"name": "d"}, "triggers": [{"type": "cron"}]},
    }
    same_target = copy.deepcopy(base) | {"metadata": {"name": "b", "namespace": "n"}}
    same_hpa = copy.deepcopy(base) | {"metadata": {"name": "c", "namespace": "n"}}
    same_hpa["spec"] = {"scaleTargetRef": {"name": "e"}, "advanced": {"horizontalPodAutoscalerConfig": {"name": "keda-hpa-a"}}}
    other_namespace = copy.deepcopy(base) | {"metadata": {"name": "a", "namespace": "m"}}
    found = scaled_object_conflicts([base, same_target, same_hpa, other_namespace])
    assert [(i, f.message) for i, f in found] == [
        (1, "the workload 'd' of type 'Deployment' is already managed by the ScaledObject 'a'"),
        (2, "the HPA 'keda-hpa-a' is already managed by the ScaledObject 'a'"),
    ]


@pytest.mark.parametrize("command", ["plan", "validate"])
def test_the_cli_reports_a_refusal_in_one_line_without_traceback(tmp_path, command):
    values = dev_config_values()
    hours = values["llm-platform:models"][0]["scaling"]["activeHours"]
    hours["end"] = hours["start"]  # valid as config; KEDA's cron scaler refuses it
    (tmp_path / "Pulumi.broken.yaml").write_text(yaml.safe_dump({"config": values}))
    result = subprocess.run(
        [sys.executable, "-m", "stacks", command, "broken", "--stack-dir", str(tmp_path)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Pulumi.broken.yaml: llm-platform:models[0].scaling.activeHours.end: ScaledObject qwen3-4b: " in result.stderr
    assert "start and end can not have exactly same time input (KEDA v2.20.2 cron scaler" in result.stderr


_CRON_FIELD = st.one_of(st.text(alphabet="0123456789*/-,?", min_size=1, max_size=6), st.sampled_from(["MON", "jan", "7", "٣", "+5", "99"]))
_CRON = st.lists(_CRON_FIELD, min_size=4, max_size=6).map(" ".join) | st.text(max_size=20)


@settings(max_examples=150, deadline=None)
@given(start=_CRON, end=_CRON, timezone=st.text(max_size=300) | st.sampled_from(["UTC", "Europe/Berlin", "europe/berlin", "Etc/GMT+5"]))
def test_any_schedule_is_accepted_or_refused_at_its_key_never_a_crash(start, end, timezone):
    values = dev_config_values()
    values["llm-platform:models"][0]["scaling"]["activeHours"] = {"start": start, "end": end, "timezone": timezone}
    try:
        checked_stack_config(stack_from(values).namespace_values(), "Pulumi.dev.yaml")
    except ConfigError as error:
        assert all(path.startswith("llm-platform:models[0].scaling.activeHours") for path, _ in error.problems), error.problems
