"""The properties of the add-on layer that decide whether GPUs are usable, scaled and watched."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml
from conftest import PROJECT_DIR, dev_config_values, node_pools, program_run, stack_from, tolerates
from upstream import require_upstream

from components.addons.dashboards import DASHBOARD_LABEL, DASHBOARDS, GPU_DASHBOARD, VLLM_DASHBOARD
from components.addons.gpu import DCGM_COUNTERS, GPU_ALERTS
from components.scheduling import GPU_TAINT, LABEL_NODE_ROLE, LABEL_POOL, SPOT_TAINT
from stacks.offline import COMPUTED, run_program
from stacks.plan import HELM_RELEASE_TYPE

NS = "llm-platform"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def _release(run, name):
    (release,) = [r for r in run.of_type(HELM_RELEASE_TYPE) if r.inputs["name"] == name]
    return release


def _values(run, name):
    return _release(run, name).inputs["values"]


def _crs(run, kind):
    return [r.inputs for r in run.resources if r.custom and r.type.startswith("kubernetes:") and r.type.endswith(f":{kind}")]


def _gpu_taints(run) -> set[tuple[str, str, str]]:
    """Every taint any GPU node can carry: managed GPU node groups or pools, and Karpenter NodePools."""
    taints = {t for pool in node_pools(run) if pool["role"] == "gpu" for t in pool["taints"]}
    taints |= {(t["key"], t["value"], t["effect"]) for np in _crs(run, "NodePool") for t in np["spec"]["template"]["spec"]["taints"]}
    return taints


_tolerates = tolerates


def _system_selector(run):
    (system,) = [pool for pool in node_pools(run) if pool["role"] == "system"]
    return {k: v for k, v in system["labels"].items() if k in (LABEL_POOL, LABEL_NODE_ROLE)}


def _releases(run) -> set[str]:
    return {r.inputs["name"] for r in run.of_type(HELM_RELEASE_TYPE)}


# --- GPU Operator and DCGM -------------------------------------------------------------------


def test_gpu_operator_installs_drivers_exactly_once_per_cloud(run, stack_config):
    """One driver and one device plugin per GPU node: EKS's AL2023 NVIDIA AMI carries the driver
    and toolkit (the operator adds the device plugin); GKE installs the driver and runs its own
    device plugin, so no operator is installed there and DCGM reads the driver from the host."""
    gpu_pools = [pool["inputs"] for pool in node_pools(run) if pool["role"] == "gpu"]
    assert gpu_pools
    dcgm = _values(run, "dcgm-exporter")
    if stack_config.cloud in ("aws", "azure"):
        values = _values(run, "gpu-operator")
        if stack_config.cloud == "aws":
            assert all("NVIDIA" in g["amiType"] for g in gpu_pools)
            assert "runtimeClass" not in values["operator"]
        else:  # AKS installs its driver (and the NVIDIA runtime, under its own name) on GPU pools
            assert all(g["gpuProfile"] == {"driver": "Install"} and g["osSKU"] == "Ubuntu" for g in gpu_pools)
            assert values["operator"]["runtimeClass"] == "nvidia-container-runtime"
        assert values["driver"]["enabled"] is False and values["toolkit"]["enabled"] is False
        assert values["devicePlugin"]["enabled"] is True and values["dcgmExporter"]["enabled"] is False
        assert "extraHostVolumes" not in dcgm  # the NVIDIA runtime injects the driver
    else:
        assert "gpu-operator" not in _releases(run)
        for pool in gpu_pools:
            (accelerator,) = pool["nodeConfig"]["guestAccelerators"]
            assert accelerator["gpuDriverInstallationConfig"]["gpuDriverVersion"] in ("DEFAULT", "LATEST")
            assert pool["nodeConfig"]["imageType"] == "COS_CONTAINERD"
            assert "gke-no-default-nvidia-gpu-device-plugin" not in pool["nodeConfig"]["labels"]
        assert dcgm["extraHostVolumes"] == [{"name": "nvidia-driver", "hostPath": "/home/kubernetes/bin/nvidia"}]
        assert {"name": "LD_LIBRARY_PATH", "value": "/usr/local/nvidia/lib64"} in dcgm["extraEnv"]
        mounts = {m["name"]: m for m in dcgm["extraVolumeMounts"]}
        assert mounts["nvidia-driver"]["mountPath"] == "/usr/local/nvidia" and mounts["nvidia-driver"]["readOnly"] is True
        assert "exporter-metrics-volume" in mounts  # the chart's counters file stays mounted
        assert dcgm["securityContext"]["privileged"] is True
        # merged over the chart's default allowPrivilegeEscalation: false, which privileged forbids
        assert dcgm["securityContext"]["allowPrivilegeEscalation"] is True


def test_every_gpu_daemonset_tolerates_every_gpu_node_taint(run):
    taints = _gpu_taints(run)
    assert (GPU_TAINT.key, GPU_TAINT.value, GPU_TAINT.effect) in taints
    dcgm = _values(run, "dcgm-exporter")
    daemonsets = {"DCGM exporter": dcgm["tolerations"]}
    if "gpu-operator" in _releases(run):
        operator = _values(run, "gpu-operator")
        daemonsets |= {
            "operator daemonsets": operator["daemonsets"]["tolerations"],
            "NFD worker": operator["node-feature-discovery"]["worker"]["tolerations"],
        }
    for name, tolerations in daemonsets.items():
        for taint in taints:
            assert _tolerates(tolerations, taint), f"{name} does not tolerate {taint}"


def test_spot_taint_reaches_the_daemonsets_when_only_karpenter_has_spot():
    values = dev_config_values()
    values[f"{NS}:gpuPools"][0]["capacityType"] = "on-demand"
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    spot = (SPOT_TAINT.key, SPOT_TAINT.value, SPOT_TAINT.effect)
    assert spot in _gpu_taints(run)
    assert _tolerates(_values(run, "dcgm-exporter")["tolerations"], spot)


def test_controllers_run_on_the_system_pool(run):
    system = _system_selector(run)
    releases = _releases(run)
    assert _values(run, "keda")["nodeSelector"] == system
    assert _values(run, "kube-prometheus-stack")["prometheus"]["prometheusSpec"]["nodeSelector"] == system
    checked = {"keda", "kube-prometheus-stack", "dcgm-exporter"}  # DCGM runs on GPU nodes (below)
    if "gpu-operator" in releases:
        assert _values(run, "gpu-operator")["operator"]["nodeSelector"].items() >= system.items()
        checked.add("gpu-operator")
    if "karpenter" in releases:
        assert _values(run, "karpenter")["nodeSelector"].items() >= system.items()
        checked.add("karpenter")
    if "aws-efs-csi-driver" in releases:
        assert _values(run, "aws-efs-csi-driver")["controller"]["nodeSelector"] == system
        checked.add("aws-efs-csi-driver")
    for name in releases:
        values = _values(run, name)
        if name.endswith("-pool"):  # routing's endpoint pickers: the chart has no nodeSelector, only affinity
            terms = values["router"]["epp"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            assert {e["key"]: e["values"] for e in terms[0]["matchExpressions"]} == {k: [v] for k, v in system.items()}
            assert "tolerations" not in values["router"]["epp"]
            checked.add(name)
        elif name == "body-based-routing":  # its chart takes no node selector: the GPU taint keeps it off GPU nodes
            assert "tolerations" not in str(values)
            checked.add(name)
        elif name == "istiod":  # the proxies it deploys are placed by the Gateway (test_routing_istio.py)
            assert values["nodeSelector"] == system and "tolerations" not in values
            checked.add(name)
        elif name == "istio-base":  # CRDs and webhook configurations only: no pods
            checked.add(name)
    assert releases == checked, releases - checked  # a new release must say where its controller runs


def test_mig_manager_follows_pool_profiles():
    values = dev_config_values()
    values[f"{NS}:gpuPools"].append(
        {"name": "a100-mig", "gpuType": "a100-80gb", "gpusPerNode": 8, "instanceTypes": ["p4de.24xlarge"], "maxSize": 1, "migProfile": "all-1g.10gb"}
    )
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    operator = _values(run, "gpu-operator")
    assert operator["migManager"]["enabled"] is True and operator["mig"]["strategy"] == "mixed"
    (group,) = [r.inputs for r in run.of_type(NODE_GROUP) if r.inputs["labels"].get(LABEL_POOL) == "a100-mig"]
    assert group["labels"]["nvidia.com/mig.config"] == "all-1g.10gb"
    assert _values(program_run("dev", "preview"), "gpu-operator")["migManager"]["enabled"] is False


def test_dcgm_runs_only_on_gpu_nodes_and_is_scraped(run):
    dcgm = _values(run, "dcgm-exporter")
    assert dcgm["nodeSelector"] == {LABEL_NODE_ROLE: "gpu"}
    assert dcgm["serviceMonitor"]["enabled"] is False  # ours, below
    (monitor,) = [m for m in _crs(run, "ServiceMonitor") if m["metadata"]["namespace"] == "dcgm-exporter"]
    release = _release(run, "dcgm-exporter").inputs
    # The chart's Service selector labels for release R: name=dcgm-exporter, instance=R.
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "dcgm-exporter",
        "app.kubernetes.io/instance": release["name"],
    }
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [release["namespace"]]
    assert monitor["metadata"]["namespace"] == release["namespace"]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


def _csv_fields(text: str) -> list[str]:
    return [line.split(",")[0].strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dcgm_counters_are_real_fields_and_cover_what_dashboards_and_alerts_read(run):
    exported = _csv_fields(_values(run, "dcgm-exporter")["customMetrics"])
    assert exported == [c[0] for c in DCGM_COUNTERS]
    known = set(_csv_fields((require_upstream() / "charts/dcgm-exporter/default-counters.csv").read_text()))
    assert set(exported) <= known
    for kind in {c[1] for c in DCGM_COUNTERS}:
        assert kind in ("gauge", "counter")
    queries = [e for p in GPU_DASHBOARD.panels for e in p.exprs] + [a["expr"] for a in GPU_ALERTS]
    used = {m for q in queries for m in re.findall(r"DCGM_FI_[A-Z0-9_]+", q)}
    assert used <= set(exported), used - set(exported)
    need = {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP"}
    assert need | {"DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"} <= set(exported)


def test_gpu_alerts_are_shipped_as_a_prometheus_rule(run):
    (rule,) = [r for r in _crs(run, "PrometheusRule") if r["metadata"]["namespace"] == "dcgm-exporter"]
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert alerts == [a["alert"] for a in GPU_ALERTS]


# --- Karpenter -------------------------------------------------------------------------------


@pytest.mark.cloud("aws")
def test_karpenter_controller_identity_matches_the_release(run, stack_config):
    values = _values(run, "karpenter")
    release = _release(run, "karpenter").inputs
    (association,) = [
        r.inputs for r in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") if r.inputs["namespace"] == release["namespace"]
    ]
    assert association["serviceAccount"] == values["serviceAccount"]["name"]
    assert values["settings"]["clusterName"] == stack_config.cluster.name == association["clusterName"]
    (queue,) = [r.inputs for r in run.of_type("aws:sqs/queue:Queue")]
    assert values["settings"]["interruptionQueue"] == queue["name"]
    assert queue["sqsManagedSseEnabled"] is True
    policies = [r.inputs["policy"] for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if "-karpenter-controller-" in r.urn]
    assert len(policies) == 4
    if not run.preview:
        statements = [s for p in policies for s in json.loads(p)["Statement"]]
        sids = {s["Sid"] for s in statements}
        assert {"AllowScopedEC2InstanceActionsWithTags", "AllowPassingInstanceRole", "AllowInterruptionQueueActions"} <= sids
        (pass_role,) = [s for s in statements if s["Sid"] == "AllowPassingInstanceRole"]
        assert pass_role["Resource"] != "*"


@pytest.mark.cloud("aws")
def test_karpenter_interruption_rules_feed_the_queue(run):
    patterns = [json.loads(r.inputs["eventPattern"]) for r in run.of_type("aws:cloudwatch/eventRule:EventRule")] if not run.preview else []
    targets = run.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert len(run.of_type("aws:cloudwatch/eventRule:EventRule")) == len(targets) == 5
    if patterns:
        detail_types = {p["detail-type"][0] for p in patterns}
        assert {"EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation",
                "EC2 Instance State-change Notification", "AWS Health Event"} <= detail_types
    (queue_policy,) = run.of_type("aws:sqs/queuePolicy:QueuePolicy")
    if not run.preview:
        statements = json.loads(queue_policy.inputs["policy"])["Statement"]
        assert "events.amazonaws.com" in statements[0]["Principal"]["Service"]


@pytest.mark.cloud("aws")
def test_karpenter_nodes_have_their_own_role_and_access_entry(run):
    (entry,) = [r for r in run.of_type("aws:eks/accessEntry:AccessEntry") if r.inputs["type"] == "EC2_LINUX"]
    roles = {r.urn: r for r in run.of_type("aws:iam/role:Role")}
    (role_urn,) = [u for u in entry.dependencies if u in roles]
    managed_node_role = {d for r in run.of_type(NODE_GROUP) for d in r.dependencies if d in roles}
    assert managed_node_role and role_urn not in managed_node_role  # a principal can have only one access entry
    assert json.loads(roles[role_urn].inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    for node_class in _crs(run, "EC2NodeClass"):
        role_name = node_class["spec"]["role"]
        assert role_name == COMPUTED or role_name.startswith(roles[role_urn].name)


@pytest.mark.cloud("aws")
def test_discovery_tags_on_subnets_and_cluster_security_group(run, stack_config):
    name = stack_config.cluster.name
    private = [r.inputs for r in run.of_type("aws:ec2/subnet:Subnet") if "kubernetes.io/role/internal-elb" in r.inputs["tags"]]
    assert private and all(s["tags"]["karpenter.sh/discovery"] == name for s in private)
    tags = [r.inputs for r in run.of_type("aws:ec2/tag:Tag")]
    assert [t["key"] for t in tags] == ["karpenter.sh/discovery"] and tags[0]["value"] == name
    for node_class in _crs(run, "EC2NodeClass"):
        spec = node_class["spec"]
        assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": name}}]


def test_existing_vpc_subnets_are_tagged_by_tag_resources():
    values = dev_config_values()
    values[f"{NS}:cluster"]["network"] = {
        "vpcId": "vpc-0123456789abcdef0",
        "privateSubnets": [
            {"id": "subnet-0123456789abcdef0", "zone": "us-west-2a"},
            {"id": "subnet-0123456789abcdef1", "zone": "us-west-2b"},
        ],
    }
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    tags = run.of_type("aws:ec2/tag:Tag")
    tagged = {r.inputs.get("resourceId") for r in tags}  # the cluster security group's id is unknown in preview
    assert {"subnet-0123456789abcdef0", "subnet-0123456789abcdef1"} <= tagged and len(tags) == 3


@pytest.mark.cloud("aws")
def test_nodepools_spot_preferred_on_demand_fallback_and_never_consolidate_busy_nodes(run, stack_config):
    nodepools = {np["metadata"]["name"]: np["spec"] for np in _crs(run, "NodePool")}
    expected = {f"{p.name}-{c}" for p in stack_config.addons.karpenter.node_pools for c in p.capacity_types}
    assert set(nodepools) == expected and expected
    for pool in stack_config.addons.karpenter.node_pools:
        for capacity in pool.capacity_types:
            spec = nodepools[f"{pool.name}-{capacity}"]
            template = spec["template"]["spec"]
            taints = {(t["key"], t["value"], t["effect"]) for t in template["taints"]}
            assert (GPU_TAINT.key, GPU_TAINT.value, GPU_TAINT.effect) in taints
            assert ((SPOT_TAINT.key, SPOT_TAINT.value, SPOT_TAINT.effect) in taints) == (capacity == "spot")
            requirements = {r["key"]: r["values"] for r in template["requirements"]}
            assert requirements["karpenter.sh/capacity-type"] == [capacity]
            assert requirements["node.kubernetes.io/instance-type"] == pool.instance_types
            assert int(spec["limits"]["nvidia.com/gpu"]) == pool.max_gpus
            assert spec["disruption"]["consolidationPolicy"] == "WhenEmpty"
            assert template["expireAfter"] == pool.expire_after and template["terminationGracePeriod"]
            assert spec["template"]["metadata"]["labels"][LABEL_POOL] == pool.name
            assert template["nodeClassRef"]["name"] == pool.name
        if len(pool.capacity_types) == 2:
            assert nodepools[f"{pool.name}-spot"]["weight"] > nodepools[f"{pool.name}-on-demand"]["weight"]


@pytest.mark.cloud("aws")
def test_prod_has_on_demand_fallback_and_dev_is_spot_only(stack_config):
    capacities = {c for p in stack_config.addons.karpenter.node_pools for c in p.capacity_types}
    if stack_config.cluster.protect:  # prod
        assert capacities == {"spot", "on-demand"}
    else:
        assert capacities == {"spot"}


@pytest.mark.cloud("aws")
def test_ec2_node_class_root_volume_fits_vllm_images(run, stack_config):
    by_name = {p.name: p for p in stack_config.addons.karpenter.node_pools}
    for node_class in _crs(run, "EC2NodeClass"):
        (root,) = node_class["spec"]["blockDeviceMappings"]
        assert root["ebs"]["volumeSize"] == f"{by_name[node_class['metadata']['name']].disk_size_gib}Gi"
        assert root["ebs"]["encrypted"] is True
        assert node_class["spec"]["amiSelectorTerms"] == [{"alias": stack_config.addons.karpenter.ami_alias}]
        assert node_class["spec"]["metadataOptions"]["httpTokens"] == "required"


# --- KEDA, Prometheus, dashboards -------------------------------------------------------------


def test_ha_settings_follow_the_stack(run, stack_config):
    addons = stack_config.addons
    keda = _values(run, "keda")
    assert keda["operator"]["replicaCount"] == keda["metricsServer"]["replicaCount"] == addons.keda.replicas
    assert ("podDisruptionBudget" in keda) == (addons.keda.replicas > 1)
    if addons.karpenter.enabled:
        assert _values(run, "karpenter")["replicas"] == addons.karpenter.replicas
    spec = _values(run, "kube-prometheus-stack")["prometheus"]["prometheusSpec"]
    assert spec["replicas"] == addons.prometheus.replicas and spec["retention"] == addons.prometheus.retention
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == f"{addons.prometheus.storage_gib}Gi"
    assert claim["storageClassName"] == {"aws": "gp3", "gcp": "pd-balanced", "azure": "managed-csi-premium-zrs"}[stack_config.cloud]
    (block_class,) = [r.inputs for r in run.of_type("kubernetes:storage.k8s.io/v1:StorageClass") if r.inputs["metadata"]["name"] == claim["storageClassName"]]
    assert block_class["volumeBindingMode"] == "WaitForFirstConsumer"  # a block volume lives in one zone
    if stack_config.cluster.protect:  # prod is HA
        assert addons.keda.replicas >= 2 and addons.prometheus.replicas >= 2
        assert addons.karpenter.replicas >= 2 or not addons.karpenter.enabled


def test_prometheus_picks_up_monitors_and_rules_from_every_namespace(run):
    spec = _values(run, "kube-prometheus-stack")["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
    release = _release(run, "kube-prometheus-stack")
    block = spec["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"]
    (storage_class,) = [r for r in run.of_type("kubernetes:storage.k8s.io/v1:StorageClass") if r.inputs["metadata"]["name"] == block]
    assert storage_class.urn in release.dependencies


def test_managed_control_plane_components_are_not_scraped(run, stack_config):
    """EKS and GKE run the scheduler, controller-manager and etcd out of reach: scraping them (and
    their absent() alerts) would page forever. GKE's Dataplane V2 and AKS's Cilium dataplane have no kube-proxy either."""
    values = _values(run, "kube-prometheus-stack")
    for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd"):
        assert values[component] == {"enabled": False}, component
    assert values["kubeProxy"]["enabled"] is (stack_config.cloud == "aws")


def test_grafana_admin_password_is_generated_and_secret(run):
    grafana = _values(run, "kube-prometheus-stack")["grafana"]
    (secret,) = [r for r in run.of_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == grafana["admin"]["existingSecret"]]
    assert secret.inputs["stringData"] == "[secret]"
    assert secret.urn in _release(run, "kube-prometheus-stack").dependencies


def test_dashboards_are_provisioned_for_the_sidecar(run):
    grafana = _values(run, "kube-prometheus-stack")["grafana"]["sidecar"]["dashboards"]
    maps = [r.inputs for r in run.of_type("kubernetes:core/v1:ConfigMap") if DASHBOARD_LABEL in r.inputs["metadata"].get("labels", {})]
    assert len(maps) == len(DASHBOARDS)
    for cm in maps:
        assert cm["metadata"]["labels"][grafana["label"]] == grafana["labelValue"]
        (body,) = cm["data"].values()
        model = json.loads(body)
        assert model["panels"] and all(p["targets"] for p in model["panels"])


def test_vllm_dashboard_queries_only_metrics_vllm_publishes():
    published = set((require_upstream() / "vllm/vllm-metrics.txt").read_text().split())
    used = {m for p in VLLM_DASHBOARD.panels for e in p.exprs for m in re.findall(r"vllm:[a-z_:]+", e)}
    assert used and used <= published, used - published


# --- Shared weights (EFS) ---------------------------------------------------------------------


@pytest.mark.cloud("aws")
def test_efs_is_encrypted_reachable_from_nodes_only_in_every_zone(run, stack_config):
    (fs,) = [r.inputs for r in run.of_type("aws:efs/fileSystem:FileSystem")]
    assert fs["encrypted"] is True and fs["throughputMode"] == stack_config.addons.efs_csi.throughput_mode
    assert "lifecyclePolicies" not in fs
    mounts = run.of_type("aws:efs/mountTarget:MountTarget")
    assert len(mounts) == len(stack_config.cluster.network.zones)
    (sg,) = [r.inputs for r in run.of_type("aws:ec2/securityGroup:SecurityGroup") if r.name.endswith("-nfs")]
    (rule,) = sg["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (2049, 2049, "tcp")
    assert "cidrBlocks" not in rule and len(rule["securityGroups"]) == 1


@pytest.mark.cloud("aws")
def test_efs_storage_class_and_driver_reach_gpu_nodes(run):
    (sc,) = [r for r in run.of_type("kubernetes:storage.k8s.io/v1:StorageClass") if r.inputs["provisioner"] == "efs.csi.aws.com"]
    assert sc.inputs["parameters"]["provisioningMode"] == "efs-ap"
    assert sc.inputs["parameters"]["fileSystemId"]
    assert _release(run, "aws-efs-csi-driver").urn in sc.dependencies
    node = _values(run, "aws-efs-csi-driver")["node"]
    for taint in _gpu_taints(run):
        assert _tolerates(node["tolerations"], taint)
    values = _values(run, "aws-efs-csi-driver")
    (association,) = [
        r.inputs
        for r in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if r.inputs["namespace"] == _release(run, "aws-efs-csi-driver").inputs["namespace"]
    ]
    assert association["serviceAccount"] == values["controller"]["serviceAccount"]["name"]


def test_addons_can_be_switched_off():
    values = dev_config_values()
    values[f"{NS}:addons"] = {name: {"enabled": False} for name in ("gpuOperator", "dcgmExporter", "keda", "karpenter", "prometheus", "efsCsi")}
    del values[f"{NS}:models"]  # model services need KEDA, Prometheus and EFS
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    assert not run.of_type(HELM_RELEASE_TYPE)
    assert not [r for r in run.resources if r.type.startswith("llm-platform:addons:")]


def test_adapter_when_enabled_points_at_the_stack_prometheus():
    values = dev_config_values()
    values[f"{NS}:addons"]["prometheusAdapter"] = {"enabled": True}
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    adapter = _values(run, "prometheus-adapter")
    assert adapter["prometheus"]["url"] == "http://kube-prometheus-stack-prometheus.monitoring.svc"
    assert adapter["rules"]["default"] is False and "external" not in adapter["rules"]
    assert _release(run, "kube-prometheus-stack").urn in _release(run, "prometheus-adapter").dependencies


def test_render_prod_shows_releases_and_custom_resources(tmp_path):
    out = tmp_path / "render"
    proc = subprocess.run(
        [sys.executable, "-m", "stacks", "plan", "prod", "--render", str(out), "--quiet"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    files = {str(p.relative_to(out)) for p in out.rglob("*.yaml")}
    for release in ("gpu-operator/gpu-operator", "dcgm-exporter/dcgm-exporter", "keda/keda", "karpenter/karpenter",
                    "monitoring/kube-prometheus-stack", "aws-efs-csi-driver/aws-efs-csi-driver"):
        assert f"HelmRelease/{release}.yaml" in files
    assert {"NodePool/l40s-burst-spot.yaml", "NodePool/l40s-burst-on-demand.yaml", "EC2NodeClass/l40s-burst.yaml",
            "ServiceMonitor/dcgm-exporter/dcgm-exporter.yaml", "PrometheusRule/dcgm-exporter/gpu-health.yaml"} <= files
    karpenter = yaml.safe_load((out / "HelmRelease/karpenter/karpenter.yaml").read_text())
    assert karpenter["chart"] == "oci://public.ecr.aws/karpenter/karpenter" and karpenter["version"] == "1.14.1"
    assert karpenter["values"]["settings"]["clusterName"] == "llm-prod"
