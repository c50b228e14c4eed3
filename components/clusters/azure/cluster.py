"""AKS GPU cluster from pulumi-azure-native primitives, fulfilling the `ClusterContract`.

Choices an AKS expert would make, and why:
- One resource group per stack, a VNet with one node subnet (or an existing subnet), Azure CNI
  overlay powered by Cilium with Cilium network policy: pods take no VNet addresses, and our
  NetworkPolicies are enforced (plain Azure CNI without a policy engine accepts and ignores them).
- OIDC issuer and workload identity on (pods that call Azure APIs get federated identities, never
  the node's); the API server's authorized IP ranges from `publicAccessCidrs`, or a private
  cluster when `endpointPublicAccess` is off.
- `azure.entraId`: local accounts off, Entra ID with Azure RBAC, and a kubeconfig whose kubelogin
  uses the Azure CLI's login (the default device-code flow would hang a CI runner). Without it the
  cluster user's credentials carry a client certificate (the kubeconfig stays a secret).
- The system pool (mode System) inside the cluster, the GPU pools as separate `AgentPool`s:
  editing inline pools sets every pool to Scaling, and VM size or spot settings replace a pool.
- Per GPU pool: its VM size, the cluster autoscaler between minSize and maxSize (`count` is for
  creation only, then ignored), the stack's zones, our GPU taint and labels, and on spot pools
  Spot priority, `Delete` eviction (deallocated spot VMs still count against quota) and max price
  -1 (up to the on-demand price, never evicted for price). AKS puts
  `kubernetes.azure.com/scalesetpriority=spot:NoSchedule` on spot nodes itself: we declare it, so
  Pulumi shows no drift, and the placements carry it, so the GPU DaemonSets and spot-accepting
  models tolerate it.
- The NVIDIA driver: AKS's own (`gpuProfile.driver: Install`, the default, on Ubuntu). It ships
  with the node image Microsoft tests it with and is on the node when it joins, where the
  operator's driver container would compile and load one on every new node during a scale-out.
  The GPU Operator then installs no driver or toolkit and runs its pods with AKS's runtime class
  `nvidia-container-runtime` (Microsoft's GPU Operator guide); it brings the device plugin, GFD,
  NFD. AKS's managed GPU pools (driver, device plugin and DCGM by AKS) are a preview without the
  cluster autoscaler, so not used.
- Control plane patch upgrades and node image upgrades by AKS's auto-upgrade channels; the
  Standard tier (uptime SLA) unless `azure.skuTier` says Free.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_azure_native as azure
import pulumi_kubernetes as k8s
import yaml

from ...config.azure import AzureConfig
from ...config.stack import AKS_SYSTEM_POOL, ClusterConfig, GpuPoolConfig, StackConfig, SystemPoolConfig, aks_pool_name
from ...scheduling import GpuPoolPlacement, Taint, system_pool_labels
from ..contract import AzureClusterHooks, ClusterContract, GatewaySupport, SharedWeights
from ..shared import block_reclaim_policy, placement_of, slashless_tags
from .network import AzureVnet, AzureVnetArgs
from .storage import AzureFilesSharedStorage, AzureFilesSharedStorageArgs

AKS_SPOT_TAINT = Taint("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule")
AKS_GPU_RUNTIME_CLASS = "nvidia-container-runtime"
BLOCK_STORAGE_CLASS = "managed-csi-premium-zrs"
# AKS: our Istio (the Istio and app-routing add-ons stay off: each runs its own istiod). The Azure
# load balancer probes a port whose appProtocol is http with `GET /`, which the gateway answers
# 404 (no route matches it), and then drops all traffic: probe the listener port over TCP.
ISTIO_ON_AKS = GatewaySupport(
    provider="istio",
    internal_class="istio",
    external_class="istio",
    installs_crds=True,
    in_cluster_proxies=True,
    internal_lb_annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
    lb_port_annotations={"service.beta.kubernetes.io/port_{port}_health-probe_protocol": "tcp"},
)
NODE_OS = "Ubuntu"
AKS_ENTRA_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"  # the AKS Entra ID server application, the same in every tenant
ANYWHERE = "0.0.0.0/0"


def aks_taints(taints: tuple[Taint, ...]) -> list[str]:
    return [f"{t.key}={t.value}:{t.effect}" for t in taints]


def ci_ready_kubeconfig(encoded: str) -> str:
    """The cluster user's kubeconfig (base64 from AKS). With Entra ID its user runs kubelogin in
    device-code mode, which waits for a person: switch it to the Azure CLI's login, as
    `kubelogin convert-kubeconfig -l azurecli` would."""
    config: dict[str, Any] = yaml.safe_load(base64.b64decode(encoded))
    for user in config.get("users", []):
        exec_config = (user.get("user") or {}).get("exec")
        if exec_config and exec_config.get("command") == "kubelogin":
            args = exec_config.get("args", [])
            server = args[args.index("--server-id") + 1] if "--server-id" in args else AKS_ENTRA_SERVER_ID
            exec_config["args"] = ["get-token", "--login", "azurecli", "--server-id", server]
    return yaml.safe_dump(config, sort_keys=False)


@dataclass(frozen=True)
class AksGpuClusterArgs:
    region: str
    azure: AzureConfig
    cluster: ClusterConfig
    system_pool: SystemPoolConfig
    gpu_pools: list[GpuPoolConfig]
    tags: dict[str, str]
    azure_provider: pulumi.ProviderResource


class AksGpuCluster(pulumi.ComponentResource):
    """The cluster in build order: resource group, network, control plane with the system pool,
    GPU agent pools, Kubernetes access."""

    contract: ClusterContract

    def __init__(self, name: str, args: AksGpuClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:cluster:AksGpuCluster", name, None, opts)
        self._name, self._args = name, args
        cfg, acfg = args.cluster, args.azure
        protected = pulumi.ResourceOptions(parent=self, protect=cfg.protect, retain_on_delete=cfg.protect)
        group = azure.resources.ResourceGroup(
            f"{name}-rg", resource_group_name=acfg.resource_group, location=args.region, tags=args.tags, opts=protected
        )
        subnet_id = self._network(group, protected)
        self._subnet_id = subnet_id
        cluster = self._control_plane(group, subnet_id)
        placements = [placement_of(pool, cloud_spot_taints=(AKS_SPOT_TAINT,)) for pool in args.gpu_pools]
        gpu_pools = [self._gpu_pool(cluster, pool, placement) for pool, placement in zip(args.gpu_pools, placements, strict=True)]

        # The credentials exist once the cluster does: depending on its id keeps a preview of a new
        # cluster from asking Azure for them.
        credentials = azure.containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=acfg.resource_group,
            resource_name=pulumi.Output.all(cluster.id, cluster.name).apply(lambda v: v[1]),
        )
        kubeconfig = pulumi.Output.secret(credentials.kubeconfigs[0].value.apply(ci_ready_kubeconfig))
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig,
            cluster_identifier=cfg.name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster]),
        )
        block_storage = k8s.storage.v1.StorageClass(
            f"{name}-premium-zrs",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=BLOCK_STORAGE_CLASS),
            provisioner="disk.csi.azure.com",
            # Zone-redundant: a Prometheus volume follows its pod to another zone.
            parameters={"skuName": "Premium_ZRS", "cachingMode": "ReadOnly"},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy=block_reclaim_policy(cfg.protect),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.contract = ClusterContract(
            cloud="azure",
            name=cfg.name,
            provider=provider,
            kubeconfig=kubeconfig,
            zones=tuple(acfg.zones),
            system_node_selector=system_pool_labels(),
            gpu_pools=tuple(placements),
            ready=(cluster, *gpu_pools),
            block_storage_class=BLOCK_STORAGE_CLASS,
            block_storage=block_storage,
            gpu_driver_preinstalled=True,
            gpu_runtime_class=AKS_GPU_RUNTIME_CLASS,
            kube_proxy_metrics=False,  # Azure CNI powered by Cilium replaces kube-proxy
            gateway=ISTIO_ON_AKS,
            azure=AzureClusterHooks(
                resource_group=acfg.resource_group,
                resource_group_resource=group,
                location=args.region,
                node_subnet_id=subnet_id,
                cluster_principal_id=cluster.identity.apply(lambda identity: identity.principal_id if identity else None),
                provider=args.azure_provider,
            ),
        )
        self.register_outputs({"clusterName": cfg.name, "fqdn": cluster.fqdn, "kubeconfig": kubeconfig, "resourceGroup": acfg.resource_group})

    def _network(self, group: azure.resources.ResourceGroup, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
        net = self._args.azure.network
        if net.is_existing:
            return pulumi.Output.from_input(net.subnet_id)
        vnet = AzureVnet(
            f"{self._name}-network",
            AzureVnetArgs(self._args.cluster.name, self._args.azure.resource_group, self._args.region, net.vnet_cidr, net.node_subnet_cidr, self._args.tags),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[group])),
        )
        return vnet.node_subnet_id

    def _control_plane(self, group: azure.resources.ResourceGroup, subnet_id: pulumi.Output[str]) -> azure.containerservice.ManagedCluster:
        cfg, acfg, system = self._args.cluster, self._args.azure, self._args.system_pool
        net = acfg.network
        cs = azure.containerservice
        public_ranges = [c for c in cfg.public_access_cidrs if c != ANYWHERE]
        return cs.ManagedCluster(
            f"{self._name}-aks",
            resource_name_=cfg.name,
            resource_group_name=acfg.resource_group,
            location=self._args.region,
            dns_prefix=cfg.name,
            kubernetes_version=cfg.kubernetes_version,
            identity=cs.ManagedClusterIdentityArgs(type="SystemAssigned"),
            sku=cs.ManagedClusterSKUArgs(name="Base", tier=acfg.sku_tier),
            oidc_issuer_profile=cs.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=cs.ManagedClusterSecurityProfileArgs(
                workload_identity=cs.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True)
            ),
            network_profile=cs.ContainerServiceNetworkProfileArgs(
                network_plugin="azure",
                network_plugin_mode="overlay",
                network_dataplane="cilium",
                network_policy="cilium",
                pod_cidr=net.pod_cidr,
                service_cidr=net.service_cidr,
                dns_service_ip=net.dns_service_ip,
                load_balancer_sku="standard",
                outbound_type="loadBalancer",
            ),
            agent_pool_profiles=[
                cs.ManagedClusterAgentPoolProfileArgs(
                    name=AKS_SYSTEM_POOL, mode="System", node_labels=system_pool_labels(), **self._pool_shape(system, subnet_id)
                )
            ],
            api_server_access_profile=cs.ManagedClusterAPIServerAccessProfileArgs(
                enable_private_cluster=not cfg.endpoint_public_access,
                authorized_ip_ranges=public_ranges if cfg.endpoint_public_access and public_ranges else None,
            ),
            disable_local_accounts=acfg.entra_id,
            aad_profile=cs.ManagedClusterAADProfileArgs(managed=True, enable_azure_rbac=True) if acfg.entra_id else None,
            auto_upgrade_profile=cs.ManagedClusterAutoUpgradeProfileArgs(upgrade_channel="patch", node_os_upgrade_channel="NodeImage"),
            storage_profile=cs.ManagedClusterStorageProfileArgs(
                file_csi_driver=cs.ManagedClusterStorageProfileFileCSIDriverArgs(enabled=True),
                disk_csi_driver=cs.ManagedClusterStorageProfileDiskCSIDriverArgs(enabled=True),
            ),
            node_provisioning_profile=cs.ManagedClusterNodeProvisioningProfileArgs(
                mode="Auto" if acfg.node_auto_provisioning else "Manual"
            ),
            tags=self._args.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=cfg.protect,
                retain_on_delete=cfg.protect,
                depends_on=[group],
                # The autoscaler owns the system pool's count after creation.
                ignore_changes=["agentPoolProfiles[0].count"],
            ),
        )

    def _pool_shape(self, pool: SystemPoolConfig | GpuPoolConfig, subnet_id: pulumi.Input[str]) -> dict[str, Any]:
        """What the system pool and every GPU pool share: one VM size on Ubuntu, the cluster
        autoscaler between the pool's bounds, the stack's zones and subnet, one surge node at a time
        (a GPU node drains slowly, and a surge GPU VM needs quota)."""
        return {
            "vm_size": pool.instance_types[0],
            "os_type": "Linux",
            "os_sku": NODE_OS,
            "os_disk_size_gb": pool.disk_size_gib,
            "type": "VirtualMachineScaleSets",
            "count": pool.desired,
            "enable_auto_scaling": True,
            "min_count": pool.min_size,
            "max_count": pool.max_size,
            "availability_zones": list(self._args.azure.zones) or None,
            "vnet_subnet_id": subnet_id,
            "upgrade_settings": azure.containerservice.AgentPoolUpgradeSettingsArgs(max_surge="1"),
        }

    def _gpu_pool(
        self, cluster: azure.containerservice.ManagedCluster, pool: GpuPoolConfig, placement: GpuPoolPlacement
    ) -> azure.containerservice.AgentPool:
        spot = pool.capacity_type == "spot"
        return azure.containerservice.AgentPool(
            f"{self._name}-gpu-{pool.name}",
            agent_pool_name=aks_pool_name(pool.name),
            resource_name_=self._args.cluster.name,
            resource_group_name=self._args.azure.resource_group,
            mode="User",
            **self._pool_shape(pool, self._subnet_id),
            node_labels=placement.labels,
            node_taints=aks_taints(placement.taints),
            gpu_profile=azure.containerservice.GPUProfileArgs(driver="Install"),
            scale_set_priority="Spot" if spot else "Regular",
            scale_set_eviction_policy="Delete" if spot else None,
            spot_max_price=-1.0 if spot else None,
            tags=self._args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster], ignore_changes=["count"]),
        )


def build_aks_cluster(name: str, cfg: StackConfig, tags: dict[str, str]) -> ClusterContract:
    """An explicit Azure provider per stack (the subscription is the caller's login, never ambient
    `azure-native:` config); every Azure resource gets the stack's tags."""
    tags = slashless_tags(tags)
    acfg = cfg.azure
    assert acfg is not None, "config validation requires llm-platform:azure on azure stacks"
    azure_provider = azure.Provider(f"{name}-azure", location=cfg.region)
    azure_opts = pulumi.ResourceOptions(providers=[azure_provider])
    cluster = AksGpuCluster(
        name,
        AksGpuClusterArgs(
            region=cfg.region,
            azure=acfg,
            cluster=cfg.cluster,
            system_pool=cfg.system_pool,
            gpu_pools=list(cfg.gpu_pools),
            tags=tags,
            azure_provider=azure_provider,
        ),
        opts=azure_opts,
    )
    contract = cluster.contract
    shared = None
    if acfg.files.enabled:
        storage = AzureFilesSharedStorage(f"{name}-weights", AzureFilesSharedStorageArgs(contract, acfg.files, tags, protect=cfg.cluster.protect), opts=azure_opts)
        shared = SharedWeights(storage.storage_class_name, storage.storage_class, storage.claim_size)
    # AKS's own fast path, artifact streaming, needs a Premium ACR, a per-image conversion with the
    # Azure CLI and an agent-pool field the pinned azure-native API (2025-09-01) lacks, and is not
    # documented for GPU pools: the pull starts early instead (serving/prepull.py).
    return replace(contract, shared_weights=shared, image_prepull=cfg.scale_out.fast_image_pull)
