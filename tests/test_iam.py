"""Cloud IAM least privilege (issue 21): every grant the stacks make, on all three clouds, is in
the allowlists below with the reason it is needed; no Allow statement has a wildcard action; a
wildcard resource only where Karpenter's published controller policy has one; Azure roles are
scoped to the resource they serve, never a resource group or subscription."""

from __future__ import annotations

import json

import pytest
from conftest import STACK_CLOUD, program_run

from stacks.stack_files import load_stack_file

# AWS managed policies we attach, and why (each is what the EKS or driver docs prescribe).
AWS_MANAGED_POLICIES = {
    "AmazonEKSClusterPolicy": "the EKS control plane's role (EKS user guide, cluster IAM role)",
    "AmazonEKSWorkerNodePolicy": "nodes join the cluster (EKS node IAM role)",
    "AmazonEKS_CNI_Policy": "the VPC CNI assigns pod IPs on the node (EKS node IAM role)",
    "AmazonEC2ContainerRegistryPullOnly": "nodes pull EKS add-on images from ECR, pull only (no push, no repository admin)",
    "AmazonSSMManagedInstanceCore": "Karpenter's published node role carries it (getting-started CloudFormation): node access through SSM, no SSH keys or open port",
    "AmazonEFSCSIDriverPolicy": "the EFS CSI controller creates and deletes the weights' access points (its Pod Identity role)",
    "AmazonEBSCSIDriverPolicy": "the EBS CSI controller provisions Prometheus' volumes (its Pod Identity role)",
}
# Karpenter v1 controller policy (karpenter.sh docs, reference/cloudformation): the statements it
# publishes with "Resource": "*".
KARPENTER_UNSCOPED = {"AllowRegionalReadActions", "AllowPricingReadActions", "AllowUnscopedInstanceProfileListAction"}
GCP_PROJECT_ROLES = {
    "roles/container.defaultNodeServiceAccount": "the node service account's minimum (logging, monitoring, the autoscaler); GKE's hardening guide",
    "roles/serviceusage.serviceUsageConsumer": "image streaming calls the container file system API on the project (fastImagePull)",
}


def _updates(cloud: str):
    """Update mode: what each grant names is known there (preview leaves ids computed)."""
    return pytest.mark.parametrize("run", [s for s, c in STACK_CLOUD.items() if c == cloud], indirect=True, ids=str)


@pytest.fixture
def run(request):
    result = program_run(request.param, "update")
    assert result.error is None, result.error
    return result


def _aws_statements(run):
    for r in run.resources:
        if r.type in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
            document = r.inputs["policy"]
            document = json.loads(document) if isinstance(document, str) else document
            for statement in document["Statement"]:
                yield r.name, statement


def _actions(statement) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else actions


@_updates("aws")
def test_aws_grants_are_the_allowlist_and_no_action_is_a_wildcard(run):
    attached = {r.inputs["policyArn"].rsplit("/", 1)[-1] for r in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    assert attached <= set(AWS_MANAGED_POLICIES), attached - set(AWS_MANAGED_POLICIES)
    assert {"AmazonEKSClusterPolicy", "AmazonEKSWorkerNodePolicy"} <= attached
    statements = list(_aws_statements(run))
    assert statements
    cluster = load_stack_file(run.stack).validate().cluster.name
    for name, statement in statements:
        if statement["Effect"] != "Allow":
            continue
        assert not any(a == "*" or a.endswith(":*") for a in _actions(statement)), (name, statement)
        if statement.get("Resource") == "*":
            assert "karpenter" in name and statement.get("Sid") in KARPENTER_UNSCOPED, (name, statement.get("Sid"))
        text = json.dumps(statement)
        if "aws:ResourceTag/kubernetes.io/cluster" in text or "aws:RequestTag/kubernetes.io/cluster" in text:
            assert f"kubernetes.io/cluster/{cluster}" in text, (name, statement.get("Sid"))  # scoped to this cluster


@_updates("gcp")
def test_gcp_project_roles_are_the_allowlist(run):
    roles = {r.inputs["role"] for r in run.of_type("gcp:projects/iAMMember:IAMMember")}
    assert "roles/container.defaultNodeServiceAccount" in roles and roles <= set(GCP_PROJECT_ROLES), roles
    members = {r.inputs["member"] for r in run.of_type("gcp:projects/iAMMember:IAMMember")}
    assert all(m.startswith("serviceAccount:") and "-nodes@" in m for m in members), members  # our node account only
    for grant in run.of_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"):
        assert grant.inputs["role"] == "roles/artifactregistry.reader"  # one repository, read only


@_updates("azure")
def test_azure_roles_are_scoped_to_the_resource_they_serve(run):
    assignments = run.of_type("azure-native:authorization:RoleAssignment")
    for grant in assignments:
        scope = str(grant.inputs["scope"])
        assert "/providers/" in scope, scope  # a resource's id, not a subscription or resource group
        assert grant.inputs["principalType"] == "ServicePrincipal"
