"""Prometheus Operator v0.93's admission webhook for PrometheusRules (`/admission-prometheusrules/validate`).

The webhook (`pkg/admission/admission.go`) calls `operator.ValidateRule` (`pkg/operator/rules.go`),
which re-serialises the spec, refuses it above 512 KiB, and runs Prometheus' rule-file validation
(`rulefmt.Parse`, prometheus v3.13.1 `model/rulefmt/rulefmt.go`) with the legacy name scheme and no
experimental PromQL features (`cmd/operator/main.go`). The operator runs the same function again
when it builds the rule files, skipping any object that fails. The rules, in `rulefmt`'s order:

- groups: a name, unique within the object (`RuleGroups.Validate`); group labels are label names;
- rules: exactly one of `record` and `alert`; `expr` set and parsing as PromQL (`Rule.Validate`);
- recording rules: a metric name without braces, no annotations, no `for`/`keep_firing_for`;
- labels are label names other than `__name__`; annotation keys are label names;
- `for`, `keep_firing_for`, `interval`, `query_offset` are Prometheus durations (`model.ParseDuration`);
- alerting rules' label and annotation values parse as alert templates (`testTemplateParsing`).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from . import Finding
from .durations import parse_prometheus_duration
from .go_template import template_problem
from .promql import promql_problem

SOURCE = "Prometheus Operator v0.93 PrometheusRule webhook"
MAX_RULE_FILE_BYTES = 524288  # MaxConfigMapDataSize: half of a Secret's 1 MiB
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # model.LegacyValidation
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def _duration_findings(path: tuple, value: Any, function: str) -> list[Finding]:
    if value is None or (value == "" and path[-1] in ("for", "interval")):
        return []  # the operator turns an empty for/interval into "absent"
    try:
        parse_prometheus_duration(str(value))
    except ValueError as exc:
        return [Finding(path, f"{value!r}: {exc}", f"{SOURCE}, {function}")]
    return []


def _nonzero_duration(value: Any) -> bool:
    try:
        return value not in (None, "") and parse_prometheus_duration(str(value)) > 0
    except ValueError:
        return False  # reported as a bad duration already


def _name_findings(path: tuple, names: dict, what: str, forbid_metric_name: bool) -> list[Finding]:
    return [
        Finding((*path, key), f"invalid {what} name: {key}", f"{SOURCE}, rulefmt Rule.Validate")
        for key in names
        if not LABEL_NAME.match(str(key)) or (forbid_metric_name and key == "__name__")
    ]


def _rule_findings(path: tuple, rule: dict) -> list[Finding]:
    source = f"{SOURCE}, rulefmt Rule.Validate"
    record, alert, expr = rule.get("record", ""), rule.get("alert", ""), rule.get("expr", "")
    findings: list[Finding] = []
    if record and alert:
        findings.append(Finding(path, "only one of 'record' and 'alert' must be set", source))
    if not record and not alert:
        findings.append(Finding(path, "one of 'record' or 'alert' must be set", source))
    if expr == "" or expr is None:
        findings.append(Finding((*path, "expr"), "field 'expr' must be set in rule", source))
    else:
        problem = promql_problem(str(expr))
        if problem:
            findings.append(Finding((*path, "expr"), f"could not parse expression: {problem}", source))
    for key in ("for", "keep_firing_for"):
        findings += _duration_findings((*path, key), rule.get(key), "model.ParseDuration")
    if record:
        if rule.get("annotations"):
            findings.append(Finding((*path, "annotations"), "invalid field 'annotations' in recording rule", source))
        for key in ("for", "keep_firing_for"):
            if _nonzero_duration(rule.get(key)):
                findings.append(Finding((*path, key), f"invalid field '{key}' in recording rule", source))
        if not METRIC_NAME.match(record):
            findings.append(Finding((*path, "record"), f"invalid recording rule name: {record}", source))
        if "{" in record or "}" in record:
            findings.append(
                Finding((*path, "record"), f"braces present in the recording rule name; should it be in expr?: {record}", source)
            )
    labels, annotations = rule.get("labels") or {}, rule.get("annotations") or {}
    findings += _name_findings((*path, "labels"), labels, "label", forbid_metric_name=True)
    findings += _name_findings((*path, "annotations"), annotations, "annotation", forbid_metric_name=False)
    if alert:  # testTemplateParsing: alerting rules only
        for key, values in (("labels", labels), ("annotations", annotations)):
            for name, value in values.items():
                problem = template_problem(str(value))
                if problem:
                    findings.append(
                        Finding(
                            (*path, key, name), f"template: __alert_{alert}: {problem}", f"{SOURCE}, rulefmt testTemplateParsing"
                        )
                    )
    return findings


def prometheus_rule_findings(obj: dict[str, Any]) -> list[Finding]:
    """What the webhook would refuse in one PrometheusRule (monitoring.coreos.com/v1)."""
    spec = obj.get("spec") or {}
    groups = spec.get("groups") or []
    findings: list[Finding] = []
    size = len(yaml.safe_dump(spec, sort_keys=True, allow_unicode=True).encode())
    if size > MAX_RULE_FILE_BYTES:
        findings.append(
            Finding(
                ("spec",),
                f"the length of rendered Prometheus Rule is {size} bytes which is above the maximum limit of {MAX_RULE_FILE_BYTES} bytes",
                f"{SOURCE}, operator.ValidateRule",
            )
        )
    seen: set[str] = set()
    for i, group in enumerate(groups):
        path = ("spec", "groups", i)
        name = group.get("name", "")
        if not name:
            findings.append(Finding((*path, "name"), "Groupname must not be empty", f"{SOURCE}, rulefmt RuleGroups.Validate"))
        elif name in seen:
            findings.append(
                Finding(
                    (*path, "name"), f'groupname: "{name}" is repeated in the same file', f"{SOURCE}, rulefmt RuleGroups.Validate"
                )
            )
        seen.add(name)
        findings += _name_findings((*path, "labels"), group.get("labels") or {}, "label", forbid_metric_name=True)
        for key in ("interval", "query_offset"):
            findings += _duration_findings((*path, key), group.get(key), "model.ParseDuration")
        for j, rule in enumerate(group.get("rules") or []):
            findings += _rule_findings((*path, "rules", j), rule)
    return findings
