"""Shared model weights on GKE: Filestore, through GKE's managed Filestore CSI driver.

Why dynamic provisioning (one Filestore instance per model's weights claim) rather than one
instance with static PersistentVolumes: the model services keep their claim exactly as on EKS (a
ReadWriteMany PVC of the storage class the contract names); each model's weights are their own
instance, sized and billed on their own and removed with the model; and there is no PV
bookkeeping that a second model, or a renamed one, could get wrong. The driver is GKE's add-on
(`gcp_filestore_csi_driver_config`): Google patches and scales it, and its node plugin already
runs on every node, GPU and spot nodes included.

Choices, and why:
- Tier from config, zonal by default: its read throughput grows with capacity (260 MiB/s per TiB),
  which is what a scale-out of many replicas loading the same weights needs. Each claim requests
  the configured capacity, so the bill is what the stack file says (the driver would silently round
  a smaller request up to the tier's minimum).
- The instance joins the cluster's VPC (`network`), by direct peering.
- `Delete` reclaim: an orphaned 1 TiB instance is billed every hour while nobody looks; a model
  that is re-created downloads its weights again in minutes.
- `Immediate` binding: the instance (minutes to create) starts when the claim is made, not when the
  first pod is scheduled; every zone of the region reaches it.
- The stack's tags become the instance's labels, for cost attribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from ...config.gcp import FilestoreConfig
from ..contract import ClusterContract

FILESTORE_PROVISIONER = "filestore.csi.storage.gke.io"
SHARED_WEIGHTS_STORAGE_CLASS = "filestore-model-weights"


def filestore_parameters(config: FilestoreConfig, network_name: pulumi.Input[str], labels: dict[str, str]) -> dict[str, pulumi.Input[str]]:
    parameters: dict[str, pulumi.Input[str]] = {
        "tier": config.storage_class_tier,
        "network": network_name,
        "connect-mode": "DIRECT_PEERING",
    }
    if labels:
        parameters["labels"] = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return parameters


@dataclass(frozen=True)
class FilestoreSharedStorageArgs:
    cluster: ClusterContract
    config: FilestoreConfig
    labels: dict[str, str]
    driver: pulumi.Resource  # the cluster, whose add-on config turns the Filestore CSI driver on
    protect: bool = False  # cluster.protect: weight PVs Retain (a deleted claim keeps its instance, and its bill)


class FilestoreSharedStorage(pulumi.ComponentResource):
    storage_class_name: str
    storage_class: k8s.storage.v1.StorageClass
    claim_size: str

    def __init__(self, name: str, args: FilestoreSharedStorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:storage:FilestoreSharedStorage", name, None, opts)
        cluster = args.cluster
        hooks = cluster.gcp
        assert hooks is not None, "Filestore is GKE-only; other clouds bring their own shared storage"
        self.storage_class_name = SHARED_WEIGHTS_STORAGE_CLASS
        self.claim_size = f"{args.config.capacity_gib}Gi"
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-storage-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SHARED_WEIGHTS_STORAGE_CLASS),
            provisioner=FILESTORE_PROVISIONER,
            parameters=filestore_parameters(args.config, hooks.network_name, args.labels),
            reclaim_policy="Retain" if args.protect else "Delete",
            volume_binding_mode="Immediate",
            allow_volume_expansion=True,
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[args.driver]),
        )
        self.register_outputs({"storageClass": SHARED_WEIGHTS_STORAGE_CLASS, "tier": args.config.tier, "claimSize": self.claim_size})
