"""The nodes' own service account, with the one role GKE nodes need.

By default GKE nodes run as the Compute Engine default service account, which holds Editor on the
project in many organisations: a compromised node could then change the project. Ours gets only
`roles/container.defaultNodeServiceAccount` (logs, metrics, and what the autoscaler and kubelet
read), Google's least-privilege role for node service accounts. Workloads that call Google APIs use
Workload Identity, never the node's account.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

NODE_ROLES = ("roles/container.defaultNodeServiceAccount",)
# Image streaming goes through the Container File System API: GKE's image-streaming guide asks that
# a custom node account may use the services of the project that holds the images.
STREAMING_ROLES = ("roles/serviceusage.serviceUsageConsumer",)
ACCOUNT_ID_MAX = 30  # GCP service account ids are 6-30 characters


def node_account_id(cluster_name: str) -> str:
    return f"{cluster_name[: ACCOUNT_ID_MAX - len('-nodes')]}-nodes"


def node_service_account(
    name: str, project: str, cluster_name: str, parent: pulumi.Resource, image_streaming: bool = False
) -> tuple[gcp.serviceaccount.Account, list[pulumi.Resource]]:
    account = gcp.serviceaccount.Account(
        f"{name}-nodes",
        account_id=node_account_id(cluster_name),
        display_name=f"GKE nodes of {cluster_name}",
        project=project,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    grants: list[pulumi.Resource] = [
        gcp.projects.IAMMember(
            f"{name}-nodes-{role.rsplit('.', 1)[-1]}",
            project=project,
            role=role,
            member=account.email.apply(lambda email: f"serviceAccount:{email}"),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for role in (*NODE_ROLES, *(STREAMING_ROLES if image_streaming else ()))
    ]
    return account, grants
