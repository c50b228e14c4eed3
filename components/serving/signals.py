"""What a model service scales and pages on: the KEDA ScaledObject spec and the PrometheusRule.

Every query is scoped to one model (its namespace and its served name, vLLM's `model_name` label)
and uses only metric names vLLM 0.33.0 publishes (`vllm:kv_cache_usage_perc`, not the removed
`vllm:gpu_cache_usage_perc`), kube-state-metrics' Deployment series, and the DCGM counters our
exporter is configured with. Tests check each name against the upstream lists.
"""

from __future__ import annotations

from ..catalog.scale_out import assumptions
from ..config.models import ModelConfig
from ..config.types import duration_seconds

QUEUE_METRIC = "vllm:num_requests_waiting"
KV_CACHE_METRIC = "vllm:kv_cache_usage_perc"
FINISHED_METRIC = "vllm:request_success_total"
REJECTED_METRIC = "vllm:admission_rejections_total"
GPU_TEMP_METRIC = "DCGM_FI_DEV_GPU_TEMP"

KV_CACHE_ALERT = 0.9
GPU_TEMP_ALERT_CELSIUS = 85
ERROR_RATIO_ALERT = 0.05
QUEUE_ALERT_FACTOR = 3  # queue per replica this many times the scaling target: scaling is not keeping up


def model_selector(model: ModelConfig) -> str:
    return f'namespace="{model.namespace_name}", model_name="{model.served_name}"'


QUEUE_TRIGGER = "queue"
KV_CACHE_TRIGGER = "kv-cache"
ACTIVE_HOURS_TRIGGER = "active-hours"
NO_READY_REPLICA_ALERT = "VllmNoReadyReplica"
QUEUE_ALERT = "VllmRequestsQueueing"
# The HPA's own sync period (the scale-out table's): a shorter policy period could not act sooner.
SCALE_UP_PERIOD_SECONDS = int(assumptions().hpa_sync.value)


def scaled_object_spec(model: ModelConfig, deployment: str, prometheus_url: str) -> dict:
    """KEDA ScaledObject spec (keda.sh/v1alpha1; checked against the pinned CRD and KEDA's own rules).

    - Both Prometheus triggers are AverageValue targets over a sum: the HPA divides the sum by the
      replica count, so the queue target is queued requests per replica and the KV-cache target is
      the mean usage per replica (for KV usage the same replica count as a Value target over the
      mean, ceil(sum / target)). One target type on purpose: KEDA's fallback for an AverageValue
      target needs nothing from the cluster, while for a Value target it divides by the ready
      replicas and does nothing when none is ready (`pkg/fallback/fallback.go`).
    - Scale-up is immediate and may double, or add four, every HPA sync (15 s): a 100x spike is
      not rationed to two replicas a minute; nodes, not the policy, are what it waits for.
      Scale-down waits out the stabilization window and sheds one replica per two minutes,
      because a replica removed by mistake costs minutes to return.
    - If Prometheus is unreachable, KEDA holds the current count (never drops to the minimum).
    - Scale-to-zero: minReplicaCount 0; the triggers' activation thresholds keep the model up while
      anything is queued or cached, and the cron trigger brings it back in its active hours. Only
      then do KEDA's pollingInterval and cooldownPeriod matter (above zero the HPA polls KEDA's
      metrics server itself), so only then are they set: KEDA's webhook warns about them otherwise.
    """
    scaling = model.scaling
    selector = model_selector(model)
    triggers: list[dict] = [
        {
            "type": "prometheus",
            "name": name,
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": prometheus_url,
                "query": f"sum({metric}{{{selector}}})",
                "threshold": str(threshold),
                "activationThreshold": "0",
            },
        }
        for name, metric, threshold in (
            (QUEUE_TRIGGER, QUEUE_METRIC, scaling.waiting_requests_per_replica),
            (KV_CACHE_TRIGGER, KV_CACHE_METRIC, scaling.kv_cache_usage),
        )
    ]
    if scaling.scale_to_zero and scaling.active_hours is not None:
        hours = scaling.active_hours
        triggers.append(
            {
                "type": "cron",
                "name": ACTIVE_HOURS_TRIGGER,
                "metadata": {
                    "timezone": hours.timezone,
                    "start": hours.start,
                    "end": hours.end,
                    "desiredReplicas": str(model.min_replicas),
                },
            }
        )
    spec: dict = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "minReplicaCount": 0 if scaling.scale_to_zero else model.min_replicas,
        "maxReplicaCount": model.max_replicas,
        "fallback": {"failureThreshold": 3, "replicas": model.min_replicas, "behavior": "currentReplicasIfHigher"},
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                "behavior": {
                    "scaleUp": {
                        "stabilizationWindowSeconds": 0,
                        "selectPolicy": "Max",
                        "policies": [
                            {"type": "Percent", "value": 100, "periodSeconds": SCALE_UP_PERIOD_SECONDS},
                            {"type": "Pods", "value": 4, "periodSeconds": SCALE_UP_PERIOD_SECONDS},
                        ],
                    },
                    "scaleDown": {
                        "stabilizationWindowSeconds": duration_seconds(scaling.scale_down_stabilization),
                        "selectPolicy": "Min",
                        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
                    },
                }
            }
        },
        "triggers": triggers,
    }
    if scaling.scale_to_zero:
        spec["pollingInterval"] = duration_seconds(scaling.polling_interval)
        spec["cooldownPeriod"] = duration_seconds(scaling.idle_before_scale_to_zero)
        # A fresh model must not be scaled to zero while its first replica is still loading.
        spec["initialCooldownPeriod"] = model.load_seconds
    return spec


# Where each ScaledObject field comes from in the model's config, for errors at the right key.
_SCALED_OBJECT_KEYS: dict[str, tuple[str, ...]] = {
    "minReplicaCount": ("minReplicas",),
    "idleReplicaCount": ("minReplicas",),
    "maxReplicaCount": ("maxReplicas",),
    "pollingInterval": ("scaling", "pollingInterval"),
    "cooldownPeriod": ("scaling", "idleBeforeScaleToZero"),
    "initialCooldownPeriod": ("loadTimeout",),
    "fallback": ("minReplicas",),
}
_TRIGGER_KEYS: dict[str, tuple[str, ...]] = {
    QUEUE_TRIGGER: ("scaling", "waitingRequestsPerReplica"),
    KV_CACHE_TRIGGER: ("scaling", "kvCacheUsage"),
    ACTIVE_HOURS_TRIGGER: ("scaling", "activeHours"),
}


def scaled_object_config_key(path: tuple, manifest: dict) -> tuple[str, ...]:
    """The model config key (below `models[i]`) that produced the ScaledObject field at `path`."""
    spec = manifest.get("spec", {})
    if path[:2] == ("metadata", "name"):
        return ("name",)
    if len(path) < 2 or path[0] != "spec":
        return ()
    if path[1] == "minReplicaCount" and spec.get("minReplicaCount") == 0:
        return ("scaling", "scaleToZero")
    if path[1] == "advanced":
        return ("scaling", "scaleDownStabilization") if "scaleDown" in path else ()
    if path[1] == "triggers" and len(path) > 2 and isinstance(path[2], int) and path[2] < len(spec.get("triggers", [])):
        key = _TRIGGER_KEYS.get(spec["triggers"][path[2]].get("name", ""), ("scaling",))
        field = path[4] if len(path) > 4 and path[3] == "metadata" else None
        if key == _TRIGGER_KEYS[ACTIVE_HOURS_TRIGGER] and field in ("start", "end", "timezone"):
            return (*key, field)
        return ("minReplicas",) if field == "desiredReplicas" else key
    return _SCALED_OBJECT_KEYS.get(str(path[1]), ())


def service_monitor_spec(model: ModelConfig, port_name: str, selector: dict[str, str]) -> dict:
    """vLLM's /metrics every scaleOut.metricsInterval (5 s by default: KEDA reads what Prometheus
    scraped, so this bounds how fast a spike is seen), with a timeout below the interval as
    Prometheus Operator requires."""
    interval = model.metrics_seconds
    timeout = min(10, max(1, interval - 1))
    return {
        "selector": {"matchLabels": selector},
        "namespaceSelector": {"matchNames": [model.namespace_name]},
        "endpoints": [{"port": port_name, "path": "/metrics", "interval": f"{interval}s", "scrapeTimeout": f"{timeout}s"}],
    }


def prometheus_rule_spec(model: ModelConfig, deployment: str) -> dict:
    return {"groups": [{"name": f"vllm-{model.name}", "rules": alert_rules(model, deployment)}]}


def prometheus_rule_config_key(path: tuple, manifest: dict) -> tuple[str, ...]:
    """The model config key that produced the PrometheusRule field at `path` (the model itself
    where no single key does: the selectors come from its name and namespace)."""
    if len(path) >= 5 and path[:2] == ("spec", "groups") and path[3] == "rules":
        try:
            alert = manifest["spec"]["groups"][path[2]]["rules"][path[4]].get("alert")
        except (IndexError, KeyError):
            return ()
        if alert == NO_READY_REPLICA_ALERT and path[5:6] == ("for",):
            return ("loadTimeout",)
        if alert == QUEUE_ALERT:
            return ("scaling", "waitingRequestsPerReplica")
    return ()


def alert_rules(model: ModelConfig, deployment: str) -> list[dict]:
    """The model's PrometheusRule alerts. `for` durations are long enough that a scale-up already
    under way resolves the condition before anyone is paged."""
    selector = model_selector(model)
    ns = model.namespace_name
    labels = {"llm_platform_model": model.name}
    load_minutes = model.load_seconds // 60
    queue_alert = model.scaling.waiting_requests_per_replica * QUEUE_ALERT_FACTOR

    def rule(name: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict:
        return {
            "alert": name,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity, **labels},
            "annotations": {"summary": summary, "description": description},
        }

    finished = f"sum(rate({FINISHED_METRIC}{{{selector}}}[5m]))"
    errors = f'sum(rate({FINISHED_METRIC}{{{selector}, finished_reason="error"}}[5m]))'
    rejected = f"(sum(rate({REJECTED_METRIC}{{{selector}}}[5m])) or vector(0))"
    return [
        rule(
            "VllmKvCacheNearlyFull",
            f"max by (pod) ({KV_CACHE_METRIC}{{{selector}}}) > {KV_CACHE_ALERT}",
            "10m",
            "warning",
            f"{model.name}: KV cache above {KV_CACHE_ALERT:.0%} on {{{{ $labels.pod }}}}",
            "Requests will queue or be preempted. Raise maxReplicas, use kvCacheDtype fp8, or lower maxModelLen.",
        ),
        rule(
            QUEUE_ALERT,
            f"sum({QUEUE_METRIC}{{{selector}}}) / count({QUEUE_METRIC}{{{selector}}}) > {queue_alert}",
            "10m",
            "warning",
            f"{model.name}: more than {queue_alert} requests waiting per replica",
            "Autoscaling is not keeping up: maxReplicas reached, or GPU nodes cannot be provisioned (check Karpenter).",
        ),
        rule(
            NO_READY_REPLICA_ALERT,
            f'kube_deployment_spec_replicas{{namespace="{ns}", deployment="{deployment}"}} > 0 '
            f'and on (namespace, deployment) kube_deployment_status_replicas_available{{namespace="{ns}", deployment="{deployment}"}} == 0',
            f"{load_minutes + 10}m",
            "critical",
            f"{model.name}: no replica is serving",
            "Every request fails. Check pending pods (GPU capacity), the weight download Job, and vLLM's logs.",
        ),
        rule(
            "VllmGpuTemperatureHigh",
            # DCGM's own namespace/pod labels (the pod using the GPU) arrive as exported_* because the
            # scrape's target labels take the plain names.
            f'max by (exported_pod, gpu) ({GPU_TEMP_METRIC}{{exported_namespace="{ns}", exported_pod=~"{deployment}-.*"}}) '
            f"> {GPU_TEMP_ALERT_CELSIUS}",
            "10m",
            "warning",
            f"{model.name}: GPU {{{{ $labels.gpu }}}} of {{{{ $labels.exported_pod }}}} above {GPU_TEMP_ALERT_CELSIUS}°C",
            "The GPU will throttle clocks and tokens/s will drop; a persistently hot node should be drained.",
        ),
        rule(
            "VllmRequestErrors",
            f"({errors} + {rejected}) / ({finished} + {rejected}) > {ERROR_RATIO_ALERT}",
            "10m",
            "critical",
            f"{model.name}: more than {ERROR_RATIO_ALERT:.0%} of requests fail",
            "Requests end in an engine error or are rejected by vLLM's queue limit.",
        ),
    ]
