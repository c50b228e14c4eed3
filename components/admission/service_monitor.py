"""What Prometheus Operator v0.93 refuses in a ServiceMonitor when it selects monitors for Prometheus.

There is no webhook for ServiceMonitors: the operator checks each one while it builds the scrape
configuration (`checkServiceMonitor`, `pkg/prometheus/resource_selector.go`) and drops an invalid
one with only an event, so the model's metrics (and with them KEDA's scaling signal) silently
never arrive. The checks that do not need the cluster:

- `scrapeTimeout` no longer than the scrape interval (`CompareScrapeTimeoutToScrapeInterval`,
  `pkg/prometheus/promcfg.go`), both Prometheus durations; an unset interval is Prometheus' 30s;
- each relabeling valid (`LabelConfigValidator.ValidateRelabelConfig`,
  `pkg/prometheus/validation/validator.go`, for Prometheus 3, whose label names are UTF-8).
"""

from __future__ import annotations

import re
from typing import Any

from . import Finding
from .durations import parse_prometheus_duration

SOURCE = "Prometheus Operator v0.93 ServiceMonitor selection"
DEFAULT_SCRAPE_INTERVAL = "30s"  # operator.DefaultScrapeInterval; kube-prometheus-stack leaves it unset
RELABEL_ACTIONS = frozenset(
    {
        "replace",
        "keep",
        "drop",
        "hashmod",
        "labelmap",
        "labeldrop",
        "labelkeep",
        "lowercase",
        "uppercase",
        "keepequal",
        "dropequal",
    }
)
_NEEDS_TARGET = frozenset({"replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"})
# RE2 (Go's regexp) has no look-around and no backreferences; Python's re has both.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]")


def _regex_problem(pattern: str) -> str | None:
    if _NOT_RE2.search(pattern):
        return "look-around and backreferences are not RE2 syntax"
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    return None


def relabel_findings(path: tuple, config: dict[str, Any]) -> list[Finding]:
    source = f"{SOURCE}, ValidateRelabelConfig"
    action = str(config.get("action") or "replace").lower()
    if action not in RELABEL_ACTIONS:
        return [Finding((*path, "action"), f"unknown relabel action {config.get('action')!r}", source)]
    findings: list[Finding] = []
    regex = config.get("regex")
    if regex is not None:
        problem = _regex_problem(str(regex))
        if problem:
            findings.append(Finding((*path, "regex"), f"invalid regex {regex} for relabel configuration: {problem}", source))
    if action == "hashmod" and not config.get("modulus"):
        findings.append(Finding((*path, "modulus"), "relabel configuration for hashmod requires non-zero modulus", source))
    if action in _NEEDS_TARGET and not config.get("targetLabel"):
        findings.append(
            Finding((*path, "targetLabel"), f"relabel configuration for {action} action needs targetLabel value", source)
        )
    if action in ("labeldrop", "labelkeep"):
        extra = [k for k in ("sourceLabels", "targetLabel", "modulus", "separator", "replacement") if config.get(k)]
        if extra:
            findings.append(
                Finding(path, f"{action} action requires only 'regex', and no other fields (has {', '.join(extra)})", source)
            )
    if action in ("keepequal", "dropequal"):
        extra = [
            k for k in ("regex", "modulus", "separator", "replacement") if config.get(k) not in (None, "", "(.*)", 0, ";", "$1")
        ]
        if extra:
            findings.append(
                Finding(path, f"{action} action requires only 'source_labels' and `target_label`, and no other fields", source)
            )
    return findings


def service_monitor_findings(obj: dict[str, Any]) -> list[Finding]:
    """What the operator would refuse in one ServiceMonitor (monitoring.coreos.com/v1)."""
    findings: list[Finding] = []
    for i, endpoint in enumerate((obj.get("spec") or {}).get("endpoints") or []):
        path = ("spec", "endpoints", i)
        durations: dict[str, int] = {}
        for key in ("interval", "scrapeTimeout"):
            if endpoint.get(key):
                try:
                    durations[key] = parse_prometheus_duration(endpoint[key])
                except ValueError as exc:
                    findings.append(
                        Finding(
                            (*path, key),
                            f"invalid {key} {endpoint[key]!r}: {exc}",
                            f"{SOURCE}, CompareScrapeTimeoutToScrapeInterval",
                        )
                    )
        interval = durations.get("interval", parse_prometheus_duration(DEFAULT_SCRAPE_INTERVAL))
        if "scrapeTimeout" in durations and durations["scrapeTimeout"] > interval:
            findings.append(
                Finding(
                    (*path, "scrapeTimeout"),
                    f"scrapeTimeout {endpoint['scrapeTimeout']!r} greater than scrapeInterval {endpoint.get('interval', DEFAULT_SCRAPE_INTERVAL)!r}",
                    f"{SOURCE}, CompareScrapeTimeoutToScrapeInterval",
                )
            )
        for key in ("relabelings", "metricRelabelings"):
            for j, config in enumerate(endpoint.get(key) or []):
                findings += relabel_findings((*path, key, j), config)
    return findings
