"""IAM documents and ARNs for the AWS cluster, partition-aware (aws, aws-cn, aws-us-gov).

The partition is derived from the region instead of an invoke, so the offline plan needs no AWS
call and shows the real ARNs a deploy would use.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws


def partition_for_region(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def managed_policy_arn(partition: str, policy: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{policy}"


def eks_access_policy_arn(partition: str, policy: str) -> str:
    return f"arn:{partition}:eks::aws:cluster-access-policy/{policy}"


def assume_role_policy(service: str, actions: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": actions}],
        }
    )


def allow_policy(actions: list[str], resource: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]})


def policy_document(statements: list[dict]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def service_role(
    name: str,
    service: str,
    actions: list[str],
    managed_policies: dict[str, str],
    partition: str,
    parent: pulumi.Resource,
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """An IAM role an AWS service assumes, plus its AWS-managed policy attachments (named
    `<name>-<key>`, or just `<name>` for the key ""). `pods.eks.amazonaws.com` with
    `sts:AssumeRole` + `sts:TagSession` is the EKS Pod Identity trust."""
    role = aws.iam.Role(name, assume_role_policy=assume_role_policy(service, actions), opts=pulumi.ResourceOptions(parent=parent))
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{key}" if key else name,
            role=role.name,
            policy_arn=managed_policy_arn(partition, policy),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for key, policy in managed_policies.items()
    ]
    return role, attachments


POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"
POD_IDENTITY_ACTIONS = ["sts:AssumeRole", "sts:TagSession"]


def pod_identity_role(
    name: str,
    *,
    cluster_name: str,
    namespace: str,
    service_account: str,
    managed_policies: dict[str, str],
    partition: str,
    pod_identity_agent: pulumi.Resource,
    parent: pulumi.Resource,
) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
    """An IAM role for one Kubernetes service account through EKS Pod Identity. Returns the role
    and what a workload using it must wait for (the association and the policy attachments)."""
    role, attachments = service_role(name, POD_IDENTITY_SERVICE, POD_IDENTITY_ACTIONS, managed_policies, partition, parent)
    association = aws.eks.PodIdentityAssociation(
        name,
        cluster_name=cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.arn,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[pod_identity_agent]),
    )
    return role, [association, *attachments]
