"""The GKE cluster: what every GKE stack registers, checked on the real program under mocks.

The cloud-neutral invariants (taints tolerated, releases against upstream, model pods) run for
the GKE stacks in the other test files; these are what only GKE has.
"""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml
from conftest import GCP_STACKS, PROJECT_DIR, node_pools, program_run, stack_from

from components.catalog.gcp_zones import accelerator_zones
from components.catalog.gpus import gpu_instance
from components.clusters.gcp.cluster import initial_nodes_per_zone, kubeconfig_json
from components.scheduling import LABEL_CAPACITY_TYPE, LABEL_GPU_COUNT, LABEL_GPU_TYPE
from stacks.offline import COMPUTED, SECRET, run_program
from stacks.stack_files import load_stack_file

NS = "llm-platform"
CLUSTER = "gcp:container/cluster:Cluster"
GPU_TAINT = ("nvidia.com/gpu", "present", "NoSchedule")
SPOT_TAINT = ("llm-platform.io/capacity-type", "spot", "NoSchedule")

pytestmark = pytest.mark.cloud("gcp")


def _config(run):
    return load_stack_file(run.stack).validate()


def _cluster(run) -> dict:
    (cluster,) = run.of_type(CLUSTER)
    return cluster.inputs


def _gke_values(stack: str = "dev-gke") -> dict:
    return copy.deepcopy(yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())["config"])


@pytest.fixture(params=[(s, m) for s in GCP_STACKS for m in ("preview", "update")], ids=lambda p: f"{p[0]}-{p[1]}")
def gke_run(request):
    stack, mode = request.param
    result = program_run(stack, mode)
    assert result.error is None, result.error
    return result


def test_shipped_gke_stacks_exist():
    assert {"dev-gke", "prod-gke"} <= set(GCP_STACKS)


def test_cluster_is_vpc_native_private_with_workload_identity_and_no_default_pool(gke_run):
    cfg, cluster = _config(gke_run), _cluster(gke_run)
    gcp = cfg.gcp
    assert cluster["name"] == cfg.cluster.name and cluster["project"] == gcp.project
    assert cluster["location"] == (gcp.zones[0] if gcp.location_type == "zonal" else cfg.region)
    assert cluster["removeDefaultNodePool"] is True and cluster["initialNodeCount"] == 1
    assert cluster["networkingMode"] == "VPC_NATIVE"
    assert cluster["ipAllocationPolicy"]["clusterSecondaryRangeName"] and cluster["ipAllocationPolicy"]["servicesSecondaryRangeName"]
    assert cluster["datapathProvider"] == "ADVANCED_DATAPATH"  # Dataplane V2 enforces the model services' NetworkPolicies
    assert cluster["releaseChannel"]["channel"] == gcp.release_channel.upper()
    assert cluster["workloadIdentityConfig"]["workloadPool"] == f"{gcp.project}.svc.id.goog"
    assert cluster["privateClusterConfig"]["enablePrivateNodes"] is True
    assert cluster["privateClusterConfig"]["enablePrivateEndpoint"] is (not cfg.cluster.endpoint_public_access)
    allowed = [b["cidrBlock"] for b in cluster["masterAuthorizedNetworksConfig"]["cidrBlocks"]]
    assert allowed == cfg.cluster.public_access_cidrs
    assert cluster["deletionProtection"] is cfg.cluster.protect
    assert cluster["addonsConfig"]["gcpFilestoreCsiDriverConfig"]["enabled"] is gcp.filestore.enabled
    assert cluster["clusterAutoscaling"]["autoscalingProfile"] == "OPTIMIZE_UTILIZATION"


def test_protect_follows_config(gke_run):
    cfg = _config(gke_run)
    protected = {r.type for r in gke_run.resources if r.protect}
    if cfg.cluster.protect:
        assert {CLUSTER, "llm-platform:network:GcpVpc"} <= protected
    else:
        assert not protected


def test_nodes_run_as_their_own_least_privilege_service_account(gke_run):
    (account,) = gke_run.of_type("gcp:serviceaccount/account:Account")
    grants = gke_run.of_type("gcp:projects/iAMMember:IAMMember")
    # the least-privilege node role, and (image streaming) the right to use the project's services
    assert sorted(g.inputs["role"] for g in grants) == ["roles/container.defaultNodeServiceAccount", "roles/serviceusage.serviceUsageConsumer"]
    assert all(account.urn in g.dependencies for g in grants)
    for pool in node_pools(gke_run):
        node = pool["inputs"]["nodeConfig"]
        assert node["serviceAccount"] not in ("default", "")
        assert node["workloadMetadataConfig"]["mode"] == "GKE_METADATA"
        assert node["shieldedInstanceConfig"]["enableSecureBoot"] is True
        assert node["metadata"]["disable-legacy-endpoints"] == "true"
    if not gke_run.preview:
        email = f"{account.inputs['accountId']}@"
        assert all(pool["inputs"]["nodeConfig"]["serviceAccount"].startswith(email) for pool in node_pools(gke_run))
        assert _cluster(gke_run)["nodeConfig"]["serviceAccount"].startswith(email)


def test_one_node_pool_per_gpu_pool_with_accelerator_taints_labels_and_zones(gke_run):
    cfg = _config(gke_run)
    pools = {p["name"]: p for p in node_pools(gke_run) if p["role"] == "gpu"}
    assert set(pools) == {p.name for p in cfg.gpu_pools}
    for pool_cfg in cfg.gpu_pools:
        pool = pools[pool_cfg.name]
        inputs, node = pool["inputs"], pool["inputs"]["nodeConfig"]
        machine = gpu_instance(pool_cfg.instance_types[0])
        assert node["machineType"] == machine.name
        (accelerator,) = node["guestAccelerators"]
        assert (accelerator["type"], accelerator["count"]) == (machine.accelerator, pool_cfg.gpus_per_node)
        # Declared, never left to GKE (which adds the GPU taint only sometimes, and no spot taint).
        assert GPU_TAINT in pool["taints"]
        assert (SPOT_TAINT in pool["taints"]) is (pool_cfg.capacity_type == "spot")
        assert pool["spot"] is (pool_cfg.capacity_type == "spot")
        labels = node["labels"]
        assert labels[LABEL_GPU_TYPE] == pool_cfg.gpu_type and labels[LABEL_GPU_COUNT] == str(pool_cfg.gpus_per_node)
        assert labels[LABEL_CAPACITY_TYPE] == pool_cfg.capacity_type
        zones = cfg.pool_zones(pool_cfg)
        assert inputs["nodeLocations"] == zones
        offered = accelerator_zones(machine.accelerator, cfg.region)
        assert offered is not None and set(zones) <= offered
        autoscaling = inputs["autoscaling"]
        assert (autoscaling["totalMinNodeCount"], autoscaling["totalMaxNodeCount"]) == (pool_cfg.min_size, pool_cfg.max_size)
        assert "minNodeCount" not in autoscaling and "nodeCount" not in inputs  # per-zone counts would multiply by zones
        assert autoscaling["locationPolicy"] == ("ANY" if pool_cfg.capacity_type == "spot" else "BALANCED")
        assert inputs["upgradeSettings"]["maxSurge"] == 0 and inputs["upgradeSettings"]["maxUnavailable"] == 1
        assert inputs["management"] == {"autoRepair": True, "autoUpgrade": True}


def test_system_pool_is_on_demand_untainted_cpu(gke_run):
    cfg = _config(gke_run)
    (system,) = [p for p in node_pools(gke_run) if p["role"] == "system"]
    node = system["inputs"]["nodeConfig"]
    assert system["taints"] == [] and system["spot"] is False
    assert "guestAccelerators" not in node and node["machineType"] == cfg.system_pool.instance_types[0]
    assert system["inputs"]["nodeLocations"] == cfg.gcp.zones
    assert system["inputs"]["autoscaling"]["totalMinNodeCount"] == cfg.system_pool.min_size


def test_autoscaler_owned_node_counts_are_not_reverted_by_pulumi(gke_run):
    for resource in gke_run.of_type("gcp:container/nodePool:NodePool"):
        assert "initialNodeCount" in resource.ignore_changes, resource.urn


def test_initial_node_count_is_per_zone():
    assert initial_nodes_per_zone(0, 3) == 0
    assert initial_nodes_per_zone(2, 3) == 1  # GKE starts one per zone: 3 nodes, the autoscaler trims to the total
    assert initial_nodes_per_zone(4, 3) == 2


def test_new_network_has_secondary_ranges_private_google_access_and_nat(gke_run):
    cfg = _config(gke_run)
    net = cfg.gcp.network
    (network,) = gke_run.of_type("gcp:compute/network:Network")
    assert network.inputs["autoCreateSubnetworks"] is False
    (subnet,) = [s for s in gke_run.of_type("gcp:compute/subnetwork:Subnetwork") if "purpose" not in s.inputs]
    assert subnet.inputs["ipCidrRange"] == net.subnet_cidr and subnet.inputs["privateIpGoogleAccess"] is True
    ranges = {r["rangeName"]: r["ipCidrRange"] for r in subnet.inputs["secondaryIpRanges"]}
    cluster = _cluster(gke_run)["ipAllocationPolicy"]
    assert ranges == {cluster["clusterSecondaryRangeName"]: net.pods_cidr, cluster["servicesSecondaryRangeName"]: net.services_cidr}
    (nat,) = gke_run.of_type("gcp:compute/routerNat:RouterNat")
    assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    assert nat.inputs["enableDynamicPortAllocation"] is True


def test_existing_network_is_used_as_is():
    values = _gke_values()
    values[f"{NS}:gcp"]["network"] = {"network": "shared-vpc", "subnetwork": "gke-nodes", "podsRangeName": "gke-pods", "servicesRangeName": "gke-svc"}
    run = run_program(stack_from(values, "dev-gke"), preview=True)
    assert run.error is None, run.error
    assert not run.of_type("gcp:compute/network:Network") and not run.of_type("gcp:compute/routerNat:RouterNat")
    cluster = _cluster(run)
    assert cluster["network"] == "projects/llm-platform-dev/global/networks/shared-vpc"
    assert cluster["subnetwork"] == "projects/llm-platform-dev/regions/us-central1/subnetworks/gke-nodes"
    assert cluster["ipAllocationPolicy"] == {"clusterSecondaryRangeName": "gke-pods", "servicesSecondaryRangeName": "gke-svc"}
    (storage_class,) = [r.inputs for r in run.of_type("kubernetes:storage.k8s.io/v1:StorageClass") if r.inputs["provisioner"].startswith("filestore")]
    assert storage_class["parameters"]["network"] == "shared-vpc"


def test_gcp_provider_is_explicit_with_project_region_and_labels(gke_run):
    cfg = _config(gke_run)
    (provider,) = gke_run.of_type("pulumi:providers:gcp")
    assert provider.inputs["project"] == cfg.gcp.project and provider.inputs["region"] == cfg.region
    labels = provider.inputs["defaultLabels"]
    labels = json.loads(labels) if isinstance(labels, str) else labels
    assert labels["llm-platform-stack"] == gke_run.stack and labels["managed-by"] == "pulumi"
    assert labels.items() >= cfg.tags.items()
    assert all(re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", k) and re.fullmatch(r"[a-z0-9_-]{0,63}", v) for k, v in labels.items())
    gcp_resources = [r for r in gke_run.resources if r.custom and r.type.startswith("gcp:")]
    assert gcp_resources and all(r.provider.startswith(provider.urn + "::") for r in gcp_resources)
    assert not gke_run.of_type("pulumi:providers:aws")


def test_kubeconfig_is_secret_and_authenticates_with_the_gke_plugin(gke_run):
    cfg = _config(gke_run)
    assert gke_run.outputs["kubeconfig"] == SECRET
    (provider,) = gke_run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["clusterIdentifier"] == cfg.cluster.name
    assert provider.inputs["kubeconfig"] in (SECRET, COMPUTED)
    if not gke_run.preview:
        assert provider.inputs["kubeconfig"] == SECRET
    kubeconfig = json.loads(kubeconfig_json(cfg.cluster.name, "203.0.113.10", "Y2E="))
    (cluster,) = kubeconfig["clusters"]
    assert cluster["cluster"] == {"server": "https://203.0.113.10", "certificate-authority-data": "Y2E="}
    (user,) = kubeconfig["users"]
    assert user["user"]["exec"]["command"] == "gke-gcloud-auth-plugin" and user["user"]["exec"]["provideClusterInfo"] is True


def test_model_weights_are_on_filestore_sized_as_configured(gke_run):
    cfg = _config(gke_run)
    (weights_class,) = [r for r in gke_run.of_type("kubernetes:storage.k8s.io/v1:StorageClass") if r.inputs["provisioner"] == "filestore.csi.storage.gke.io"]
    params = weights_class.inputs["parameters"]
    assert params["tier"] == cfg.gcp.filestore.storage_class_tier and params["connect-mode"] == "DIRECT_PEERING"
    assert weights_class.inputs["reclaimPolicy"] == ("Retain" if cfg.cluster.protect else "Delete")
    assert weights_class.inputs["volumeBindingMode"] == "Immediate"
    assert weights_class.inputs["allowVolumeExpansion"] is True
    (cluster,) = gke_run.of_type(CLUSTER)
    assert cluster.urn in weights_class.dependencies  # the driver comes with the cluster's add-on config
    claims = gke_run.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    assert len(claims) == len(cfg.models) >= 1
    for claim in claims:
        spec = claim.inputs["spec"]
        assert spec["accessModes"] == ["ReadWriteMany"] and spec["storageClassName"] == weights_class.inputs["metadata"]["name"]
        assert spec["resources"]["requests"]["storage"] == f"{cfg.gcp.filestore.capacity_gib}Gi"


def test_no_aws_only_add_on_is_installed(gke_run):
    releases = {r.inputs["name"] for r in gke_run.of_type("kubernetes:helm.sh/v3:Release")}
    routing = {"body-based-routing", *(f"{m.name}-pool" for m in _config(gke_run).routed_models)}
    assert releases - routing == {"keda", "kube-prometheus-stack", "dcgm-exporter"}
    assert not [r for r in gke_run.resources if r.type.startswith(("aws:", "kubernetes:karpenter"))]


def test_node_auto_provisioning_sets_cpu_memory_and_gpu_limits():
    values = _gke_values()
    values[f"{NS}:gcp"]["nodeAutoProvisioning"] = {"maxCpu": 64, "maxMemoryGib": 256, "maxGpus": {"l4": 8, "h100": 16}}
    run = run_program(stack_from(values, "dev-gke"), preview=True)
    assert run.error is None, run.error
    autoscaling = _cluster(run)["clusterAutoscaling"]
    assert autoscaling["enabled"] is True
    limits = {r["resourceType"]: r["maximum"] for r in autoscaling["resourceLimits"]}
    assert limits == {"cpu": 64, "memory": 256, "nvidia-l4": 8, "nvidia-h100-80gb": 16}
    assert autoscaling["autoProvisioningDefaults"]["imageType"] == "COS_CONTAINERD"
    assert _cluster(program_run("dev-gke", "preview"))["clusterAutoscaling"]["enabled"] is False


def test_a_gpu_pool_in_its_own_zones():
    values = _gke_values("prod-gke")
    values[f"{NS}:gpuPools"][0]["zones"] = ["us-central1-a", "us-central1-b"]
    run = run_program(stack_from(values, "prod-gke"), preview=True)
    assert run.error is None, run.error
    pools = {p["name"]: p["inputs"] for p in node_pools(run) if p["role"] == "gpu"}
    assert pools["l4x4-ondemand"]["nodeLocations"] == ["us-central1-a", "us-central1-b"]
    assert pools["l4-ondemand"]["nodeLocations"] == ["us-central1-a", "us-central1-b", "us-central1-c"]


def test_preview_invents_no_cloud_values():
    for stack in GCP_STACKS:
        run = program_run(stack, "preview")
        assert run.error is None, run.error
        (system,) = [p for p in node_pools(run) if p["role"] == "system"]
        assert system["inputs"]["nodeConfig"]["serviceAccount"] == COMPUTED
        assert "mock" not in repr([r.inputs for r in run.resources])
        assert "203.0.113" not in repr([r.inputs for r in run.resources])


def test_preview_registers_every_resource_of_update():
    """A PR preview of a GKE stack (endpoint, emails, ids unknown) registers the same resources."""
    for stack in GCP_STACKS:
        names = {mode: sorted((r.type, r.name) for r in program_run(stack, mode).resources) for mode in ("preview", "update")}
        assert names["preview"] == names["update"], stack
