"""Shared model weights on AKS: Azure Files NFS in a premium FileStorage account of our own.

Why: NFS 4.1 on premium (SSD) shares is real ReadWriteMany POSIX storage, like EFS and Filestore,
through AKS's managed Azure Files CSI driver (its node plugin already runs on every node, GPU and
spot nodes included). The model services' claim stays as on the other clouds: the CSI driver
creates one NFS share per model's weights claim in this account, sized by the claim (premium
shares' throughput grows with size, so the size is the stack's to state and the contract hands it on).

Choices, and why:
- A service endpoint with a network rule, not a private endpoint: the account admits only the
  cluster's node subnet (default action Deny), with no private DNS zone to run; NFS traffic stays
  on the Azure backbone. A private endpoint is the choice when on-premises networks must reach it.
- Secure transfer off: NFS shares cannot use it; Microsoft accepts that for NFS behind
  network-level security, which the rule is. TLS 1.2 for the account's other endpoints; no public
  blob access.
- The cluster's identity gets Storage Account Contributor on this account only, so the CSI driver
  can create shares in it (the account lives in our resource group, not AKS's node resource group).
- `nconnect=4` (no gain past 4, Microsoft's guidance) for many readers at once; `Delete` reclaim
  (a forgotten share is billed by its provisioned size); `Immediate` binding.
- The account name is global: a deterministic name from the resource group and cluster, so every
  preview names the same account.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure
import pulumi_kubernetes as k8s

from ...config.azure import AzureFilesConfig
from ..contract import ClusterContract

FILES_PROVISIONER = "file.csi.azure.com"
SHARED_WEIGHTS_STORAGE_CLASS = "azurefile-nfs-model-weights"
STORAGE_ACCOUNT_CONTRIBUTOR = "17d1049b-9a84-46fb-8f53-869881c3d3ab"  # built-in role definition id
NFS_MOUNT_OPTIONS = ["nconnect=4", "noresvport", "actimeo=30"]


def storage_account_name(resource_group: str, cluster_name: str) -> str:
    """3-24 lower-case letters and digits, unique in Azure: a prefix of the cluster's name and a
    hash of where it lives."""
    prefix = re.sub(r"[^a-z0-9]", "", cluster_name)[:14] or "llm"
    return prefix + hashlib.sha256(f"{resource_group}/{cluster_name}".encode()).hexdigest()[:10]


def role_definition_id(scope_id: str, role: str) -> str:
    """A built-in role's id in the subscription of `scope_id` (a resource id), with no lookup."""
    subscription = "/".join(scope_id.split("/")[:3])
    return f"{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"


@dataclass(frozen=True)
class AzureFilesSharedStorageArgs:
    cluster: ClusterContract
    config: AzureFilesConfig
    tags: dict[str, str]
    protect: bool = False  # cluster.protect: the account protected and retained on delete, weight PVs Retain


class AzureFilesSharedStorage(pulumi.ComponentResource):
    storage_class_name: str
    storage_class: k8s.storage.v1.StorageClass
    claim_size: str

    def __init__(self, name: str, args: AzureFilesSharedStorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:storage:AzureFilesSharedStorage", name, None, opts)
        cluster = args.cluster
        hooks = cluster.azure
        assert hooks is not None, "Azure Files is AKS-only; other clouds bring their own shared storage"
        child = pulumi.ResourceOptions(parent=self)
        account_name = storage_account_name(hooks.resource_group, cluster.name)
        account = azure.storage.StorageAccount(
            f"{name}-account",
            account_name=account_name,
            resource_group_name=hooks.resource_group,
            location=hooks.location,
            kind="FileStorage",
            sku=azure.storage.SkuArgs(name="Premium_LRS"),
            enable_https_traffic_only=False,
            minimum_tls_version="TLS1_2",
            allow_blob_public_access=False,
            network_rule_set=azure.storage.NetworkRuleSetArgs(
                default_action="Deny",
                bypass="AzureServices",
                virtual_network_rules=[azure.storage.VirtualNetworkRuleArgs(virtual_network_resource_id=hooks.node_subnet_id)],
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[hooks.resource_group_resource], protect=args.protect, retain_on_delete=args.protect
            ),
        )
        grant = azure.authorization.RoleAssignment(
            f"{name}-csi-access",
            scope=account.id,
            principal_id=hooks.cluster_principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=account.id.apply(lambda account_id: role_definition_id(account_id, STORAGE_ACCOUNT_CONTRIBUTOR)),
            opts=child,
        )
        self.storage_class_name = SHARED_WEIGHTS_STORAGE_CLASS
        self.claim_size = f"{args.config.share_gib}Gi"
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-storage-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SHARED_WEIGHTS_STORAGE_CLASS),
            provisioner=FILES_PROVISIONER,
            parameters={
                "protocol": "nfs",
                "skuName": "Premium_LRS",
                "storageAccount": account_name,
                "resourceGroup": hooks.resource_group,
            },
            mount_options=NFS_MOUNT_OPTIONS,
            reclaim_policy="Retain" if args.protect else "Delete",
            volume_binding_mode="Immediate",
            allow_volume_expansion=True,
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[grant]),
        )
        self.register_outputs({"storageAccount": account_name, "storageClass": SHARED_WEIGHTS_STORAGE_CLASS, "claimSize": self.claim_size})
