"""What a model service scales and pages on: the KEDA ScaledObject spec and the PrometheusRule.

Every query is scoped to one model (its namespace and its served name, vLLM's `model_name` label)
and uses only metric names vLLM 0.33.0 publishes (`vllm:kv_cache_usage_perc`, not the removed
`vllm:gpu_cache_usage_perc`), kube-state-metrics' Deployment series, and the DCGM counters our
exporter is configured with. Tests check each name against the upstream lists.
"""

from __future__ import annotations

from .config_types import duration_seconds
from .model_config import ModelConfig

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


def scaled_object_spec(model: ModelConfig, deployment: str, prometheus_url: str) -> dict:
    """KEDA ScaledObject spec (keda.sh/v1alpha1, checked against the pinned CRD in tests).

    - Queue depth is an AverageValue target: the HPA divides the model's total queue by replicas.
    - KV-cache usage is already a per-replica fraction, so its mean is a Value target.
    - Scale-up is immediate and may double; scale-down waits out the stabilization window and sheds
      one replica per two minutes, because a replica removed by mistake costs minutes to return.
    - If Prometheus is unreachable, KEDA holds the current count (never drops to the minimum).
    - Scale-to-zero: minReplicaCount 0; the triggers' activation thresholds keep the model up while
      anything is queued or cached, and the cron trigger brings it back in its active hours.
    """
    scaling = model.scaling
    selector = model_selector(model)
    triggers: list[dict] = [
        {
            "type": "prometheus",
            "name": "queue",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": prometheus_url,
                "query": f"sum({QUEUE_METRIC}{{{selector}}})",
                "threshold": str(scaling.waiting_requests_per_replica),
                "activationThreshold": "0",
            },
        },
        {
            "type": "prometheus",
            "name": "kv-cache",
            "metricType": "Value",
            "metadata": {
                "serverAddress": prometheus_url,
                "query": f"avg({KV_CACHE_METRIC}{{{selector}}})",
                "threshold": str(scaling.kv_cache_usage),
                "activationThreshold": "0",
            },
        },
    ]
    if scaling.scale_to_zero and scaling.active_hours is not None:
        hours = scaling.active_hours
        triggers.append(
            {
                "type": "cron",
                "name": "active-hours",
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
        "pollingInterval": duration_seconds(scaling.polling_interval),
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
                            {"type": "Percent", "value": 100, "periodSeconds": 60},
                            {"type": "Pods", "value": 2, "periodSeconds": 60},
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
        spec["cooldownPeriod"] = duration_seconds(scaling.idle_before_scale_to_zero)
        # A fresh model must not be scaled to zero while its first replica is still loading.
        spec["initialCooldownPeriod"] = duration_seconds(model.load_timeout)
    return spec


def alert_rules(model: ModelConfig, deployment: str) -> list[dict]:
    """The model's PrometheusRule alerts. `for` durations are long enough that a scale-up already
    under way resolves the condition before anyone is paged."""
    selector = model_selector(model)
    ns = model.namespace_name
    labels = {"llm_platform_model": model.name}
    load_minutes = duration_seconds(model.load_timeout) // 60
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
            "VllmRequestsQueueing",
            f"sum({QUEUE_METRIC}{{{selector}}}) / count({QUEUE_METRIC}{{{selector}}}) > {queue_alert}",
            "10m",
            "warning",
            f"{model.name}: more than {queue_alert} requests waiting per replica",
            "Autoscaling is not keeping up: maxReplicas reached, or GPU nodes cannot be provisioned (check Karpenter).",
        ),
        rule(
            "VllmNoReadyReplica",
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
