"""GKE GPU cluster from pulumi-gcp primitives, fulfilling the `ClusterContract`.

Choices a GKE expert would make, and why:
- VPC-native and regional (zonal only when a dev stack asks): the control plane survives a zone
  outage and is upgraded without downtime. Dataplane V2, so NetworkPolicies (model services
  restrict their callers with them) are enforced. Workload Identity for pods that call Google APIs.
- Private nodes (no external IPs) behind Cloud NAT; the control plane endpoint is public only when
  `endpointPublicAccess` says so, and then only for `publicAccessCidrs`.
- The default node pool removed: pools are separate `NodePool`s (inline pools cannot change
  later), each with its own service account's least role (`iam.py`), Shielded VMs, GKE metadata.
- One CPU system pool for controllers; per GPU pool one node pool with its guest accelerator
  (type and count from the catalog), spot or on-demand, in zones that offer the GPU. The GPU
  taint is declared, not left to GKE (which adds it only when a CPU pool already exists at the GPU
  pool's creation, and Pulumi may create them in parallel); the spot taint and our labels are
  declared as on EKS (GKE adds the `cloud.google.com/gke-spot` label, no taint).
- The cluster autoscaler scales every pool between its total min and max (no Karpenter on GKE),
  with the `optimize-utilization` profile so an idle GPU node is removed sooner; spot pools use
  the ANY location policy (capacity wherever it is) and on-demand ones BALANCED.
- GKE-managed NVIDIA drivers (`LATEST` on COS): GKE installs the driver and runs its own device
  plugin on every GPU node, Google supports it, and it is what the cluster autoscaler knows how to
  scale from zero. The GPU Operator's path (INSTALLATION_DISABLED, Google's installer DaemonSet,
  the operator's toolkit writing into GKE's containerd) has more moving parts, and its toolkit step
  is a known failure on GKE 1.33+ (NVIDIA's GKE page; gpu-operator#1679). The contract says what
  follows: driver preinstalled, device plugin preinstalled, driver libraries under
  /home/kubernetes/bin/nvidia for DCGM.
- `deletion_protection` (and Pulumi `protect`) from `cluster.protect`: on in prod, off in dev so
  `pulumi destroy` works.
- Node counts: `initial_node_count` is for creation only (changing it recreates a pool), so it is
  ignored afterwards; the autoscaler owns the count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from ...catalog.gpus import gcp_accelerator, gpu_instance
from ...config.gcp import GcpConfig
from ...config.routing import GKE_POOL_TIMEOUT_SECONDS
from ...config.stack import ClusterConfig, GpuPoolConfig, StackConfig, SystemPoolConfig
from ...scheduling import GpuPoolPlacement, Taint, system_pool_labels
from ..contract import ClusterContract, GatewaySupport, GcpClusterHooks, SharedWeights
from ..shared import block_reclaim_policy, exec_kubeconfig, gcp_labels, placement_of
from .iam import node_service_account
from .images import DockerHubMirror
from .network import PODS_RANGE, SERVICES_RANGE, GcpVpc, GcpVpcArgs
from .storage import FilestoreSharedStorage, FilestoreSharedStorageArgs

_GKE_TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
BLOCK_STORAGE_CLASS = "pd-balanced"
# Google's health-check probers. Regional Application Load Balancers (both our GatewayClasses) need
# these as well as the proxy-only subnet: the proxies carry requests, the probers check the backends
# (cloud.google.com/load-balancing/docs/firewall-rules, "minimum required ingress allow firewall
# rules"; health-check-concepts, "Probe IP ranges"). With container-native backends they probe the
# pods, so the pods' NetworkPolicies must admit them: the chart's HealthCheckPolicy probes vLLM's
# /health, and the GKE gateway probes the endpoint picker's gRPC health port.
GOOGLE_HEALTH_CHECK_RANGES = ("35.191.0.0/16", "130.211.0.0/22")
NODE_IMAGE = "COS_CONTAINERD"
GPU_DRIVER_VERSION = "LATEST"
# Where GKE's driver installer puts the driver on COS nodes (its device plugin mounts it from here).
GKE_DRIVER_HOST_PATH = "/home/kubernetes/bin/nvidia"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"  # IAM, not scopes, limits the nodes
SYSTEM_POOL_NAME = "system"


def gke_pool_name(pool_name: str) -> str:
    """A GPU pool's GKE node pool name; the prefix keeps it clear of the system pool's."""
    return f"gpu-{pool_name}"


def gke_taints(taints: tuple[Taint, ...]) -> list[gcp.container.NodePoolNodeConfigTaintArgs]:
    return [gcp.container.NodePoolNodeConfigTaintArgs(key=t.key, value=t.value, effect=_GKE_TAINT_EFFECT[t.effect]) for t in taints]


def kubeconfig_json(cluster_name: str, endpoint: str, ca_data: str) -> str:
    """A kubeconfig that authenticates with gke-gcloud-auth-plugin (short-lived tokens from the
    caller's Google credentials; no static secret). `pulumi up` needs the plugin on PATH."""
    return exec_kubeconfig(
        cluster_name,
        f"https://{endpoint}",
        ca_data,
        {
            "command": "gke-gcloud-auth-plugin",
            "provideClusterInfo": True,
            "installHint": "gcloud components install gke-gcloud-auth-plugin",
            "interactiveMode": "Never",
        },
    )


def initial_nodes_per_zone(desired_total: int, zones: int) -> int:
    """GKE's `initial_node_count` counts per zone; ours counts the pool."""
    return math.ceil(desired_total / zones) if zones else desired_total


@dataclass(frozen=True)
class GkeGpuClusterArgs:
    region: str
    gcp: GcpConfig
    cluster: ClusterConfig
    system_pool: SystemPoolConfig
    gpu_pools: list[GpuPoolConfig]
    pool_zones: dict[str, list[str]]  # GPU pool name -> its zones
    labels: dict[str, str]
    gcp_provider: pulumi.ProviderResource
    routing: bool = False  # the Gateway API on, and a proxy-only subnet for its regional load balancers
    image_streaming: bool = False  # scaleOut.fastImagePull: nodes stream images from an Artifact Registry mirror


class GkeGpuCluster(pulumi.ComponentResource):
    """The cluster in build order: network, node identity, control plane, node pools, Kubernetes access."""

    contract: ClusterContract
    gke: gcp.container.Cluster

    def __init__(self, name: str, args: GkeGpuClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:cluster:GkeGpuCluster", name, None, opts)
        self._name = name
        self._args = args
        cfg, gcfg = args.cluster, args.gcp

        network_name, network_id, subnetwork_id = self._network(pulumi.ResourceOptions(parent=self, protect=cfg.protect, retain_on_delete=cfg.protect))
        account, grants = node_service_account(name, gcfg.project, cfg.name, self, args.image_streaming)
        self._account = account
        mirror = None
        if args.image_streaming:
            mirror = DockerHubMirror(f"{name}-images", gcfg.project, args.region, account.email, args.labels, pulumi.ResourceOptions(parent=self))
        self.gke = self._control_plane(network_id, subnetwork_id, account.email, grants)

        system = self._node_pool(
            f"{name}-system",
            SYSTEM_POOL_NAME,
            args.system_pool,
            list(gcfg.zones),
            self._node_config(args.system_pool.instance_types[0], args.system_pool.disk_size_gib, "pd-balanced", system_pool_labels()),
            upgrade=gcp.container.NodePoolUpgradeSettingsArgs(strategy="SURGE", max_surge=1, max_unavailable=0),
            location_policy="BALANCED",
            depends_on=grants,
        )
        placements = [placement_of(pool) for pool in args.gpu_pools]
        gpu_pools = [self._gpu_pool(pool, placement, grants) for pool, placement in zip(args.gpu_pools, placements, strict=True)]

        kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(self.gke.endpoint, self.gke.master_auth.cluster_ca_certificate).apply(
                lambda v: kubeconfig_json(cfg.name, v[0], v[1])
            )
        )
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig,
            # Replace the provider (and so every k8s object) only if the cluster itself changes.
            cluster_identifier=cfg.name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[system]),
        )
        block_storage = k8s.storage.v1.StorageClass(
            f"{name}-pd-balanced",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=BLOCK_STORAGE_CLASS),
            provisioner="pd.csi.storage.gke.io",
            parameters={"type": "pd-balanced", "csi.storage.k8s.io/fstype": "ext4"},
            # Bind where the pod lands: a zonal persistent disk lives in one zone.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy=block_reclaim_policy(cfg.protect),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )

        self.contract = ClusterContract(
            cloud="gcp",
            name=cfg.name,
            provider=provider,
            kubeconfig=kubeconfig,
            zones=tuple(gcfg.zones),
            system_node_selector=system_pool_labels(),
            gpu_pools=tuple(placements),
            ready=(system, *gpu_pools),
            block_storage_class=BLOCK_STORAGE_CLASS,
            block_storage=block_storage,
            gpu_driver_preinstalled=True,
            gpu_device_plugin_preinstalled=True,
            gpu_driver_host_path=GKE_DRIVER_HOST_PATH,
            kube_proxy_metrics=False,  # Dataplane V2 replaces kube-proxy
            gateway=self._gateway(),
            image_mirror=mirror.prefix if mirror else None,
            image_ready=(mirror.repository, mirror.reader) if mirror else (),
            gcp=GcpClusterHooks(
                project=gcfg.project,
                region=args.region,
                network_name=network_name,
                node_service_account_email=account.email,
                provider=args.gcp_provider,
            ),
        )
        self.register_outputs(
            {
                "clusterName": self.gke.name,
                "endpoint": self.gke.endpoint,
                "kubeconfig": kubeconfig,
                "network": network_name,
                "nodeServiceAccount": account.email,
            }
        )

    def _gateway(self) -> GatewaySupport | None:
        """GKE's managed inference gateway: regional Application Load Balancers (internal or
        external), whose proxies reach the pods from the proxy-only subnet."""
        proxy_only = self._args.gcp.network.proxy_only_cidr
        if not self._args.routing or proxy_only is None:
            return None
        return GatewaySupport(
            provider="gke",
            internal_class="gke-l7-rilb",
            external_class="gke-l7-regional-external-managed",
            installs_crds=False,
            proxy_source_cidrs=(proxy_only,),
            health_check_source_cidrs=GOOGLE_HEALTH_CHECK_RANGES,
            max_request_seconds=GKE_POOL_TIMEOUT_SECONDS,
            backend_health_check_policy=True,
        )

    def _network(self, opts: pulumi.ResourceOptions) -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]]:
        net, region, project = self._args.gcp.network, self._args.region, self._args.gcp.project
        if net.is_existing:
            network_id = f"projects/{project}/global/networks/{net.network}"
            subnetwork_id = f"projects/{project}/regions/{region}/subnetworks/{net.subnetwork}"
            return pulumi.Output.from_input(net.network), pulumi.Output.from_input(network_id), pulumi.Output.from_input(subnetwork_id)
        vpc = GcpVpc(
            f"{self._name}-network",
            GcpVpcArgs(
                cluster_name=self._args.cluster.name,
                region=region,
                subnet_cidr=net.subnet_cidr,
                pods_cidr=net.pods_cidr,
                services_cidr=net.services_cidr,
                proxy_only_cidr=net.proxy_only_cidr if self._args.routing else None,
            ),
            opts=opts,
        )
        return vpc.network_name, vpc.network_id, vpc.subnetwork_id

    def _control_plane(
        self, network_id: pulumi.Output[str], subnetwork_id: pulumi.Output[str], node_account: pulumi.Output[str], grants: list[pulumi.Resource]
    ) -> gcp.container.Cluster:
        cfg, gcfg = self._args.cluster, self._args.gcp
        net = gcfg.network
        location = gcfg.location or self._args.region
        # A zonal cluster's node_locations name only the zones beyond its own.
        node_locations = [z for z in gcfg.zones if z != gcfg.location]
        return gcp.container.Cluster(
            f"{self._name}-gke",
            name=cfg.name,
            project=gcfg.project,
            location=location,
            node_locations=node_locations or None,
            min_master_version=cfg.kubernetes_version,
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=gcfg.release_channel.upper()),
            # The default pool cannot be changed later; ours are separate NodePools.
            remove_default_node_pool=True,
            initial_node_count=1,
            # Until it is removed, the default pool runs as our least-privilege account too.
            node_config=gcp.container.ClusterNodeConfigArgs(service_account=node_account, oauth_scopes=[CLOUD_PLATFORM_SCOPE]),
            deletion_protection=cfg.protect,
            network=network_id,
            subnetwork=subnetwork_id,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=net.pods_range_name or PODS_RANGE,
                services_secondary_range_name=net.services_range_name or SERVICES_RANGE,
            ),
            datapath_provider="ADVANCED_DATAPATH",
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(workload_pool=f"{gcfg.project}.svc.id.goog"),
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True, enable_private_endpoint=not cfg.endpoint_public_access
            ),
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(cidr_block=cidr, display_name=f"allowed-{i}")
                    for i, cidr in enumerate(cfg.public_access_cidrs)
                ]
            )
            if cfg.endpoint_public_access
            else None,
            addons_config=gcp.container.ClusterAddonsConfigArgs(
                gcp_filestore_csi_driver_config=gcp.container.ClusterAddonsConfigGcpFilestoreCsiDriverConfigArgs(enabled=gcfg.filestore.enabled),
                gce_persistent_disk_csi_driver_config=gcp.container.ClusterAddonsConfigGcePersistentDiskCsiDriverConfigArgs(enabled=True),
            ),
            cluster_autoscaling=self._cluster_autoscaling(node_account),
            # Node pools that auto-provisioning creates stream images like ours.
            node_pool_defaults=gcp.container.ClusterNodePoolDefaultsArgs(
                node_config_defaults=gcp.container.ClusterNodePoolDefaultsNodeConfigDefaultsArgs(
                    gcfs_config=gcp.container.ClusterNodePoolDefaultsNodeConfigDefaultsGcfsConfigArgs(enabled=True)
                )
            )
            if self._args.image_streaming
            else None,
            # GKE's Gateway controller, with the Gateway API and InferencePool CRDs (GKE >= 1.34)
            gateway_api_config=gcp.container.ClusterGatewayApiConfigArgs(channel="CHANNEL_STANDARD") if self._args.routing else None,
            resource_labels=self._args.labels,
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect, retain_on_delete=cfg.protect, depends_on=grants),
        )

    def _cluster_autoscaling(self, node_account: pulumi.Output[str]) -> gcp.container.ClusterClusterAutoscalingArgs:
        nap = self._args.gcp.node_auto_provisioning
        if nap is None:
            return gcp.container.ClusterClusterAutoscalingArgs(enabled=False, autoscaling_profile="OPTIMIZE_UTILIZATION")
        limits = [
            gcp.container.ClusterClusterAutoscalingResourceLimitArgs(resource_type="cpu", maximum=nap.max_cpu),
            gcp.container.ClusterClusterAutoscalingResourceLimitArgs(resource_type="memory", maximum=nap.max_memory_gib),
        ] + [
            gcp.container.ClusterClusterAutoscalingResourceLimitArgs(resource_type=gcp_accelerator(gpu), maximum=count)
            for gpu, count in sorted(nap.max_gpus.items())
        ]
        return gcp.container.ClusterClusterAutoscalingArgs(
            enabled=True,
            autoscaling_profile="OPTIMIZE_UTILIZATION",
            resource_limits=limits,
            auto_provisioning_defaults=gcp.container.ClusterClusterAutoscalingAutoProvisioningDefaultsArgs(
                service_account=node_account, oauth_scopes=[CLOUD_PLATFORM_SCOPE], image_type=NODE_IMAGE
            ),
        )

    def _node_config(
        self,
        machine_type: str,
        disk_size_gib: int,
        disk_type: str,
        labels: dict[str, str],
        taints: tuple[Taint, ...] = (),
        spot: bool = False,
        accelerators: list[gcp.container.NodePoolNodeConfigGuestAcceleratorArgs] | None = None,
    ) -> gcp.container.NodePoolNodeConfigArgs:
        return gcp.container.NodePoolNodeConfigArgs(
            machine_type=machine_type,
            disk_size_gb=disk_size_gib,
            disk_type=disk_type,
            image_type=NODE_IMAGE,
            spot=spot,
            labels=labels,
            taints=gke_taints(taints) or None,
            guest_accelerators=accelerators,
            service_account=self._account.email,
            oauth_scopes=[CLOUD_PLATFORM_SCOPE],
            workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
            shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                enable_secure_boot=True, enable_integrity_monitoring=True
            ),
            metadata={"disable-legacy-endpoints": "true"},
            resource_labels=self._args.labels,
            gcfs_config=gcp.container.NodePoolNodeConfigGcfsConfigArgs(enabled=True) if self._args.image_streaming else None,
        )

    def _gpu_pool(self, pool: GpuPoolConfig, placement: GpuPoolPlacement, grants: list[pulumi.Resource]) -> gcp.container.NodePool:
        machine = gpu_instance(pool.instance_types[0])
        accelerator = gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
            type=machine.accelerator,
            count=pool.gpus_per_node,
            gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                gpu_driver_version=GPU_DRIVER_VERSION
            ),
        )
        spot = pool.capacity_type == "spot"
        return self._node_pool(
            f"{self._name}-gpu-{pool.name}",
            gke_pool_name(pool.name),
            pool,
            self._args.pool_zones[pool.name],
            self._node_config(
                machine.name,
                pool.disk_size_gib,
                machine.boot_disk or "pd-balanced",
                placement.labels,
                placement.taints,
                spot=spot,
                accelerators=[accelerator],
            ),
            # One node at a time and no surge node: a surge GPU node needs quota the project may
            # not have, and a model replica needs minutes to move.
            upgrade=gcp.container.NodePoolUpgradeSettingsArgs(strategy="SURGE", max_surge=0, max_unavailable=1),
            # Spot: wherever capacity is (fewer preemptions); on demand: spread over the zones.
            location_policy="ANY" if spot else "BALANCED",
            depends_on=grants,
        )

    def _node_pool(
        self,
        resource_name: str,
        pool_name: str,
        pool: SystemPoolConfig | GpuPoolConfig,
        zones: list[str],
        node_config: gcp.container.NodePoolNodeConfigArgs,
        upgrade: gcp.container.NodePoolUpgradeSettingsArgs,
        location_policy: str,
        depends_on: list[pulumi.Resource],
    ) -> gcp.container.NodePool:
        return gcp.container.NodePool(
            resource_name,
            name=pool_name,
            cluster=self.gke.name,
            location=self.gke.location,
            project=self._args.gcp.project,
            node_locations=zones,
            initial_node_count=initial_nodes_per_zone(pool.desired, len(zones)),
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=pool.min_size, total_max_node_count=pool.max_size, location_policy=location_policy
            ),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            upgrade_settings=upgrade,
            node_config=node_config,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                # Creation only: a change would recreate the pool, and the autoscaler owns the count.
                ignore_changes=["initialNodeCount"],
            ),
        )


def build_gke_cluster(name: str, cfg: StackConfig, tags: dict[str, str]) -> ClusterContract:
    """An explicit GCP provider per stack: project and region come from the stack config (never
    ambient gcloud settings), and every GCP resource gets the stack's tags as labels."""
    tags = gcp_labels(tags)
    gcfg = cfg.gcp
    assert gcfg is not None, "config validation requires llm-platform:gcp on gcp stacks"
    gcp_provider = gcp.Provider(f"{name}-gcp", project=gcfg.project, region=cfg.region, default_labels=tags)
    gcp_opts = pulumi.ResourceOptions(providers=[gcp_provider])
    cluster = GkeGpuCluster(
        name,
        GkeGpuClusterArgs(
            region=cfg.region,
            gcp=gcfg,
            cluster=cfg.cluster,
            system_pool=cfg.system_pool,
            gpu_pools=list(cfg.gpu_pools),
            pool_zones={pool.name: cfg.pool_zones(pool) for pool in cfg.gpu_pools},
            labels=tags,
            gcp_provider=gcp_provider,
            routing=cfg.routing.enabled,
            image_streaming=cfg.scale_out.fast_image_pull,
        ),
        opts=gcp_opts,
    )
    contract = cluster.contract
    shared = None
    if gcfg.filestore.enabled:
        storage = FilestoreSharedStorage(
            f"{name}-weights",
            FilestoreSharedStorageArgs(contract, gcfg.filestore, tags, driver=cluster.gke, protect=cfg.cluster.protect),
            opts=gcp_opts,
        )
        # A new Filestore share's root is root's, 755; the driver leaves it so and applies fsGroup
        # (its CSIDriver declares fsGroupPolicy File; gcp-filestore-csi-driver docs/kubernetes/fsgroup.md).
        shared = SharedWeights(storage.storage_class_name, storage.storage_class, storage.claim_size, writers_need_fs_group=True)
    return replace(contract, shared_weights=shared)
