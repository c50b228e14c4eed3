"""The preview's check that the system pool holds everything we put on it (issue 18: the pickers
and the gateway must fit beside the controllers)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from upstream import require_upstream

from conftest import STACKS, load_stack_file, program_run, stack_from
from components.catalog.system_pool import Requests, allocatable, chart_request_sources, chart_requests, cpu_millis, memory_mib, node_shape
from components.config.stack import ConfigError
from stacks.offline import run_program
from stacks.system_pool import nodes_needed, Demand, system_pool_demand, system_pool_findings, system_pool_fit


def _values(stack: str) -> dict[str, Any]:
    return copy.deepcopy(load_stack_file(stack).values)


def _gke_routing(picker: dict[str, Any]) -> dict[str, Any]:
    values = _values("dev-gke")
    values["llm-platform:gcp"]["network"]["proxyOnlyCidr"] = "10.79.0.0/23"
    values["llm-platform:routing"] = {"enabled": True, "endpointPicker": picker}
    return values


def _refused(values: dict[str, Any], stack: str) -> list[tuple[str, str]]:
    run = run_program(stack_from(values, stack), preview=True)
    assert isinstance(run.error, ConfigError), run.error
    assert [r.type for r in run.resources] == ["pulumi:pulumi:Stack"]  # refused before anything is registered
    return run.error.problems


@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_system_pool_holds_its_pods_from_the_start(stack):
    cfg = load_stack_file(stack).validate()
    assert system_pool_findings(cfg) == ([], [])
    fit = system_pool_fit(cfg)
    assert fit is not None and 1 <= fit.nodes_needed <= cfg.system_pool.desired


def test_chart_defaults_in_the_data_are_the_pinned_charts():
    for component, source in chart_request_sources().items():
        values = yaml.safe_load((require_upstream() / "charts" / source["chart"] / "values.yaml").read_text())
        for key in source["path"].split("."):
            values = values[key]
        assert chart_requests(component) == Requests.of(values["cpu"], values["memory"]), component


def test_allocatable_follows_each_clouds_published_rule():
    # GKE's worked example: 4 vCPU / 16 GiB keeps 80m and 2.6 GiB (+100 MiB eviction)
    gke = allocatable("gcp", node_shape("e2-standard-4"))
    assert gke.cpu_millis == 3920 and gke.memory_mib == int(16384 - 2.6 * 1024 - 100)
    # EKS: 11 MiB per pod of the ENI limit + 255 MiB
    assert allocatable("aws", node_shape("m7i.large")).memory_mib == 8192 - (11 * 29 + 255) - 100
    # AKS: min(20 MiB x 250 pods + 50, 25 %): the cap on a 16 GiB node
    assert allocatable("azure", node_shape("Standard_D4s_v5")) == Requests(4000 - 140, 16384 - 4096 - 100)
    assert (cpu_millis("1"), cpu_millis("250m"), memory_mib("2Gi"), memory_mib("1000Mi")) == (1000, 250, 2048, 1000)


def test_what_the_check_counts_is_what_the_program_deploys():
    cfg = load_stack_file("prod").validate()
    demand = {d.what: d for d in system_pool_demand(cfg)}
    run = program_run("prod", "preview")
    releases = {r.inputs["name"]: r.inputs["values"] for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    epp = releases["qwen3-8b-pool"]["router"]["epp"]
    pickers = demand["endpoint pickers (2 models)"]
    assert pickers.each == Requests.of(**epp["resources"]["requests"]) and pickers.replicas == 2 * epp["replicas"]
    istiod = releases["istiod"]
    assert demand["istiod"].each == Requests.of(**istiod["resources"]["requests"]) and demand["istiod"].replicas == istiod["replicaCount"]
    karpenter = releases["karpenter"]["controller"]["resources"]["requests"]
    assert demand["Karpenter"].each == Requests.of(**karpenter) and demand["Karpenter"].replicas == releases["karpenter"]["replicas"]
    prometheus = releases["kube-prometheus-stack"]["prometheus"]["prometheusSpec"]
    assert demand["Prometheus"].each == Requests.of(**prometheus["resources"]["requests"]) and demand["Prometheus"].replicas == prometheus["replicas"]
    (not_found,) = [r.inputs for r in run.of_type("kubernetes:apps/v1:Deployment") if r.inputs["metadata"]["name"] == "model-not-found"]
    container = not_found["spec"]["template"]["spec"]["containers"][0]
    assert demand["model-not-found"].each == Requests.of(**container["resources"]["requests"])
    assert demand["model-not-found"].replicas == not_found["spec"]["replicas"]


def test_pods_are_packed_whole():
    room = Requests(1000, 4096)
    assert nodes_needed([Demand("a", 3, Requests(600, 100))], room) == 3  # two never share a node
    assert nodes_needed([Demand("a", 2, Requests(500, 100))], room) == 1
    assert nodes_needed([Demand("a", 1, Requests(1001, 100))], room) > 1000  # fits no node


def test_pickers_sized_past_an_eks_pool_are_refused_at_its_size():
    values = _values("dev")
    values["llm-platform:routing"] = {"enabled": True, "endpointPicker": {"cpu": "1500m"}}
    (problem,) = _refused(values, "dev")
    key, message = problem
    # the dev pool (2 x m7i.large) could grow to 3, but nothing grows an EKS system node group
    assert key == "llm-platform:systemPool.minSize" and "Pending" in message and "EKS" in message and "endpoint pickers" in message


def test_more_than_the_largest_pool_holds_is_refused_at_max_size():
    values = _gke_routing({"replicas": 5, "cpu": "3"})
    (problem,) = _refused(values, "dev-gke")
    assert problem[0] == "llm-platform:systemPool.maxSize" and "cannot hold" in problem[1]


def test_a_pod_larger_than_any_node_names_the_instance_type():
    values = _gke_routing({"cpu": "8"})
    (problem,) = _refused(values, "dev-gke")
    assert problem[0] == "llm-platform:systemPool.instanceTypes" and "endpoint pickers" in problem[1] and "e2-standard-4" in problem[1]


def test_an_autoscaled_pool_that_must_grow_is_a_warning():
    values = _gke_routing({"replicas": 2, "cpu": "1500m"})
    cfg = stack_from(values, "dev-gke").validate()
    problems, warnings = system_pool_findings(cfg)
    assert problems == []
    ((key, message),) = warnings
    assert key == ("systemPool", "minSize") and "autoscaler" in message
    run = run_program(stack_from(values, "dev-gke"), preview=True)
    assert run.error is None, run.error  # the preview goes on


def test_an_unknown_instance_type_is_a_warning_not_a_guess():
    cfg = load_stack_file("dev").validate()
    pool = cfg.system_pool.model_copy(update={"instance_types": ["m8i.large"]})
    problems, warnings = system_pool_findings(cfg.model_copy(update={"system_pool": pool}))
    assert problems == [] and warnings[0][0] == ("systemPool", "instanceTypes")
