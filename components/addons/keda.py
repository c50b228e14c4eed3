"""KEDA: scales model services on what users feel (vLLM's queue depth in Prometheus), not on CPU.

Operator, metrics API server and admission webhooks run on the system pool. With more than one
replica each gets a PodDisruptionBudget and a zone spread, so a node drain or a zone outage never
leaves the cluster without a scaler exactly when a spike arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from ..clusters.contract import ClusterContract
from ..config.addons import KedaAddon
from ..releases import KEDA, addon_namespace, pinned_release
from ..scheduling import ZONE_LABEL

NAMESPACE = "keda"
RELEASE = "keda"
# The chart's `app` pod label per component (its keys under topologySpreadConstraints).
_POD_APP_LABELS = {
    "operator": "keda-operator",
    "metricsServer": "keda-operator-metrics-apiserver",
    "webhooks": "keda-admission-webhooks",
}


def keda_values(cfg: KedaAddon, cluster: ClusterContract) -> dict:
    values: dict = {
        "operator": {"replicaCount": cfg.replicas},
        "metricsServer": {"replicaCount": cfg.replicas},
        "webhooks": {"replicaCount": cfg.replicas},
        "nodeSelector": cluster.system_node_selector,
    }
    if cfg.replicas > 1:
        values["podDisruptionBudget"] = {
            "operator": {"minAvailable": 1},
            "metricServer": {"minAvailable": 1},
            "webhooks": {"minAvailable": 1},
        }
        values["topologySpreadConstraints"] = {
            key: [
                {
                    "maxSkew": 1,
                    "topologyKey": ZONE_LABEL,
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app": app}},
                }
            ]
            for key, app in _POD_APP_LABELS.items()
        }
    return values


@dataclass(frozen=True)
class KedaArgs:
    cluster: ClusterContract
    config: KedaAddon


class Keda(pulumi.ComponentResource):
    release: k8s.helm.v3.Release  # brings the ScaledObject / TriggerAuthentication CRDs

    def __init__(self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:addons:Keda", name, None, opts)
        namespace = addon_namespace(f"{name}-namespace", NAMESPACE, "restricted", args.cluster.provider, self)
        self.release = pinned_release(
            f"{name}-release", RELEASE, KEDA, namespace, keda_values(args.config, args.cluster), args.cluster.provider, self
        )
        self.register_outputs({"release": self.release.name})
