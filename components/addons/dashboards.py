"""Our Grafana dashboards (GPU fleet from DCGM, vLLM serving), kept as data so tests can check every
query against the metric names the pinned exporters really publish.

They are provisioned as ConfigMaps labelled for kube-prometheus-stack's Grafana sidecar, which
loads dashboards from every namespace; no click-ops, and a dashboard change is a reviewed diff.
Queries use `$__rate_interval` so rates stay correct at any scrape interval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# The labels kube-prometheus-stack's Grafana sidecar watches for (chart defaults, set explicitly).
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"


@dataclass(frozen=True)
class Panel:
    title: str
    exprs: tuple[str, ...]
    unit: str = "short"
    legend: str = ""
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]
    variables: tuple[tuple[str, str], ...] = ()  # (name, label_values query)


GPU_DASHBOARD = Dashboard(
    uid="llm-platform-gpus",
    title="LLM platform / GPUs (DCGM)",
    variables=(("node", "label_values(DCGM_FI_DEV_GPU_UTIL, Hostname)"),),
    panels=(
        Panel(
            "GPU utilization",
            ('avg by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL{Hostname=~"$node"})',),
            unit="percent",
            legend="{{Hostname}} / GPU {{gpu}}",
            description="Share of time a kernel ran. 100% does not mean the GPU is saturated: see tensor activity.",
        ),
        Panel(
            "Tensor core activity",
            ('avg by (Hostname, gpu) (DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{Hostname=~"$node"})',),
            unit="percentunit",
            legend="{{Hostname}} / GPU {{gpu}}",
            description="The real work of an LLM: matrix multiplies on the tensor pipes.",
        ),
        Panel(
            "Graphics engine activity",
            ('avg by (Hostname, gpu) (DCGM_FI_PROF_GR_ENGINE_ACTIVE{Hostname=~"$node"})',),
            unit="percentunit",
            legend="{{Hostname}} / GPU {{gpu}}",
        ),
        Panel(
            "GPU memory used",
            (
                'sum by (Hostname, gpu) (DCGM_FI_DEV_FB_USED{Hostname=~"$node"}) / '
                'sum by (Hostname, gpu) (DCGM_FI_DEV_FB_USED{Hostname=~"$node"} + DCGM_FI_DEV_FB_FREE{Hostname=~"$node"})',
            ),
            unit="percentunit",
            legend="{{Hostname}} / GPU {{gpu}}",
            description="vLLM pre-allocates KV cache (--gpu-memory-utilization), so ~90% is normal for a loaded model.",
        ),
        Panel(
            "GPU temperature",
            ('max by (Hostname, gpu) (DCGM_FI_DEV_GPU_TEMP{Hostname=~"$node"})',),
            unit="celsius",
            legend="{{Hostname}} / GPU {{gpu}}",
        ),
        Panel(
            "Power draw",
            ('sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE{Hostname=~"$node"})',),
            unit="watt",
            legend="{{Hostname}}",
        ),
        Panel(
            "Last XID error",
            ('max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS{Hostname=~"$node"})',),
            legend="{{Hostname}} / GPU {{gpu}}",
            description="Non-zero: the driver reported an XID (48, 79 and 94/95 mean the GPU needs replacing).",
        ),
    ),
)

VLLM_DASHBOARD = Dashboard(
    uid="llm-platform-vllm",
    title="LLM platform / vLLM serving",
    variables=(("model", "label_values(vllm:num_requests_running, model_name)"),),
    panels=(
        Panel(
            "Requests waiting (queue) — the scaling signal",
            ('sum by (model_name) (vllm:num_requests_waiting{model_name=~"$model"})',),
            legend="{{model_name}}",
            description="Requests admitted but not yet scheduled on the GPU. KEDA scales replicas on this.",
        ),
        Panel(
            "Requests running",
            ('sum by (model_name) (vllm:num_requests_running{model_name=~"$model"})',),
            legend="{{model_name}}",
        ),
        Panel(
            "KV cache usage",
            ('max by (model_name, pod) (vllm:kv_cache_usage_perc{model_name=~"$model"})',),
            unit="percentunit",
            legend="{{model_name}} {{pod}}",
            description="Near 100% the scheduler preempts requests; add replicas or shorten contexts.",
        ),
        Panel(
            "Time to first token (p50, p95)",
            tuple(
                f"histogram_quantile({q}, sum by (le, model_name) "
                f'(rate(vllm:time_to_first_token_seconds_bucket{{model_name=~"$model"}}[$__rate_interval])))'
                for q in ("0.5", "0.95")
            ),
            unit="s",
            legend="{{model_name}}",
        ),
        Panel(
            "Inter-token latency (p50, p95)",
            tuple(
                f"histogram_quantile({q}, sum by (le, model_name) "
                f'(rate(vllm:inter_token_latency_seconds_bucket{{model_name=~"$model"}}[$__rate_interval])))'
                for q in ("0.5", "0.95")
            ),
            unit="s",
            legend="{{model_name}}",
        ),
        Panel(
            "Queue time (p95)",
            (
                "histogram_quantile(0.95, sum by (le, model_name) "
                '(rate(vllm:request_queue_time_seconds_bucket{model_name=~"$model"}[$__rate_interval])))',
            ),
            unit="s",
            legend="{{model_name}}",
        ),
        Panel(
            "Tokens per second",
            (
                'sum by (model_name) (rate(vllm:generation_tokens_total{model_name=~"$model"}[$__rate_interval]))',
                'sum by (model_name) (rate(vllm:prompt_tokens_total{model_name=~"$model"}[$__rate_interval]))',
            ),
            unit="short",
            legend="{{model_name}}",
            description="Generated (first query) and prompt (second) tokens.",
        ),
        Panel(
            "Finished requests by reason",
            (
                'sum by (model_name, finished_reason) '
                '(rate(vllm:request_success_total{model_name=~"$model"}[$__rate_interval]))',
            ),
            unit="reqps",
            legend="{{model_name}} {{finished_reason}}",
        ),
        Panel(
            "Preemptions",
            ('sum by (model_name) (rate(vllm:num_preemptions_total{model_name=~"$model"}[$__rate_interval]))',),
            unit="ops",
            legend="{{model_name}}",
        ),
        Panel(
            "Prefix cache hit rate",
            (
                'sum by (model_name) (rate(vllm:prefix_cache_hits_total{model_name=~"$model"}[$__rate_interval])) / '
                'sum by (model_name) (rate(vllm:prefix_cache_queries_total{model_name=~"$model"}[$__rate_interval]))',
            ),
            unit="percentunit",
            legend="{{model_name}}",
        ),
    ),
)

DASHBOARDS = (GPU_DASHBOARD, VLLM_DASHBOARD)


def dashboard_json(dashboard: Dashboard) -> str:
    """Grafana dashboard model (schemaVersion 39) with timeseries panels on a two-column grid."""
    panels = []
    for i, panel in enumerate(dashboard.panels):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": panel.title,
                "description": panel.description,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
                "targets": [
                    {"refId": chr(ord("A") + j), "expr": expr, "legendFormat": panel.legend}
                    for j, expr in enumerate(panel.exprs)
                ],
            }
        )
    variables = [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
        *[
            {
                "name": name,
                "type": "query",
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "query": {"query": query, "refId": "var"},
                "refresh": 2,
                "includeAll": True,
                "multi": True,
                "allValue": ".*",
                "current": {"text": "All", "value": "$__all"},
            }
            for name, query in dashboard.variables
        ],
    ]
    model = {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "tags": ["llm-platform"],
        "schemaVersion": 39,
        "editable": False,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": variables},
        "panels": panels,
    }
    return json.dumps(model, indent=2, sort_keys=True)
