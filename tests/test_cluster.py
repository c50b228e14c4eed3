"""Properties every stack must have (the first tests), and those of the EKS GPU cluster (marked aws;
GKE's are in test_gke.py), checked on what the program registers."""

from __future__ import annotations

import ipaddress
import json
import re

import pytest
from conftest import STACKS, dev_config_values, program_run, stack_from

from components.catalog.gpus import gpu_instance
from components.clusters.aws.network import subnet_cidrs
from components.scheduling import LABEL_CAPACITY_TYPE, LABEL_GPU_TYPE, LABEL_NODE_ROLE, LABEL_POOL
from stacks.offline import COMPUTED, SECRET, run_program
from stacks.stack_files import load_stack_file

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
SPOT_TAINT = {"key": "llm-platform.io/capacity-type", "value": "spot", "effect": "NO_SCHEDULE"}


def _gpu_groups(run):
    return {r.inputs["labels"][LABEL_POOL]: r.inputs for r in run.of_type(NODE_GROUP) if r.inputs["labels"][LABEL_NODE_ROLE] == "gpu"}


def test_no_duplicate_urns(run):
    urns = [r.urn for r in run.resources]
    assert len(urns) == len(set(urns))


def test_every_resource_has_a_registered_parent_and_known_dependencies(run):
    urns = {r.urn for r in run.resources}
    roots = [r for r in run.resources if r.parent == ""]
    assert [r.type for r in roots] == ["pulumi:pulumi:Stack"]
    for res in run.resources:
        assert res.parent == "" or res.parent in urns, res.urn
        assert set(res.dependencies) <= urns, res.urn


def test_cloud_resources_live_inside_components(run):
    """Only providers sit directly under the stack; everything else is a component's child."""
    root = next(r.urn for r in run.resources if r.type == "pulumi:pulumi:Stack")
    for res in run.resources:
        if res.custom and res.parent == root:
            assert res.type.startswith("pulumi:providers:"), res.urn


def test_component_type_tokens(run):
    for res in run.resources:
        if not res.custom and res.type != "pulumi:pulumi:Stack":
            assert re.fullmatch(r"llm-platform:[a-z_]+:[A-Z][A-Za-z]+", res.type), res.type


@pytest.mark.cloud("aws")
def test_one_gpu_node_group_per_pool_with_gpu_taint_and_nvidia_ami(run, stack_config):
    groups = _gpu_groups(run)
    assert set(groups) == {p.name for p in stack_config.gpu_pools}
    for pool, inputs in groups.items():
        assert GPU_TAINT in inputs["taints"], pool
        assert inputs["amiType"] in ("AL2023_x86_64_NVIDIA", "AL2023_ARM_64_NVIDIA"), pool


@pytest.mark.cloud("aws")
def test_capacity_types_and_spot_taint_match_config(run, stack_config):
    groups = _gpu_groups(run)
    for pool in stack_config.gpu_pools:
        inputs = groups[pool.name]
        assert inputs["capacityType"] == {"spot": "SPOT", "on-demand": "ON_DEMAND"}[pool.capacity_type]
        assert inputs["labels"][LABEL_CAPACITY_TYPE] == pool.capacity_type
        assert (SPOT_TAINT in inputs["taints"]) == (pool.capacity_type == "spot"), pool.name


@pytest.mark.cloud("aws")
def test_gpu_node_groups_match_pool_config(run, stack_config):
    groups = _gpu_groups(run)
    for pool in stack_config.gpu_pools:
        inputs = groups[pool.name]
        assert inputs["instanceTypes"] == pool.instance_types
        assert inputs["labels"][LABEL_GPU_TYPE] == pool.gpu_type
        assert inputs["scalingConfig"] == {"minSize": pool.min_size, "maxSize": pool.max_size, "desiredSize": pool.desired}
        for instance_type in inputs["instanceTypes"]:
            carried = gpu_instance(instance_type)
            assert (carried.gpu.key, carried.gpus_per_node) == (pool.gpu_type, pool.gpus_per_node)
        assert inputs["nodeRepairConfig"] == {"enabled": True}


@pytest.mark.cloud("aws")
def test_autoscaler_owned_node_counts_are_not_reverted_by_pulumi(run):
    for group in run.of_type(NODE_GROUP):
        assert "scalingConfig.desiredSize" in group.ignore_changes, group.name


@pytest.mark.cloud("aws")
def test_system_pool_is_on_demand_untainted_cpu(run):
    system = [r.inputs for r in run.of_type(NODE_GROUP) if r.inputs["labels"][LABEL_NODE_ROLE] == "system"]
    assert len(system) == 1
    assert system[0]["capacityType"] == "ON_DEMAND"
    assert "taints" not in system[0]
    assert system[0]["amiType"].endswith("_STANDARD")
    assert system[0]["nodeRepairConfig"] == {"enabled": True}


@pytest.mark.cloud("aws")
def test_cluster_uses_access_entries_not_aws_auth(run, stack_config):
    (cluster,) = [r.inputs for r in run.of_type("aws:eks/cluster:Cluster")]
    assert cluster["accessConfig"]["authenticationMode"] == "API"
    assert cluster["name"] == stack_config.cluster.name
    assert cluster["encryptionConfig"]["resources"] == ["secrets"]
    assert not [
        r for r in run.resources if r.type == "kubernetes:core/v1:ConfigMap" and r.inputs["metadata"]["name"] == "aws-auth"
    ]
    entries = [r.inputs["principalArn"] for r in run.of_type("aws:eks/accessEntry:AccessEntry") if r.inputs["type"] == "STANDARD"]
    assert sorted(entries) == sorted(stack_config.cluster.admin_principal_arns)
    associations = run.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert len(associations) == len(entries)


@pytest.mark.cloud("aws")
def test_private_subnets_span_at_least_two_zones(run, stack_config):
    private = [r.inputs for r in run.of_type("aws:ec2/subnet:Subnet") if "kubernetes.io/role/internal-elb" in r.inputs["tags"]]
    zones = {s["availabilityZone"] for s in private}
    assert len(zones) >= 2 and zones == set(stack_config.cluster.network.zones)
    (cluster,) = [r.inputs for r in run.of_type("aws:eks/cluster:Cluster")]
    assert len(cluster["vpcConfig"]["subnetIds"]) == len(zones)


@pytest.mark.cloud("aws")
def test_pod_identity_agent_and_ebs_csi_addons(run):
    addons = {r.inputs["addonName"]: r for r in run.of_type("aws:eks/addon:Addon")}
    assert {"eks-pod-identity-agent", "aws-ebs-csi-driver"} <= set(addons)
    ebs = addons["aws-ebs-csi-driver"]
    assert addons["eks-pod-identity-agent"].urn in ebs.dependencies
    assert ebs.inputs["podIdentityAssociations"][0]["serviceAccount"] == "ebs-csi-controller-sa"


@pytest.mark.cloud("aws")
def test_network_policies_are_enforced(run):
    """EKS's VPC CNI ignores NetworkPolicies unless its network policy agent is switched on."""
    (cni,) = [r.inputs for r in run.of_type("aws:eks/addon:Addon") if r.inputs["addonName"] == "vpc-cni"]
    assert json.loads(cni["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_kubeconfig_is_secret_and_provider_is_pinned_to_the_cluster(run, stack_config):
    assert run.outputs["kubeconfig"] == SECRET
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["clusterIdentifier"] == stack_config.cluster.name
    assert provider.inputs["kubeconfig"] in (SECRET, COMPUTED)
    if not run.preview:
        assert provider.inputs["kubeconfig"] == SECRET


def test_no_resource_uses_a_default_provider(run):
    """Stack files disable default providers; every resource must carry an explicit one."""
    values = load_stack_file(run.stack).values
    assert values.get("pulumi:disable-default-providers") == ["*"]
    provider_urns = {r.urn for r in run.resources if r.type.startswith("pulumi:providers:")}
    for res in run.resources:
        if res.custom and not res.type.startswith("pulumi:providers:"):
            assert res.provider.rsplit("::", 1)[0] in provider_urns, res.urn


def test_kubernetes_objects_use_the_cluster_provider(run):
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    for res in run.resources:
        if res.custom and res.type.startswith("kubernetes:"):
            assert res.provider.startswith(provider.urn + "::"), res.urn


@pytest.mark.cloud("aws")
@pytest.mark.parametrize("stack", STACKS)
def test_preview_invents_no_cloud_values(stack):
    """In preview, ids and ARNs that only AWS can produce stay unknown."""
    run = program_run(stack, "preview")
    (system,) = [r for r in run.of_type(NODE_GROUP) if r.inputs["labels"][LABEL_NODE_ROLE] == "system"]
    assert system.inputs["nodeRoleArn"] == COMPUTED
    assert all(s == COMPUTED for s in system.inputs["subnetIds"])
    assert "mock" not in repr([r.inputs for r in run.resources])


@pytest.mark.cloud("aws")
def test_protect_follows_config(run, stack_config):
    protected = {r.type for r in run.resources if r.protect}
    if stack_config.cluster.protect:
        assert {"aws:eks/cluster:Cluster", "aws:kms/key:Key"} <= protected
        if not stack_config.cluster.network.is_existing:
            assert "llm-platform:network:AwsVpc" in protected
    else:
        assert not protected


@pytest.mark.cloud("aws")
def test_every_aws_resource_gets_stack_tags_through_the_provider(run, stack_config):
    (aws_provider,) = run.of_type("pulumi:providers:aws")
    default_tags = aws_provider.inputs["defaultTags"]
    tags = (json.loads(default_tags) if isinstance(default_tags, str) else default_tags)["tags"]  # provider config is JSON text
    assert tags["llm-platform/stack"] == run.stack
    assert tags.items() >= stack_config.tags.items()
    assert aws_provider.inputs["region"] == stack_config.region


def test_graviton_pools_get_arm_amis():
    values = dev_config_values()
    values["llm-platform:systemPool"]["instanceTypes"] = ["m7g.large", "c7g.xlarge"]
    values["llm-platform:gpuPools"][0].update(gpuType="t4g", instanceTypes=["g5g.xlarge", "g5g.2xlarge"])
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    ami = {r.inputs["labels"][LABEL_NODE_ROLE]: r.inputs["amiType"] for r in run.of_type(NODE_GROUP)}
    assert ami == {"system": "AL2023_ARM_64_STANDARD", "gpu": "AL2023_ARM_64_NVIDIA"}


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "172.20.0.0/18", "192.168.0.0/20"])
@pytest.mark.parametrize("zones", [2, 3, 6])
def test_subnets_are_disjoint_and_inside_the_vpc(cidr, zones):
    vpc = ipaddress.IPv4Network(cidr)
    private, public = subnet_cidrs(cidr, zones)
    nets = [ipaddress.IPv4Network(c) for c in private + public]
    assert len(private) == len(public) == zones
    assert all(n.subnet_of(vpc) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert all(n.num_addresses >= vpc.num_addresses // 8 for n in nets[:zones])  # room for pod IPs


@pytest.mark.cloud("aws")
def test_eks_gets_a_resource_metrics_api(run):
    """GKE and AKS run metrics-server themselves; EKS does not, and CPU HPAs (the gateway's proxies)
    and `kubectl top` need it. It waits for the system pool, where it runs."""
    addons = {r.inputs["addonName"]: r for r in run.of_type("aws:eks/addon:Addon")}
    (system,) = [r.urn for r in run.of_type("aws:eks/nodeGroup:NodeGroup") if r.urn.endswith("-system")]
    assert system in addons["metrics-server"].dependencies
