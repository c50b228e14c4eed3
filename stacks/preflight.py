"""The preflight: what the operators would refuse, found from the config before anything is registered.

Every custom resource that an operator checks (KEDA's ScaledObjects, Prometheus Operator's
ServiceMonitors and PrometheusRules) is built here from the validated config by the same functions
the components register it with, and checked against that operator's rules (`components/admission`).
So is every PromQL query we ship outside those objects: the Grafana dashboards and the
prometheus-adapter rules, and the scheduler's view of the system pool (`system_pool.py`). A refusal becomes a config error at the key that produced it, in the same
`<stack file>: llm-platform:<key>: why` form as every other config error, so `pulumi preview`, the
offline plan and a portal request all stop before a resource exists. Warnings (accepted, but a
setting that does nothing) go to the preview's log.

The CRDs' CEL rules are not here: the program cannot read the upstream CRDs (they are test
fixtures), so the config validators carry the rules our config can break (label and tag prefixes,
for instance), and the tests evaluate every CEL rule on every object of every stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.addons.dashboards import DASHBOARDS, Dashboard
from components.addons.gpu import gpu_monitoring_objects
from components.addons.monitoring import ADAPTER_RULES, PROMETHEUS_URL
from components.admission import Finding
from components.admission.keda import scaled_object_conflicts
from components.admission.objects import CustomObject, object_findings
from components.admission.promql import promql_problem
from components.config.errors import Loc, format_key_path
from components.config.planning import fit_key, fit_warning
from components.config.stack import ConfigError, StackConfig, parse_stack_config
from components.serving.service import monitored_objects
from components.serving.signals import prometheus_rule_config_key, scaled_object_config_key

from .network_ranges import public_range_warnings
from .system_pool import system_pool_findings

# Grafana fills these in before a query reaches Prometheus; a representative value each.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h"}
# prometheus-adapter's metricsQuery template fields (its `<<.Series>>` placeholders).
ADAPTER_PLACEHOLDERS = {
    "<<.Series>>": "vllm:num_requests_waiting",
    "<<.LabelMatchers>>": 'namespace="a",pod=~"b|c"',
    "<<.GroupBy>>": "pod",
}


def _the_whole_entry(path: tuple, manifest: dict) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class PlannedObject:
    custom: CustomObject
    origin: Loc  # the config entry it comes from, e.g. ("models", 0)
    config_key: Callable[[tuple, dict], tuple[str, ...]] = _the_whole_entry  # (object path, manifest) -> key below origin


_MODEL_CONFIG_KEYS = {"ScaledObject": scaled_object_config_key, "PrometheusRule": prometheus_rule_config_key}


@dataclass
class Preflight:
    problems: list[tuple[str, str]] = field(default_factory=list)  # (key path, message), like ConfigError's
    warnings: list[tuple[str, str]] = field(default_factory=list)


def planned_objects(cfg: StackConfig) -> list[PlannedObject]:
    """The operator-checked custom resources this config makes, as the components will register them."""
    planned: list[PlannedObject] = []
    if cfg.addons.dcgm_exporter.enabled and cfg.addons.prometheus.enabled:
        planned += [PlannedObject(o, ("addons", "dcgmExporter")) for o in gpu_monitoring_objects(cfg.addons.dcgm_exporter)]
    for i, model in enumerate(cfg.models):
        for custom in monitored_objects(model, PROMETHEUS_URL):
            planned.append(PlannedObject(custom, ("models", i), _MODEL_CONFIG_KEYS.get(custom.kind, _the_whole_entry)))
    return planned


def dashboard_queries(dashboard: Dashboard) -> Iterator[str]:
    """Every PromQL query of a dashboard: its panels' and its variables' (`label_values(<selector>, <label>)`)."""
    for _, query in dashboard.variables:
        yield query.removeprefix("label_values(").rsplit(",", 1)[0]
    for panel in dashboard.panels:
        yield from panel.exprs


def grafana_interpolated(query: str, variable_names: Iterable[str]) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        query = query.replace(name, value)
    for name in variable_names:  # multi-value variables become a regex alternation
        query = query.replace(f"${name}", ".*")
    return query


def adapter_queries(rules: list[Mapping[str, Any]]) -> Iterator[str]:
    for rule in rules:
        yield rule["seriesQuery"]
        query = rule["metricsQuery"]
        for placeholder, value in ADAPTER_PLACEHOLDERS.items():
            query = query.replace(placeholder, value)
        yield query


def shipped_queries(cfg: StackConfig) -> list[tuple[Loc, str, str]]:
    """(config key, where, query) of the PromQL we ship outside custom resources."""
    queries: list[tuple[Loc, str, str]] = []
    if cfg.addons.prometheus.enabled and cfg.addons.prometheus.grafana:
        for dashboard in DASHBOARDS:
            names = [name for name, _ in dashboard.variables]
            for query in dashboard_queries(dashboard):
                queries.append(
                    (("addons", "prometheus", "grafana"), f"dashboard {dashboard.uid}", grafana_interpolated(query, names))
                )
    if cfg.addons.prometheus_adapter.enabled:
        queries += [(("addons", "prometheusAdapter"), "adapter rule", q) for q in adapter_queries(ADAPTER_RULES)]
    return queries


def preflight(cfg: StackConfig) -> Preflight:
    result = Preflight()
    planned = planned_objects(cfg)

    def report(item: PlannedObject, finding: Finding) -> None:
        key = format_key_path(item.origin + item.config_key(finding.path, item.custom.manifest()))
        (result.problems if finding.severity == "error" else result.warnings).append((key, f"{item.custom.kind} {item.custom.name}: {finding.describe()}"))

    for item in planned:
        for finding in object_findings(item.custom.manifest()):
            report(item, finding)
    scaled = [item for item in planned if item.custom.kind == "ScaledObject"]
    for index, finding in scaled_object_conflicts([item.custom.manifest() for item in scaled]):
        report(scaled[index], finding)
    for origin, where, query in shipped_queries(cfg):
        problem = promql_problem(query)
        if problem:
            result.problems.append((format_key_path(origin), f"{where}: Prometheus would refuse {query!r}: {problem}"))
    problems, warnings = system_pool_findings(cfg)
    result.problems += [(format_key_path(key), f"the scheduler would leave pods Pending: {message}") for key, message in problems]
    result.warnings += [(format_key_path(key), message) for key, message in warnings]
    result.warnings += [(format_key_path(key), message) for key, message in public_range_warnings(cfg)]
    for index, model in enumerate(cfg.models):  # refused fits are config errors already; these are doubts
        doubt = fit_warning(model)
        if doubt:
            result.warnings.append((format_key_path(("models", index, fit_key(model))), doubt))
    return result


def checked_stack_config(
    raw: Mapping[str, Any], stack_file: str, secret_keys: Iterable[str] = ()
) -> tuple[StackConfig, list[tuple[str, str]]]:
    """The stack config, validated and preflighted: raises ConfigError (config problems first,
    then what an operator would refuse); returns the config and the preflight's warnings."""
    cfg = parse_stack_config(raw, stack_file, secret_keys)
    result = preflight(cfg)
    if result.problems:
        raise ConfigError(stack_file, result.problems)
    return cfg, result.warnings
