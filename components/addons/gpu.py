"""The GPU software stack: NVIDIA GPU Operator and a standalone DCGM exporter, scraped by Prometheus.

Choices, and why:
- Drivers installed exactly once per cloud. The cluster module that picks the GPU node image says
  whether it carries them (`ClusterContract.gpu_driver_preinstalled`). The EKS AL2023 NVIDIA AMI
  does (AWS: "you must disable the operator installation of the driver and toolkit"), so on EKS
  the operator installs neither; it still brings what the AMI lacks: the device plugin
  (without it Karpenter never sees a GPU node as initialised), GPU feature discovery, NFD and the
  MIG manager.
- The operator's own DCGM exporter is off: DCGM is its own pinned release below, with our counter
  list and our ServiceMonitor. Two exporters per GPU would double every series.
- Every GPU DaemonSet tolerates every GPU pool taint (GPU, spot, extra), or spot nodes would never
  get a device plugin and would sit idle while billed.
- Where the cloud runs the driver and its own device plugin (GKE-managed drivers), the contract says
  so: the operator would add a second device plugin (config keeps it off there), and DCGM, without
  the NVIDIA container runtime, mounts the driver from the host path the contract names.
- MIG is on only when a pool asks for a profile; the strategy is `mixed`, so MIG slices appear as
  `nvidia.com/mig-<profile>` and never masquerade as whole `nvidia.com/gpu`s on other pools.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from ..admission.objects import CustomObject
from ..clusters.contract import ClusterContract
from ..config.addons import DcgmExporterAddon, GpuOperatorAddon
from ..releases import DCGM_EXPORTER, GPU_OPERATOR, addon_namespace, pinned_release
from ..scheduling import LABEL_NODE_ROLE, NODE_ROLE_GPU, GpuPoolPlacement, gpu_node_tolerations

GPU_OPERATOR_NAMESPACE = "gpu-operator"
GPU_OPERATOR_RELEASE = "gpu-operator"
DCGM_NAMESPACE = "dcgm-exporter"
DCGM_RELEASE = "dcgm-exporter"
DCGM_PORT_NAME = "metrics"  # the chart's Service port name
DCGM_APP = "dcgm-exporter"  # the chart's app.kubernetes.io/name; our ServiceMonitor makes it the job label

# (DCGM field, Prometheus type, help). The full list the exporter publishes (the chart's
# `customMetrics` replaces its defaults): what scaling, dashboards and alerts read, plus health.
DCGM_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active."),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory interface is active."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries."),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for uncorrectable errors."),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed."),
)

# Alerts on GPU health. Thresholds: L4/L40S/H100 throttle near 87-90 C; vLLM pre-allocates ~90%
# of GPU memory, so only a nearly full framebuffer is news.
GPU_ALERTS: tuple[dict, ...] = (
    {
        "alert": "GpuXidError",
        "expr": "max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS) > 0",
        "for": "1m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID {{ $value }}",
            "description": "XID 48, 79, 94 and 95 mean the GPU must be replaced; EKS node repair acts on fatal XIDs.",
        },
    },
    {
        "alert": "GpuTemperatureHigh",
        "expr": "max by (Hostname, gpu) (DCGM_FI_DEV_GPU_TEMP) > 85",
        "for": "10m",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} at {{ $value }} C: it will throttle"},
    },
    {
        "alert": "GpuMemoryNearlyFull",
        "expr": (
            "sum by (Hostname, gpu) (DCGM_FI_DEV_FB_USED) / "
            "sum by (Hostname, gpu) (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) > 0.98"
        ),
        "for": "15m",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} has under 2% memory free"},
    },
    {
        "alert": "GpuRowRemapFailure",
        "expr": "max by (Hostname, gpu) (DCGM_FI_DEV_ROW_REMAP_FAILURE) > 0",
        "for": "1m",
        "labels": {"severity": "critical"},
        "annotations": {"summary": "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} failed to remap memory rows: replace it"},
    },
    {
        "alert": "DcgmExporterDown",
        "expr": f'up{{job="{DCGM_APP}"}} == 0',
        "for": "5m",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "DCGM exporter on {{ $labels.node }} is not scraped: GPU metrics (and scaling) are blind"},
    },
)


def counters_csv() -> str:
    return "".join(f"{field}, {kind}, {help_text}\n" for field, kind, help_text in DCGM_COUNTERS)


def gpu_operator_values(
    driver_preinstalled: bool,
    gpu_pools: tuple[GpuPoolPlacement, ...],
    system_selector: dict[str, str],
    device_plugin_preinstalled: bool = False,
    runtime_class: str | None = None,
) -> dict:
    tolerations = gpu_node_tolerations(gpu_pools)
    operator: dict = {"nodeSelector": {"kubernetes.io/os": "linux", **system_selector}}
    if runtime_class:
        operator["runtimeClass"] = runtime_class
    return {
        "driver": {"enabled": not driver_preinstalled},
        "toolkit": {"enabled": not driver_preinstalled},
        "devicePlugin": {"enabled": not device_plugin_preinstalled},
        "gfd": {"enabled": True},
        "nfd": {"enabled": True},
        "dcgm": {"enabled": False},
        "dcgmExporter": {"enabled": False},
        "migManager": {"enabled": any(p.mig_profile for p in gpu_pools)},
        "mig": {"strategy": "mixed"},
        "operator": operator,
        "daemonsets": {"tolerations": tolerations},
        "node-feature-discovery": {
            # The NFD worker labels GPU nodes (pci-10de); without these it never runs on them.
            "worker": {"tolerations": tolerations},
            "master": {"nodeSelector": system_selector},
            "gc": {"nodeSelector": system_selector},
        },
    }


# The chart's own mount of the counters file (`extraVolumeMounts` default): a list we extend must keep it.
_COUNTERS_MOUNT = {"name": "exporter-metrics-volume", "mountPath": "/etc/dcgm-exporter/default-counters.csv", "subPath": "default-counters.csv"}
DRIVER_MOUNT_PATH = "/usr/local/nvidia"


def dcgm_exporter_values(gpu_pools: tuple[GpuPoolPlacement, ...], driver_host_path: str | None = None) -> dict:
    values: dict = {
        "customMetrics": counters_csv(),
        # Only GPU nodes: DCGM on a CPU node crash-loops and pages someone.
        "nodeSelector": {LABEL_NODE_ROLE: NODE_ROLE_GPU},
        "tolerations": gpu_node_tolerations(gpu_pools),
        # Ours is below: visible in previews and validated against the CRD.
        "serviceMonitor": {"enabled": False},
    }
    if driver_host_path:
        # No NVIDIA container runtime on these nodes (GKE-managed drivers): DCGM reaches NVML from
        # the host's driver directory and the GPU device files directly, as GKE's own DCGM does.
        values.update(
            extraHostVolumes=[{"name": "nvidia-driver", "hostPath": driver_host_path}],
            extraVolumeMounts=[_COUNTERS_MOUNT, {"name": "nvidia-driver", "mountPath": DRIVER_MOUNT_PATH, "readOnly": True}],
            extraEnv=[{"name": "LD_LIBRARY_PATH", "value": f"{DRIVER_MOUNT_PATH}/lib64"}],
            # Helm merges this over the chart's securityContext, whose allowPrivilegeEscalation: false
            # Kubernetes refuses beside privileged: true.
            securityContext={"privileged": True, "allowPrivilegeEscalation": True, "runAsNonRoot": False, "runAsUser": 0},
        )
    return values


@dataclass(frozen=True)
class GpuStackArgs:
    cluster: ClusterContract
    gpu_pools: tuple[GpuPoolPlacement, ...]  # managed and Karpenter pools: every taint to tolerate
    gpu_operator: GpuOperatorAddon
    dcgm_exporter: DcgmExporterAddon
    monitoring_release: pulumi.Resource | None  # brings the ServiceMonitor/PrometheusRule CRDs; None: no Prometheus


class GpuStack(pulumi.ComponentResource):
    def __init__(self, name: str, args: GpuStackArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:addons:GpuStack", name, None, opts)
        cluster = args.cluster
        outputs: dict[str, object] = {}
        if args.gpu_operator.enabled:
            namespace = addon_namespace(f"{name}-operator-namespace", GPU_OPERATOR_NAMESPACE, "privileged", cluster.provider, self)
            operator = pinned_release(
                f"{name}-operator",
                GPU_OPERATOR_RELEASE,
                GPU_OPERATOR,
                namespace,
                gpu_operator_values(
                    cluster.gpu_driver_preinstalled,
                    args.gpu_pools,
                    cluster.system_node_selector,
                    device_plugin_preinstalled=cluster.gpu_device_plugin_preinstalled,
                    runtime_class=cluster.gpu_runtime_class,
                ),
                cluster.provider,
                self,
            )
            outputs["gpuOperatorRelease"] = operator.name
        if args.dcgm_exporter.enabled:
            namespace = addon_namespace(f"{name}-dcgm-namespace", DCGM_NAMESPACE, "privileged", cluster.provider, self)
            dcgm = pinned_release(
                f"{name}-dcgm-exporter",
                DCGM_RELEASE,
                DCGM_EXPORTER,
                namespace,
                dcgm_exporter_values(args.gpu_pools, cluster.gpu_driver_host_path),
                cluster.provider,
                self,
            )
            outputs["dcgmExporterRelease"] = dcgm.name
            if args.monitoring_release is not None:
                self._monitoring(name, args, dcgm)
        self.register_outputs(outputs)

    def _monitoring(self, name: str, args: GpuStackArgs, dcgm: k8s.helm.v3.Release) -> None:
        opts = pulumi.ResourceOptions(
            parent=self, provider=args.cluster.provider, depends_on=[args.monitoring_release, dcgm]
        )
        for custom in gpu_monitoring_objects(args.dcgm_exporter):
            k8s.apiextensions.CustomResource(
                f"{name}-{_CUSTOM_OBJECT_SUFFIX[custom.kind]}",
                api_version=custom.api_version,
                kind=custom.kind,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=custom.name, namespace=custom.namespace),
                spec=custom.spec,
                opts=opts,
            )


# The component's name for each object (URNs: never change these).
_CUSTOM_OBJECT_SUFFIX = {"ServiceMonitor": "dcgm-servicemonitor", "PrometheusRule": "gpu-alerts"}


def gpu_monitoring_objects(dcgm: DcgmExporterAddon) -> list[CustomObject]:
    """DCGM's ServiceMonitor and the GPU health alerts, as registered and as the preflight checks them."""
    service_monitor = {
        "jobLabel": "app.kubernetes.io/name",
        "selector": {"matchLabels": {"app.kubernetes.io/name": DCGM_APP, "app.kubernetes.io/instance": DCGM_RELEASE}},
        "namespaceSelector": {"matchNames": [DCGM_NAMESPACE]},
        "endpoints": [
            {
                "port": DCGM_PORT_NAME,
                "path": "/metrics",
                "interval": dcgm.scrape_interval,
                "scrapeTimeout": "5s",
                # GPU series carry the node they came from, to join with Karpenter/node metrics.
                "relabelings": [{"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}],
            }
        ],
    }
    return [
        CustomObject("monitoring.coreos.com/v1", "ServiceMonitor", DCGM_RELEASE, DCGM_NAMESPACE, service_monitor),
        CustomObject(
            "monitoring.coreos.com/v1", "PrometheusRule", "gpu-health", DCGM_NAMESPACE, {"groups": [{"name": "gpu-health", "rules": list(GPU_ALERTS)}]}
        ),
    ]
