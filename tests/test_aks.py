"""The AKS cluster: what every AKS stack registers, checked on the real program under mocks.

The cloud-neutral invariants (taints tolerated, releases against upstream, model pods) run for
the AKS stacks in the other test files; these are what only AKS has.
"""

from __future__ import annotations

import base64
import copy

import pytest
import yaml
from conftest import AZURE_STACKS, PROJECT_DIR, node_pools, program_run, stack_from, tolerates

from components.catalog.gpus import gpu_instance
from components.clusters.azure.cluster import ci_ready_kubeconfig
from components.clusters.azure.storage import storage_account_name
from components.config.stack import aks_pool_name
from components.scheduling import LABEL_CAPACITY_TYPE, LABEL_GPU_COUNT, LABEL_GPU_TYPE
from stacks.offline import COMPUTED, SECRET, run_program
from stacks.plan import HELM_RELEASE_TYPE
from stacks.stack_files import load_stack_file

NS = "llm-platform"
CLUSTER = "azure-native:containerservice:ManagedCluster"
GPU_TAINT = ("nvidia.com/gpu", "present", "NoSchedule")
SPOT_TAINT = ("llm-platform.io/capacity-type", "spot", "NoSchedule")
AKS_SPOT_TAINT = ("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule")

pytestmark = pytest.mark.cloud("azure")


def _config(run):
    return load_stack_file(run.stack).validate()


def _cluster(run) -> dict:
    (cluster,) = run.of_type(CLUSTER)
    return cluster.inputs


def _aks_values(stack: str = "dev-aks") -> dict:
    return copy.deepcopy(yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())["config"])


def _values(run, release: str) -> dict:
    (found,) = [r for r in run.of_type(HELM_RELEASE_TYPE) if r.inputs["name"] == release]
    return found.inputs["values"]


_tolerates = tolerates


@pytest.fixture(params=[(s, m) for s in AZURE_STACKS for m in ("preview", "update")], ids=lambda p: f"{p[0]}-{p[1]}")
def aks_run(request):
    stack, mode = request.param
    result = program_run(stack, mode)
    assert result.error is None, result.error
    return result


def test_shipped_aks_stacks_exist():
    assert {"dev-aks", "prod-aks"} <= set(AZURE_STACKS)


def test_cluster_has_workload_identity_cilium_overlay_and_authorized_ranges(aks_run):
    cfg, cluster = _config(aks_run), _cluster(aks_run)
    azure = cfg.azure
    assert cluster["resourceName"] == cfg.cluster.name and cluster["location"] == cfg.region
    assert cluster["identity"] == {"type": "SystemAssigned"}
    assert cluster["oidcIssuerProfile"] == {"enabled": True}
    assert cluster["securityProfile"]["workloadIdentity"] == {"enabled": True}
    net = cluster["networkProfile"]
    # Plain Azure CNI without a policy engine accepts NetworkPolicies and enforces none.
    assert (net["networkPlugin"], net["networkPluginMode"], net["networkDataplane"], net["networkPolicy"]) == ("azure", "overlay", "cilium", "cilium")
    assert (net["podCidr"], net["serviceCidr"], net["dnsServiceIP"]) == (azure.network.pod_cidr, azure.network.service_cidr, azure.network.dns_service_ip)
    access = cluster["apiServerAccessProfile"]
    assert access["enablePrivateCluster"] is (not cfg.cluster.endpoint_public_access)
    ranges = [c for c in cfg.cluster.public_access_cidrs if c != "0.0.0.0/0"]
    assert access.get("authorizedIPRanges") == (ranges or None)
    assert cluster["disableLocalAccounts"] is azure.entra_id
    assert (cluster.get("aadProfile") == {"managed": True, "enableAzureRBAC": True}) is azure.entra_id
    assert cluster["sku"] == {"name": "Base", "tier": azure.sku_tier}
    assert cluster["storageProfile"]["fileCSIDriver"] == {"enabled": True}
    assert cluster["nodeProvisioningProfile"]["mode"] == ("Auto" if azure.node_auto_provisioning else "Manual")
    assert cluster["autoUpgradeProfile"] == {"upgradeChannel": "patch", "nodeOSUpgradeChannel": "NodeImage"}


def test_system_pool_is_inline_untainted_and_autoscaled(aks_run):
    cfg = _config(aks_run)
    (profile,) = _cluster(aks_run)["agentPoolProfiles"]
    assert profile["mode"] == "System" and profile["name"] == "system"
    assert profile["vmSize"] == cfg.system_pool.instance_types[0] and not profile.get("nodeTaints")
    assert (profile["enableAutoScaling"], profile["minCount"], profile["maxCount"]) == (True, cfg.system_pool.min_size, cfg.system_pool.max_size)
    (cluster,) = aks_run.of_type(CLUSTER)
    assert "agentPoolProfiles[0].count" in cluster.ignore_changes


def test_one_agent_pool_per_gpu_pool_with_size_taints_labels_and_spot(aks_run):
    cfg = _config(aks_run)
    pools = {p["name"]: p for p in node_pools(aks_run) if p["role"] == "gpu"}
    assert set(pools) == {p.name for p in cfg.gpu_pools}
    for pool_cfg in cfg.gpu_pools:
        pool, inputs = pools[pool_cfg.name], pools[pool_cfg.name]["inputs"]
        machine = gpu_instance(pool_cfg.instance_types[0])
        assert inputs["vmSize"] == machine.name and machine.cloud == "azure" and machine.gpus_per_node == pool_cfg.gpus_per_node
        assert inputs["agentPoolName"] == aks_pool_name(pool_cfg.name) and inputs["mode"] == "User"
        assert inputs["resourceName"] == cfg.cluster.name and inputs["resourceGroupName"] == cfg.azure.resource_group
        assert GPU_TAINT in pool["taints"]
        spot = pool_cfg.capacity_type == "spot"
        # AKS adds its own spot taint: declared, so Pulumi shows no drift.
        assert (SPOT_TAINT in pool["taints"]) is spot and (AKS_SPOT_TAINT in pool["taints"]) is spot
        assert inputs["scaleSetPriority"] == ("Spot" if spot else "Regular")
        if spot:
            assert inputs["scaleSetEvictionPolicy"] == "Delete" and inputs["spotMaxPrice"] == -1
        else:
            assert "scaleSetEvictionPolicy" not in inputs and "spotMaxPrice" not in inputs
        labels = inputs["nodeLabels"]
        assert labels[LABEL_GPU_TYPE] == pool_cfg.gpu_type and labels[LABEL_GPU_COUNT] == str(pool_cfg.gpus_per_node)
        assert labels[LABEL_CAPACITY_TYPE] == pool_cfg.capacity_type
        assert (inputs["enableAutoScaling"], inputs["minCount"], inputs["maxCount"]) == (True, pool_cfg.min_size, pool_cfg.max_size)
        assert inputs.get("availabilityZones") == (list(cfg.azure.zones) or None)
        assert inputs["gpuProfile"] == {"driver": "Install"}
    for resource in aks_run.of_type("azure-native:containerservice:AgentPool"):
        assert "count" in resource.ignore_changes


def test_gpu_daemonsets_and_spot_models_tolerate_the_aks_spot_taint(aks_run):
    """Proved from the registered objects: every taint on a registered spot agent pool, AKS's own
    included, is tolerated by the operator's DaemonSets, NFD, DCGM, and spot-accepting model pods."""
    spot_taints = {t for p in node_pools(aks_run) if p["role"] == "gpu" and p["spot"] for t in p["taints"]}
    assert AKS_SPOT_TAINT in spot_taints
    operator, dcgm = _values(aks_run, "gpu-operator"), _values(aks_run, "dcgm-exporter")
    for name, tolerations in {
        "operator daemonsets": operator["daemonsets"]["tolerations"],
        "NFD worker": operator["node-feature-discovery"]["worker"]["tolerations"],
        "DCGM exporter": dcgm["tolerations"],
    }.items():
        for taint in spot_taints:
            assert _tolerates(tolerations, taint), (name, taint)
    cfg = _config(aks_run)
    deployments = {r.inputs["metadata"]["name"]: r.inputs for r in aks_run.of_type("kubernetes:apps/v1:Deployment")}
    for model in cfg.models:
        tolerations = deployments[model.name]["spec"]["template"]["spec"]["tolerations"]
        assert _tolerates(tolerations, AKS_SPOT_TAINT) is model.allows_spot, model.name


def test_kubeconfig_is_secret_and_read_only_once_the_cluster_exists(aks_run):
    cfg = _config(aks_run)
    assert aks_run.outputs["kubeconfig"] == SECRET
    (provider,) = aks_run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["clusterIdentifier"] == cfg.cluster.name
    assert provider.inputs["kubeconfig"] in (SECRET, COMPUTED)
    if not aks_run.preview:
        assert provider.inputs["kubeconfig"] == SECRET


def test_entra_id_kubeconfig_logs_in_with_the_azure_cli_not_a_device_code():
    raw = {
        "apiVersion": "v1",
        "users": [{"name": "u", "user": {"exec": {"command": "kubelogin", "args": ["get-token", "--login", "devicecode", "--server-id", "abc"]}}}],
    }
    converted = yaml.safe_load(ci_ready_kubeconfig(base64.b64encode(yaml.safe_dump(raw).encode()).decode()))
    assert converted["users"][0]["user"]["exec"]["args"] == ["get-token", "--login", "azurecli", "--server-id", "abc"]
    certificate = {"apiVersion": "v1", "users": [{"name": "u", "user": {"client-certificate-data": "x"}}]}
    assert yaml.safe_load(ci_ready_kubeconfig(base64.b64encode(yaml.safe_dump(certificate).encode()).decode())) == certificate


def test_weights_on_a_premium_nfs_account_only_the_node_subnet_reaches(aks_run):
    cfg = _config(aks_run)
    (account,) = aks_run.of_type("azure-native:storage:StorageAccount")
    inputs = account.inputs
    assert inputs["kind"] == "FileStorage" and inputs["sku"] == {"name": "Premium_LRS"}
    assert inputs["enableHttpsTrafficOnly"] is False  # NFS cannot use secure transfer; the network rule guards it
    assert inputs["allowBlobPublicAccess"] is False and inputs["minimumTlsVersion"] == "TLS1_2"
    rules = inputs["networkRuleSet"]
    assert rules["defaultAction"] == "Deny"
    (rule,) = rules["virtualNetworkRules"]
    if not cfg.azure.network.is_existing:
        (vnet,) = aks_run.of_type("azure-native:network:VirtualNetwork")
        (subnet,) = vnet.inputs["subnets"]
        assert {"service": "Microsoft.Storage"} in subnet["serviceEndpoints"]
        # the node subnet, known only once the VNet exists
        assert rule["virtualNetworkResourceId"] == COMPUTED if aks_run.preview else rule["virtualNetworkResourceId"].endswith("/subnets/nodes")
    assert inputs["accountName"] == storage_account_name(cfg.azure.resource_group, cfg.cluster.name)
    (grant,) = aks_run.of_type("azure-native:authorization:RoleAssignment")
    assert grant.inputs["roleDefinitionId"] == COMPUTED or grant.inputs["roleDefinitionId"].endswith("/roleDefinitions/17d1049b-9a84-46fb-8f53-869881c3d3ab")
    assert account.urn in grant.dependencies
    (weights_class,) = [r for r in aks_run.of_type("kubernetes:storage.k8s.io/v1:StorageClass") if r.inputs["provisioner"] == "file.csi.azure.com"]
    params = weights_class.inputs["parameters"]
    assert params["protocol"] == "nfs" and params["storageAccount"] == inputs["accountName"] and params["resourceGroup"] == cfg.azure.resource_group
    assert "nconnect=4" in weights_class.inputs["mountOptions"]
    assert grant.urn in weights_class.dependencies  # the driver may create shares only once it is allowed to
    for claim in aks_run.of_type("kubernetes:core/v1:PersistentVolumeClaim"):
        spec = claim.inputs["spec"]
        assert spec["accessModes"] == ["ReadWriteMany"] and spec["storageClassName"] == weights_class.inputs["metadata"]["name"]
        assert spec["resources"]["requests"]["storage"] == f"{cfg.azure.files.share_gib}Gi"


def test_every_azure_resource_carries_the_stack_tags_and_the_explicit_provider(aks_run):
    cfg = _config(aks_run)
    (provider,) = aks_run.of_type("pulumi:providers:azure-native")
    assert provider.inputs["location"] == cfg.region
    tagged = [r for r in aks_run.resources if r.custom and r.type.startswith("azure-native:") and r.type != "azure-native:authorization:RoleAssignment"]
    assert tagged
    for resource in tagged:
        assert resource.provider.startswith(provider.urn + "::"), resource.urn
        tags = resource.inputs["tags"]
        assert tags["llm-platform-stack"] == aks_run.stack and tags.items() >= cfg.tags.items(), resource.urn
        assert not any("/" in key for key in tags)


def test_protect_follows_config(aks_run):
    cfg = _config(aks_run)
    protected = {r.type for r in aks_run.resources if r.protect}
    if cfg.cluster.protect:
        assert {CLUSTER, "azure-native:resources:ResourceGroup"} <= protected
    else:
        assert not protected


def test_existing_subnet_is_used_as_is():
    values = _aks_values()
    subnet = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub/subnets/aks"
    values[f"{NS}:azure"]["network"] = {"subnetId": subnet}
    run = run_program(stack_from(values, "dev-aks"), preview=True)
    assert run.error is None, run.error
    assert not run.of_type("azure-native:network:VirtualNetwork")
    assert _cluster(run)["agentPoolProfiles"][0]["vnetSubnetID"] == subnet
    (account,) = run.of_type("azure-native:storage:StorageAccount")
    assert [r["virtualNetworkResourceId"] for r in account.inputs["networkRuleSet"]["virtualNetworkRules"]] == [subnet]


def test_preview_registers_every_resource_of_update_and_asks_azure_nothing():
    for stack in AZURE_STACKS:
        names = {mode: sorted((r.type, r.name) for r in program_run(stack, mode).resources) for mode in ("preview", "update")}
        assert names["preview"] == names["update"], stack
        assert "mock" not in repr([r.inputs for r in program_run(stack, "preview").resources])


def test_the_planner_knows_the_gpus_of_azure_sizes():
    """The NC H100 v5 sizes carry the 94 GB H100 NVL, which CUDA sees as about 93 GiB (not the
    80 GB H100 of ND H100 v5); NC A100 v4 carries the 80 GB PCIe A100. A model planned on either
    gets that memory, and the fit CLI knows the GPU by name."""
    nvl = gpu_instance("Standard_NC40ads_H100_v5").gpu
    assert nvl.key == "h100-nvl" and 92.9 < nvl.cuda_total_gib < 93.2 and nvl.memory_gb == 94
    assert gpu_instance("Standard_ND96isr_H100_v5").gpu.key == "h100"
    assert gpu_instance("Standard_NC24ads_A100_v4").gpu.cuda_total_gib == gpu_instance("Standard_ND96amsr_A100_v4").gpu.cuda_total_gib
    values = _aks_values()
    values[f"{NS}:gpuPools"] = [{"name": "nvl", "gpuType": "h100-nvl", "gpusPerNode": 1, "instanceTypes": ["Standard_NC40ads_H100_v5"], "maxSize": 2}]
    values[f"{NS}:models"][0].update(gpuType="h100-nvl", model="Qwen/Qwen3-32B", maxModelLen=32768, dtype="auto")
    values[f"{NS}:models"][0]["scaling"]["scaleDownStabilization"] = "30m"  # a 32B start from zero takes ~18 minutes here
    run = run_program(stack_from(values, "dev-aks"), preview=True)
    assert run.error is None, run.error
    (model,) = run.outputs["models"]
    predicted = model["predicted"]
    # 32B bf16 (~61 GiB of weights) fits one NVL with ~20 GiB of KV cache, which no 80 GB part would leave
    assert 60 < predicted["weightsGibPerGpu"] < 63 and predicted["kvCacheGibPerGpu"] > 15
