"""Does the system pool hold everything we put on it? Checked at preview, from the config alone.

Every controller, the routing layer's pickers, proxies and istiod, and the cloud's own kube-system
pods run on the system pool; GPU nodes are tainted. The sum of their requests (what the scheduler
places pods by) must fit the pool's allocatable capacity: more than its largest size can hold is a
config error (pods would stay Pending), more than it starts with is a warning where the cloud's
autoscaler grows the pool (GKE, AKS) and an error on EKS, where nothing grows the system node group.

The sizes come from the same constants the components deploy with, the pinned charts' defaults
(`catalog/data/system_pool.yaml`, checked against the charts by a test) and, for the cloud's own
pods, an estimate that the data file says is one.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.addons.monitoring import PROMETHEUS_REQUESTS
from components.catalog.system_pool import NodeShape, Requests, allocatable, chart_requests, cloud_pods, node_shape
from components.clusters.aws.cluster import ISTIO_ON_EKS
from components.clusters.aws.karpenter import CONTROLLER_RESOURCES as KARPENTER_REQUESTS
from components.clusters.azure.cluster import ISTIO_ON_AKS
from components.config.errors import Loc
from components.config.stack import StackConfig
from components.routing.gateway import high_availability
from components.routing.istio import ISTIOD_REQUESTS, istiod_replicas
from components.routing.not_found import REQUESTS as NOT_FOUND_REQUESTS

# Proxies in the cluster where the cloud has no managed gateway (the clouds' own contract values).
GATEWAY_IN_CLUSTER = {"aws": ISTIO_ON_EKS.in_cluster_proxies, "azure": ISTIO_ON_AKS.in_cluster_proxies, "gcp": False}
POOL_AUTOSCALED = {"aws": False, "azure": True, "gcp": True}


@dataclass(frozen=True)
class Demand:
    what: str
    replicas: int
    each: Requests

    @property
    def total(self) -> Requests:
        return self.each.times(self.replicas)


def _of(requests: dict[str, str]) -> Requests:
    return Requests.of(requests["cpu"], requests["memory"])


def system_pool_demand(cfg: StackConfig) -> list[Demand]:
    """What runs once (not per node) on the system pool, with its replicas."""
    addons = cfg.addons
    cluster_pods, _ = cloud_pods(cfg.cloud)
    demand = [Demand("the cloud's kube-system pods (estimate)", 1, cluster_pods)]
    if addons.keda.enabled:
        demand += [Demand(f"KEDA {part}", addons.keda.replicas, chart_requests(f"keda-{part}")) for part in ("operator", "metrics-server", "webhooks")]
    if addons.gpu_operator.enabled:
        demand += [Demand("GPU Operator", 1, chart_requests("gpu-operator")), Demand("NFD master", 1, chart_requests("nfd-master")), Demand("NFD gc", 1, chart_requests("nfd-gc"))]
    if cfg.cloud == "aws" and addons.karpenter.enabled:
        demand.append(Demand("Karpenter", addons.karpenter.replicas, _of(KARPENTER_REQUESTS)))
    if addons.prometheus.enabled:
        demand.append(Demand("Prometheus", addons.prometheus.replicas, _of(PROMETHEUS_REQUESTS)))
    routed = cfg.routed_models
    if routed:
        routing = cfg.routing
        picker = routing.endpoint_picker
        demand.append(Demand(f"endpoint pickers ({len(routed)} model{'s' if len(routed) > 1 else ''})", picker.replicas * len(routed), Requests.of(picker.cpu, picker.memory)))
        demand.append(Demand("model-not-found", 2 if high_availability(routing) else 1, _of(NOT_FOUND_REQUESTS)))
        if GATEWAY_IN_CLUSTER[cfg.cloud]:
            demand.append(Demand("istiod", istiod_replicas(routing.proxy), _of(ISTIOD_REQUESTS)))
            demand.append(Demand("gateway proxies", routing.proxy.replicas, Requests.of(routing.proxy.cpu, routing.proxy.memory)))
    return demand


def per_node_demand(cfg: StackConfig) -> Requests:
    """DaemonSet pods on every system node."""
    _, per_node = cloud_pods(cfg.cloud)
    return per_node + (chart_requests("nfd-worker") if cfg.addons.gpu_operator.enabled else Requests(0, 0))


def nodes_needed(demand: list[Demand], room: Requests) -> int:
    """Nodes of `room` (allocatable less the per-node pods) that hold every pod, packed first-fit
    by decreasing size, as the scheduler would at best: pods do not split across nodes."""
    pods = sorted((d.each for d in demand for _ in range(d.replicas)), key=lambda r: (r.cpu_millis, r.memory_mib), reverse=True)
    free: list[Requests] = []
    for pod in pods:
        if pod.cpu_millis > room.cpu_millis or pod.memory_mib > room.memory_mib:
            return 10**6  # no node of this shape takes it
        for i, left in enumerate(free):
            if pod.cpu_millis <= left.cpu_millis and pod.memory_mib <= left.memory_mib:
                free[i] = Requests(left.cpu_millis - pod.cpu_millis, left.memory_mib - pod.memory_mib)
                break
        else:
            free.append(Requests(room.cpu_millis - pod.cpu_millis, room.memory_mib - pod.memory_mib))
    return max(len(free), 1)


@dataclass(frozen=True)
class SystemPoolFit:
    shape: NodeShape
    room_per_node: Requests  # allocatable less the per-node pods
    demand: list[Demand]
    nodes_needed: int

    @property
    def total(self) -> Requests:
        return sum((d.total for d in self.demand), Requests(0, 0))


def system_pool_fit(cfg: StackConfig) -> SystemPoolFit | None:
    """None when the catalog does not know the pool's instance types (the caller warns)."""
    shapes = [node_shape(t) for t in cfg.system_pool.instance_types]
    known = [s for s in shapes if s is not None]
    if not known:
        return None
    shape = min(known, key=lambda s: (s.vcpu, s.memory_gib))  # any of the listed types may be launched
    per_node = per_node_demand(cfg)
    alloc = allocatable(cfg.cloud, shape)
    room = Requests(alloc.cpu_millis - per_node.cpu_millis, alloc.memory_mib - per_node.memory_mib)
    demand = system_pool_demand(cfg)
    return SystemPoolFit(shape, room, demand, nodes_needed(demand, room))


def _amount(r: Requests) -> str:
    return f"{r.cpu_millis / 1000:.2f} CPU and {r.memory_mib / 1024:.1f} GiB"


def system_pool_findings(cfg: StackConfig) -> tuple[list[tuple[Loc, str]], list[tuple[Loc, str]]]:
    """(problems, warnings) at the system pool's keys."""
    pool = cfg.system_pool
    fit = system_pool_fit(cfg)
    if fit is None:
        return [], [(("systemPool", "instanceTypes"), "no shape in the catalog for these types: the preview cannot check that the system pool holds its pods")]
    biggest = max(fit.demand, key=lambda d: (d.each.cpu_millis, d.each.memory_mib))
    largest = ", ".join(f"{d.what} {_amount(d.total)}" for d in sorted(fit.demand, key=lambda d: -d.total.cpu_millis)[:4])
    summary = f"its pods request {_amount(fit.total)} ({largest}, ...); one {fit.shape.name} leaves {_amount(fit.room_per_node)} for them"
    problems: list[tuple[Loc, str]] = []
    warnings: list[tuple[Loc, str]] = []
    if biggest.each.cpu_millis > fit.room_per_node.cpu_millis or biggest.each.memory_mib > fit.room_per_node.memory_mib:
        problems.append((("systemPool", "instanceTypes"), f"one {biggest.what} pod requests {_amount(biggest.each)}, more than one {fit.shape.name} leaves ({_amount(fit.room_per_node)}): use a larger type"))
    elif fit.nodes_needed > pool.max_size:
        problems.append((("systemPool", "maxSize"), f"{pool.max_size} nodes cannot hold the system pool's pods, {fit.nodes_needed} at least: {summary}; raise maxSize or use a larger type"))
    elif fit.nodes_needed > pool.desired:
        if POOL_AUTOSCALED[cfg.cloud]:
            warnings.append((("systemPool", "minSize"), f"the pool starts with {pool.desired} nodes and needs {fit.nodes_needed}: the autoscaler adds them while pods wait; {summary}"))
        else:
            problems.append((("systemPool", "minSize"), f"{pool.desired} nodes cannot hold the system pool's pods, {fit.nodes_needed} at least, and nothing grows the EKS system node group: {summary}; raise minSize to {fit.nodes_needed} or use a larger type"))
    return problems, warnings
