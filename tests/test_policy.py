"""The policy pack: every rule has a case it passes and one it fails, every shipped stack passes
every mandatory rule, and the pack's wiring hands the engine's arguments to the same functions."""

from __future__ import annotations

import copy
import json
import runpy
import subprocess
import sys
from types import SimpleNamespace

import pulumi_policy
import pytest
from conftest import PROJECT_DIR, STACKS, program_run

from components import scheduling
from components.serving.pod import GPU_RESOURCE as SERVING_GPU_RESOURCE
from policy import rules
from policy.rules import RULES, Resource, check
from stacks.plan import plan_document
from stacks.policy_cli import check_plan, plan_resources

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _plan(stack: str) -> dict:
    return json.loads(json.dumps(plan_document(program_run(stack, "preview"))))


def _model_deployment(stack: str = "prod") -> Resource:
    (resource,) = [r for r in plan_resources(_plan(stack)) if r.type == DEPLOYMENT and r.name.endswith("qwen3-8b-deployment")]
    return resource


def _with(resource: Resource, mutate) -> Resource:
    props = copy.deepcopy(dict(resource.props))
    mutate(props)
    return Resource(resource.type, props, resource.urn, resource.name)


def _container(props: dict) -> dict:
    return props["spec"]["template"]["spec"]["containers"][0]


def test_constants_are_the_platforms():
    assert rules.GPU_TAINT == (scheduling.GPU_TAINT.key, scheduling.GPU_TAINT.value, scheduling.GPU_TAINT.effect)
    assert rules.NODE_ROLE_LABEL == scheduling.LABEL_NODE_ROLE and rules.CAPACITY_LABEL == scheduling.LABEL_CAPACITY_TYPE
    assert rules.GPU_RESOURCE == SERVING_GPU_RESOURCE


@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_passes_every_mandatory_rule(stack):
    violations = check_plan(_plan(stack))
    assert [v for v in violations if v.level == "mandatory"] == []
    assert {v.rule for v in violations} <= {"vllm-image-pinned-by-digest"}  # advisory: images are tags today


def test_helm_chart_must_be_pinned():
    release = next(r for r in plan_resources(_plan("dev")) if r.type == rules.HELM_RELEASE)
    assert rules.helm_chart_pinned(release) == []
    assert rules.helm_chart_pinned(_with(release, lambda p: p.pop("version")))


def test_gpu_pods_tolerate_the_taint_and_request_whole_gpus():
    deployment = _model_deployment()
    assert rules.gpu_workload_scheduling(deployment) == []
    untolerated = _with(deployment, lambda p: p["spec"]["template"]["spec"].update(tolerations=[]))
    assert "does not tolerate" in rules.gpu_workload_scheduling(untolerated)[0]
    fraction = _with(deployment, lambda p: _container(p)["resources"]["limits"].update({"nvidia.com/gpu": 0.5}))
    assert "not a whole number" in " ".join(rules.gpu_workload_scheduling(fraction))
    unequal = _with(deployment, lambda p: _container(p)["resources"]["requests"].update({"nvidia.com/gpu": 2}))
    assert "differs from its limit" in " ".join(rules.gpu_workload_scheduling(unequal))


def test_tensor_parallel_size_equals_the_gpu_limit():
    (tp4,) = [r for r in plan_resources(_plan("prod")) if r.type == DEPLOYMENT and r.name.endswith("qwen3-32b-deployment")]
    assert rules.tensor_parallel_matches_gpus(tp4) == []
    wrong = _with(tp4, lambda p: _container(p)["resources"]["limits"].update({"nvidia.com/gpu": 2}))
    assert "--tensor-parallel-size 4 but 2 GPUs" in rules.tensor_parallel_matches_gpus(wrong)[0]


def test_startup_probe_covers_loading():
    deployment = _model_deployment()
    assert rules.startup_probe_covers_load(deployment) == []
    assert "no startupProbe" in rules.startup_probe_covers_load(_with(deployment, lambda p: _container(p).pop("startupProbe")))[0]
    short = _with(deployment, lambda p: _container(p)["startupProbe"].update(failureThreshold=3, periodSeconds=10))
    assert "30 s to load" in rules.startup_probe_covers_load(short)[0]


def test_the_server_rules_skip_a_placeholder_running_the_vllm_image_but_not_a_server():
    (placeholder,) = [r for r in plan_resources(_plan("prod")) if r.type == DEPLOYMENT and r.name.endswith("qwen3-8b-headroom")]
    for rule in (rules.startup_probe_covers_load, rules.tensor_parallel_matches_gpus, rules.grace_covers_pre_stop_and_drain):
        assert rule(placeholder) == []
    # the same image serving (its own entrypoint, no command) is a server again
    served = _with(placeholder, lambda p: _container(p).pop("command"))
    assert "no startupProbe" in rules.startup_probe_covers_load(served)[0]


def test_grace_period_covers_pre_stop_and_drain():
    deployment = _model_deployment()
    assert rules.grace_covers_pre_stop_and_drain(deployment) == []
    short = _with(deployment, lambda p: p["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=10))
    assert "in-flight requests are killed" in rules.grace_covers_pre_stop_and_drain(short)[0]


def test_public_endpoints_need_the_allow_label():
    service = next(r for r in plan_resources(_plan("dev")) if r.type == "kubernetes:core/v1:Service")
    assert rules.no_public_endpoint_without_allow_label(service) == []
    public = _with(service, lambda p: p["spec"].update(type="LoadBalancer"))
    assert rules.no_public_endpoint_without_allow_label(public)
    allowed = _with(public, lambda p: p["metadata"].setdefault("labels", {}).update({rules.PUBLIC_ALLOW_LABEL: "true"}))
    assert rules.no_public_endpoint_without_allow_label(allowed) == []
    ingress = Resource("kubernetes:networking.k8s.io/v1:Ingress", {"metadata": {"annotations": {"alb.ingress.kubernetes.io/scheme": "internet-facing"}}}, "urn:i", "i")
    assert rules.no_public_endpoint_without_allow_label(ingress)
    gateway = next(r for r in plan_resources(_plan("prod-gke")) if r.type == "kubernetes:gateway.networking.k8s.io/v1:Gateway")
    assert rules.no_public_endpoint_without_allow_label(gateway) == []  # internal: gke-l7-rilb
    external = _with(gateway, lambda p: p["spec"].update(gatewayClassName="gke-l7-regional-external-managed"))
    assert "internet-facing Gateway" in rules.no_public_endpoint_without_allow_label(external)[0]
    stated = _with(external, lambda p: p["metadata"]["labels"].update({rules.PUBLIC_ALLOW_LABEL: "true"}))
    assert rules.no_public_endpoint_without_allow_label(stated) == []


def test_no_plaintext_credentials_in_env_or_helm_values():
    deployment = _model_deployment()
    assert rules.no_plaintext_credentials(deployment) == []
    leaked = _with(deployment, lambda p: _container(p).setdefault("env", []).append({"name": "HF_TOKEN", "value": "hf_abc"}))
    assert "HF_TOKEN is a credential in plain text" in rules.no_plaintext_credentials(leaked)[0]
    monitoring = next(r for r in plan_resources(_plan("dev")) if r.type == rules.HELM_RELEASE and r.props["name"] == "kube-prometheus-stack")
    assert rules.no_plaintext_credentials(monitoring) == []  # existingSecret names a Secret: not a credential
    helm = _with(monitoring, lambda p: p["values"]["grafana"].update(adminPassword="prom-operator"))
    assert "grafana.adminPassword" in rules.no_plaintext_credentials(helm)[0]


@pytest.mark.parametrize("stack, token", [("dev", "aws:eks/nodeGroup:NodeGroup"), ("dev-gke", "gcp:container/nodePool:NodePool"),
                                          ("dev-aks", "azure-native:containerservice:AgentPool"), ("dev", "kubernetes:karpenter.sh/v1:NodePool")])
def test_gpu_node_pools_are_tainted_on_every_cloud(stack, token):
    pools = [r for r in plan_resources(_plan(stack)) if r.type == token]
    gpu = [r for r in pools if rules.gpu_node_pools_tainted(r) == [] and rules._gpu_pools([r])]
    assert gpu, token

    def untaint(props):
        for path in (("taints",), ("nodeConfig", "taints"), ("nodeTaints",), ("spec", "template", "spec", "taints")):
            holder = props
            for key in path[:-1]:
                holder = holder.get(key, {})
            if path[-1] in holder:
                holder[path[-1]] = []

    assert rules.gpu_node_pools_tainted(_with(gpu[0], untaint))


def test_model_deployments_need_a_disruption_budget():
    resources = plan_resources(_plan("prod"))
    assert rules.model_deployments_have_disruption_budgets(resources, {}) == []
    without = [r for r in resources if not r.name.endswith("qwen3-8b-pdb")]
    (problem,) = rules.model_deployments_have_disruption_budgets(without, {})
    assert "qwen3-8b-deployment" in problem


def test_prod_keeps_on_demand_capacity_and_two_replicas_and_sees_the_whole_stack():
    resources = plan_resources(_plan("prod"))
    assert rules.prod_keeps_on_demand_and_two_replicas(resources, {}) == []
    all_spot = [
        _with(r, lambda p: p.update(capacityType="SPOT")) if r.type == "aws:eks/nodeGroup:NodeGroup" else
        _with(r, lambda p: p["spec"]["template"]["metadata"]["labels"].update({rules.CAPACITY_LABEL: "spot"})) if r.type == "kubernetes:karpenter.sh/v1:NodePool" else r
        for r in resources
    ]
    assert "every GPU pool is spot" in rules.prod_keeps_on_demand_and_two_replicas(all_spot, {})[0]
    one = [_with(r, lambda p: p["spec"].update(minReplicaCount=1)) if r.type == "kubernetes:keda.sh/v1alpha1:ScaledObject" else r for r in resources]
    assert any("minReplicaCount 1" in m for m in rules.prod_keeps_on_demand_and_two_replicas(one, {}))
    dev = plan_resources(_plan("dev"))  # dev scales to zero: not prod
    assert rules.prod_keeps_on_demand_and_two_replicas(dev, {}) == []
    assert rules.prod_keeps_on_demand_and_two_replicas(dev, {"prodStacks": ["dev"]})  # unless configured so


def test_gpu_budget_is_advisory_and_configured():
    resources = plan_resources(_plan("prod"))
    assert rules.gpus_within_budget(resources, {}) == []
    assert "over the budget of 10" in rules.gpus_within_budget(resources, {"maxGpus": 10})[0]
    (rule,) = [r for r in RULES if r.name == "gpus-within-budget"]
    assert rule.level == "advisory"
    violations = check(resources, {"gpus-within-budget": {"maxGpus": 10}})
    assert [v.level for v in violations if v.rule == "gpus-within-budget"] == ["advisory"]


def test_the_pack_hands_the_engines_arguments_to_the_rules(monkeypatch):
    """`policy/__main__.py` with a stand-in PolicyPack (the real one starts a server): one policy
    per rule at its level, and a resource policy reports what its rule finds."""
    built = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: built.update(kwargs))
    monkeypatch.syspath_prepend(str(PROJECT_DIR / "policy"))
    runpy.run_path(str(PROJECT_DIR / "policy" / "__main__.py"), run_name="__main__")
    policies = {p.name: p for p in built["policies"]}
    assert set(policies) == {r.name for r in RULES}
    for rule in RULES:
        expected = pulumi_policy.EnforcementLevel.MANDATORY if rule.level == "mandatory" else pulumi_policy.EnforcementLevel.ADVISORY
        assert policies[rule.name].enforcement_level == expected
    release = next(r for r in plan_resources(_plan("dev")) if r.type == rules.HELM_RELEASE)
    reported: list[str] = []
    args = SimpleNamespace(resource_type=release.type, props={**release.props, "version": ""}, urn=release.urn, name=release.name)
    policies["helm-chart-version-pinned"].validate(args, lambda message, urn=None: reported.append(message))
    assert reported and "pins no chart version" in reported[0]


def test_cli_exits_1_on_a_mandatory_violation(tmp_path):
    plan = _plan("dev")
    for resource in plan["resources"]:
        if resource["type"] == rules.HELM_RELEASE:
            resource["inputs"].pop("version")
    (tmp_path / "dev.json").write_text(json.dumps(plan))
    result = subprocess.run([sys.executable, "-m", "stacks", "policy", str(tmp_path)], cwd=PROJECT_DIR, capture_output=True, text=True)
    assert result.returncode == 1 and "mandatory: helm-chart-version-pinned" in result.stdout
    assert "Traceback" not in result.stderr
