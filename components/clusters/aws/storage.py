"""Shared model weights on EKS: an encrypted EFS file system behind the EFS CSI driver.

Why EFS: every replica of a model reads the same 10-400 GB of weights. Downloading them from
Hugging Face on each scale-out costs minutes the spike does not have; a ReadWriteMany volume
downloaded once and mounted by every replica (and every new node) does not.

Choices, and why:
- The Helm chart 4.4.1 rather than the EKS managed add-on: the version is pinned here and its values
  are checked against upstream in tests, the node plugin's tolerations are ours to state (it must
  run on tainted GPU and spot nodes, or mounts hang), and it matches the other add-ons' lifecycle.
  Its controller gets IAM through Pod Identity, like the EBS driver.
- Elastic throughput: a cold start reads the whole model at once; bursting credits run out.
- No Infrequent Access lifecycle: a weight file read once a week would come back slowly and cost
  per-GB retrieval on exactly the scale-out that needs it fast.
- Mount targets in every cluster subnet (one per zone), reachable only from the nodes' security
  group on NFS (2049).
- Access-point provisioning with a directory per PVC name (`subPathPattern`, not unique): a model
  service that is deleted and re-created finds its weights where it left them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from ...config.addons import EfsCsiAddon
from ...releases import AWS_EFS_CSI_DRIVER, addon_namespace, pinned_release
from ..contract import ClusterContract
from .iam import pod_identity_role

NAMESPACE = "aws-efs-csi-driver"
RELEASE = "aws-efs-csi-driver"
CONTROLLER_SERVICE_ACCOUNT = "efs-csi-controller-sa"  # the chart's default, named here for Pod Identity
SHARED_WEIGHTS_STORAGE_CLASS = "efs-model-weights"
NFS_PORT = 2049


def efs_csi_values(cfg: EfsCsiAddon, cluster: ClusterContract) -> dict:
    return {
        "controller": {
            "replicaCount": cfg.controller_replicas,
            "serviceAccount": {"create": True, "name": CONTROLLER_SERVICE_ACCOUNT},
            "nodeSelector": cluster.system_node_selector,
            # Access points are cheap to leave; a deleted model directory is an hour of re-download.
            "deleteAccessPointRootDir": False,
            "podDisruptionBudget": {"enabled": cfg.controller_replicas > 1, "minAvailable": 1},
        },
        # The node plugin mounts volumes on every node, GPU and spot nodes included.
        "node": {"tolerations": [{"operator": "Exists"}]},
    }


@dataclass(frozen=True)
class EfsSharedStorageArgs:
    cluster: ClusterContract
    config: EfsCsiAddon
    protect: bool = False  # cluster.protect: the file system protected and retained on delete, weight PVs Retain


class EfsSharedStorage(pulumi.ComponentResource):
    storage_class_name: str
    storage_class: k8s.storage.v1.StorageClass
    file_system_id: pulumi.Output[str]

    def __init__(self, name: str, args: EfsSharedStorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:storage:EfsSharedStorage", name, None, opts)
        cluster, cfg = args.cluster, args.config
        hooks = cluster.aws
        assert hooks is not None, "EFS is EKS-only; other clouds bring their own shared storage"
        child = pulumi.ResourceOptions(parent=self)

        nfs = aws.ec2.SecurityGroup(
            f"{name}-nfs",
            description=f"NFS to the {cluster.name} model-weights file system, from cluster nodes only",
            vpc_id=hooks.vpc_id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description="NFS from cluster nodes",
                    protocol="tcp",
                    from_port=NFS_PORT,
                    to_port=NFS_PORT,
                    security_groups=[hooks.node_security_group_id],
                )
            ],
            tags={"Name": f"{name}-nfs"},
            opts=child,
        )
        file_system = aws.efs.FileSystem(
            f"{name}-fs",
            encrypted=True,
            performance_mode="generalPurpose",
            throughput_mode=cfg.throughput_mode,
            tags={"Name": f"{cluster.name}-model-weights"},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        mount_targets = [
            aws.efs.MountTarget(
                f"{name}-mount-{zone}",
                file_system_id=file_system.id,
                subnet_id=subnet_id,
                security_groups=[nfs.id],
                opts=child,
            )
            for zone, subnet_id in zip(cluster.zones, hooks.private_subnet_ids, strict=True)
        ]

        _, identity = pod_identity_role(
            f"{name}-controller",
            cluster_name=cluster.name,
            namespace=NAMESPACE,
            service_account=CONTROLLER_SERVICE_ACCOUNT,
            managed_policies={"": "service-role/AmazonEFSCSIDriverPolicy"},
            partition=hooks.partition,
            pod_identity_agent=hooks.pod_identity_agent,
            parent=self,
        )
        namespace = addon_namespace(f"{name}-namespace", NAMESPACE, "privileged", cluster.provider, self)
        release = pinned_release(
            f"{name}-release",
            RELEASE,
            AWS_EFS_CSI_DRIVER,
            namespace,
            efs_csi_values(cfg, cluster),
            cluster.provider,
            self,
            depends_on=identity,
        )
        self.storage_class_name = SHARED_WEIGHTS_STORAGE_CLASS
        self.file_system_id = file_system.id
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-storage-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SHARED_WEIGHTS_STORAGE_CLASS),
            provisioner="efs.csi.aws.com",
            parameters={
                "provisioningMode": "efs-ap",
                "fileSystemId": file_system.id,
                "directoryPerms": "750",
                "basePath": "/models",
                "subPathPattern": "${.PVC.namespace}/${.PVC.name}",
                "ensureUniqueDirectory": "false",
            },
            # Delete removes the access point only (the directory stays: deleteAccessPointRootDir false);
            # with protect, Retain keeps even the access point of a deleted claim.
            reclaim_policy="Retain" if args.protect else "Delete",
            volume_binding_mode="Immediate",  # EFS is regional: nothing to wait for
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[release, *mount_targets]),
        )
        self.register_outputs(
            {
                "fileSystemId": file_system.id,
                "storageClass": SHARED_WEIGHTS_STORAGE_CLASS,
                "securityGroupId": nfs.id,
            }
        )
