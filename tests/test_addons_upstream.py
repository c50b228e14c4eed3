"""What the add-on layer emits, checked against the pinned upstream charts and CRDs, and its ordering."""

from __future__ import annotations

import pytest
from conftest import STACKS, program_run
from upstream import crd_index, crd_validation_errors, helm_value_problems, upstream_chart_version

from components.releases import ALL_CHARTS, GPU_OPERATOR, ROUTING_CHARTS
from stacks.plan import HELM_RELEASE_TYPE

CHARTS_BY_REF = {c.chart: c for c in (*ALL_CHARTS, *ROUTING_CHARTS)}
# Which release installs the CRDs of each API group we create objects of.
CRD_OWNER_CHART = {
    "karpenter.sh": "oci://public.ecr.aws/karpenter/karpenter",
    "karpenter.k8s.aws": "oci://public.ecr.aws/karpenter/karpenter",
    "monitoring.coreos.com": "kube-prometheus-stack",
    "keda.sh": "keda",
    "nvidia.com": "gpu-operator",
}


def _releases(run):
    return run.of_type(HELM_RELEASE_TYPE)


def _custom_resources(run):
    """Objects of an API group some add-on's CRDs define (type token kubernetes:<group>/<version>:<Kind>)."""
    return [r for r in run.resources if r.custom and r.type.startswith("kubernetes:") and r.type.split(":")[1].rsplit("/", 1)[0] in CRD_OWNER_CHART]


def test_every_helm_value_we_set_exists_in_the_pinned_chart(run):
    problems = []
    for release in _releases(run):
        chart = CHARTS_BY_REF[release.inputs["chart"]]
        problems += helm_value_problems(chart.upstream, release.inputs["values"])
    assert not problems, "\n".join(problems)


def test_value_check_catches_a_misspelt_key():
    """The checker itself: a typo, a wrong shape and an unknown subchart key are all reported."""
    assert helm_value_problems("keda", {"operator": {"replicaCont": 2}})
    assert helm_value_problems("kube-prometheus-stack", {"prometheus": {"prometheusSpec": {"retention": {"days": 2}}}})
    assert helm_value_problems("gpu-operator", {"node-feature-discovery": {"wroker": {"tolerations": []}}})
    assert not helm_value_problems("gpu-operator", {"node-feature-discovery": {"worker": {"tolerations": []}}})
    assert not helm_value_problems("keda", {"podDisruptionBudget": {"operator": {"minAvailable": 1}}})


def test_releases_are_pinned_named_atomic_and_in_their_own_namespace(run):
    namespaces = {r.inputs["metadata"]["name"] for r in run.of_type("kubernetes:core/v1:Namespace")}
    releases = _releases(run)
    assert len({r.inputs["name"] for r in releases}) == len(releases)
    for release in releases:
        inputs = release.inputs
        chart = CHARTS_BY_REF[inputs["chart"]]
        assert inputs["version"] == chart.version
        # in-tree Chart.yaml versions differ from the packaged ones: GPU Operator (v1.0.0-devel), and the
        # routing charts (0.0.0 / 0.1.0; published as v0.10.0 / v1.5.0, SOURCES.md)
        if chart is not GPU_OPERATOR and chart not in ROUTING_CHARTS:
            assert inputs["version"] == upstream_chart_version(chart.upstream)
        assert inputs["name"] and inputs["atomic"] is True and inputs["cleanupOnFail"] is True
        assert inputs["timeout"] >= 600
        assert inputs["namespace"] in namespaces and inputs["namespace"] != "default"
        assert inputs["createNamespace"] is False
        if inputs["chart"].startswith("oci://"):
            assert "repositoryOpts" not in inputs
        else:
            assert inputs["repositoryOpts"]["repo"].startswith("https://")
    operator = [r for r in releases if r.inputs["chart"] == GPU_OPERATOR.chart]
    assert all(r.inputs["timeout"] >= 1200 for r in operator)  # its operands roll out node by node


@pytest.mark.parametrize("stack", STACKS)
def test_preview_registers_every_release_of_update(stack):
    """In a PR preview outputs are unknown (cluster endpoint, queue name): no release may go missing."""
    names = {mode: sorted(r.inputs["name"] for r in _releases(program_run(stack, mode))) for mode in ("preview", "update")}
    assert names["preview"] == names["update"]
    assert len(names["preview"]) >= 3  # GKE: KEDA, kube-prometheus-stack, DCGM; EKS adds GPU Operator, Karpenter, EFS CSI


def test_every_custom_resource_validates_against_its_pinned_crd_closed(run):
    resources = _custom_resources(run)
    assert resources
    errors = []
    for res in resources:
        errors += crd_validation_errors(res.inputs)
    assert not errors, "\n".join(errors)


def test_crd_check_catches_unknown_and_misspelt_fields():
    nodepool = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "x"},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "x"},
                    "requirements": [],
                    "expireAfter": "720h",
                }
            },
            "limits": {"nvidia.com/gpu": 4},
        },
    }
    assert not crd_validation_errors(nodepool)  # int-or-string limits accept an integer
    nodepool["spec"]["disruption"] = {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "1m", "budget": []}
    assert any("budget" in e for e in crd_validation_errors(nodepool))
    nodepool["spec"]["disruption"] = {"consolidationPolicy": "WhenIdle", "consolidateAfter": "1m"}
    assert any("WhenIdle" in e for e in crd_validation_errors(nodepool))
    assert crd_validation_errors({"apiVersion": "karpenter.sh/v9", "kind": "NodePool", "metadata": {"name": "x"}})
    assert len(crd_index()) >= 10


def test_no_custom_resource_without_a_dependency_on_the_release_of_its_crd(run):
    releases_by_chart = {r.inputs["chart"]: r.urn for r in _releases(run)}
    for res in _custom_resources(run):
        group = res.inputs["apiVersion"].rsplit("/", 1)[0]
        owner = releases_by_chart.get(CRD_OWNER_CHART[group])
        assert owner, f"{res.urn}: the release bringing {group} is not installed"
        assert owner in res.dependencies, f"{res.urn} does not depend on {owner}"
