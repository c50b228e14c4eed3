"""Metrics for scaling and for humans: kube-prometheus-stack, our dashboards, optional prometheus-adapter.

Choices, and why:
- Prometheus selects ServiceMonitors, PodMonitors and PrometheusRules from every namespace, not
  just those labelled for this release (`*SelectorNilUsesHelmValues: false`): model services
  bring their own monitors in their own namespaces.
- Retention and volume per stack; retention is also capped by size (85% of the volume) so a
  cardinality burst cannot fill the disk and stop ingestion, which would blind KEDA.
- Replicas spread across zones (prod: 2 Prometheus, 2 Alertmanagers).
- Grafana's admin password is generated and kept secret, never the chart's well-known default.
- Dashboards are ConfigMaps labelled for the Grafana sidecar (see `dashboards.py`).
- In a protected stack the namespace and the release are Pulumi-protected: the operator's
  StatefulSets own the volume claims, so no Pulumi resource holds them, and removing either would
  delete them. The cluster's block StorageClass then retains its disks, so even a claim deleted by
  hand leaves its Prometheus series on a Released volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from ..clusters.contract import ClusterContract
from ..config.addons import PrometheusAdapterAddon, PrometheusAddon
from ..releases import KUBE_PROMETHEUS_STACK, PROMETHEUS_ADAPTER, addon_namespace, pinned_release
from ..scheduling import ZONE_LABEL
from .dashboards import DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE, DASHBOARDS, dashboard_json

NAMESPACE = "monitoring"
RELEASE = "kube-prometheus-stack"
ADAPTER_NAMESPACE = "prometheus-adapter"
ADAPTER_RELEASE = "prometheus-adapter"
GRAFANA_ADMIN_SECRET = "grafana-admin"
# The chart names its Prometheus Service <fullname>-prometheus; fullname is the release name here.
PROMETHEUS_SERVICE = f"{RELEASE}-prometheus"
PROMETHEUS_PORT = 9090
PROMETHEUS_URL = f"http://{PROMETHEUS_SERVICE}.{NAMESPACE}.svc:{PROMETHEUS_PORT}"

# vLLM's gauges as per-pod custom metrics (custom.metrics.k8s.io) for plain HPAs. No external
# rules: KEDA's metrics server owns external.metrics.k8s.io, and only one APIService can.
ADAPTER_RULES = [
    {
        "seriesQuery": '{__name__=~"vllm:num_requests_(waiting|running)",namespace!="",pod!=""}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "name": {"matches": "^vllm:(.*)$", "as": "vllm_${1}"},
        "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
    }
]


PROMETHEUS_REQUESTS = {"cpu": "500m", "memory": "2Gi"}  # per replica: it scrapes every target


def _volume(storage_class: str, size_gib: int) -> dict:
    return {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": storage_class,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{size_gib}Gi"}},
            }
        }
    }


def kube_prometheus_stack_values(cfg: PrometheusAddon, cluster: ClusterContract) -> dict:
    system = cluster.system_node_selector
    spread = "hard" if cfg.replicas > 1 else "soft"
    return {
        "crds": {"enabled": True},
        "prometheusOperator": {
            "nodeSelector": system,
            "admissionWebhooks": {"patch": {"nodeSelector": system}},
        },
        "prometheus": {
            "prometheusSpec": {
                "replicas": cfg.replicas,
                "retention": cfg.retention,
                "retentionSize": f"{int(cfg.storage_gib * 0.85)}GB",
                "storageSpec": _volume(cluster.block_storage_class, cfg.storage_gib),
                "externalLabels": {"cluster": cluster.name},
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "probeSelectorNilUsesHelmValues": False,
                "scrapeConfigSelectorNilUsesHelmValues": False,
                "nodeSelector": system,
                "podAntiAffinity": spread,
                "podAntiAffinityTopologyKey": ZONE_LABEL,
                "resources": {"requests": dict(PROMETHEUS_REQUESTS)},
            }
        },
        "alertmanager": {
            "alertmanagerSpec": {
                "replicas": cfg.alertmanager_replicas,
                "storage": _volume(cluster.block_storage_class, 10),
                "nodeSelector": system,
                "podAntiAffinity": "hard" if cfg.alertmanager_replicas > 1 else "soft",
                "podAntiAffinityTopologyKey": ZONE_LABEL,
            }
        },
        # A managed control plane (EKS, GKE) exposes no scheduler, controller-manager or etcd to
        # in-cluster Prometheus: scraping them only makes KubeSchedulerDown and friends fire forever.
        # The chart drops their rules with them.
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": cluster.kube_proxy_metrics},
        "grafana": {
            "enabled": cfg.grafana,
            "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL,
                    "labelValue": DASHBOARD_LABEL_VALUE,
                    "searchNamespace": "ALL",
                }
            },
        },
    }


def prometheus_adapter_values(cfg: PrometheusAdapterAddon, cluster: ClusterContract) -> dict:
    return {
        "prometheus": {"url": f"http://{PROMETHEUS_SERVICE}.{NAMESPACE}.svc", "port": PROMETHEUS_PORT},
        "replicas": cfg.replicas,
        "nodeSelector": cluster.system_node_selector,
        "rules": {"default": False, "custom": ADAPTER_RULES},
    }


@dataclass(frozen=True)
class MonitoringArgs:
    cluster: ClusterContract
    prometheus: PrometheusAddon
    adapter: PrometheusAdapterAddon
    random_provider: pulumi.ProviderResource
    protect: bool = False  # the stack protects its data (`cluster.protect`)


class Monitoring(pulumi.ComponentResource):
    release: k8s.helm.v3.Release  # brings the ServiceMonitor / PodMonitor / PrometheusRule CRDs
    prometheus_url: str

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:addons:Monitoring", name, None, opts)
        cluster, cfg = args.cluster, args.prometheus
        k8s_child = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        # Node-exporter needs host networking and host paths.
        namespace = addon_namespace(
            f"{name}-namespace", NAMESPACE, "privileged", cluster.provider, self, protect=args.protect
        )

        depends_on: list[pulumi.Resource] = [cluster.block_storage]
        if cfg.grafana:
            password = random.RandomPassword(
                f"{name}-grafana-admin",
                length=32,
                special=False,
                opts=pulumi.ResourceOptions(parent=self, provider=args.random_provider),
            )
            depends_on.append(
                k8s.core.v1.Secret(
                    f"{name}-grafana-admin",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=GRAFANA_ADMIN_SECRET, namespace=namespace.metadata.name),
                    string_data={"admin-user": "admin", "admin-password": password.result},
                    opts=k8s_child,
                )
            )
            for dashboard in DASHBOARDS:
                k8s.core.v1.ConfigMap(
                    f"{name}-dashboard-{dashboard.uid}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=dashboard.uid,
                        namespace=namespace.metadata.name,
                        labels={DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE},
                    ),
                    data={f"{dashboard.uid}.json": dashboard_json(dashboard)},
                    opts=k8s_child,
                )

        self.release = pinned_release(
            f"{name}-release",
            RELEASE,
            KUBE_PROMETHEUS_STACK,
            namespace,
            kube_prometheus_stack_values(cfg, cluster),
            cluster.provider,
            self,
            depends_on=depends_on,
            protect=args.protect,
        )
        self.prometheus_url = PROMETHEUS_URL
        outputs: dict[str, object] = {"prometheusUrl": PROMETHEUS_URL, "release": self.release.name}
        if args.adapter.enabled:
            adapter_ns = addon_namespace(f"{name}-adapter-namespace", ADAPTER_NAMESPACE, "restricted", cluster.provider, self)
            adapter = pinned_release(
                f"{name}-adapter",
                ADAPTER_RELEASE,
                PROMETHEUS_ADAPTER,
                adapter_ns,
                prometheus_adapter_values(args.adapter, cluster),
                cluster.provider,
                self,
                depends_on=[self.release],
            )
            outputs["adapterRelease"] = adapter.name
        self.register_outputs(outputs)
