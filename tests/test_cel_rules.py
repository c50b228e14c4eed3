"""The pinned CRDs' CEL rules (`x-kubernetes-validations`), evaluated with a CEL library on every
custom resource of every stack, on create and on a re-apply; one broken object per rule of the CRDs
we create objects of; and a property test that any config the validators accept makes Karpenter
objects those rules accept."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from cel_rules import KUBERNETES_FUNCTIONS, cel_results, cel_violations, every_rule
from conftest import dev_config_values, load_stack_file, program_run, stack_from
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.clusters.aws.karpenter import ec2_node_class_spec, karpenter_placements, nodepool_name, nodepool_spec
from components.config.stack import ConfigError, parse_stack_config
from stacks.offline import run_program

OUR_KINDS = ("karpenter.sh/v1 NodePool", "karpenter.k8s.aws/v1 EC2NodeClass", "keda.sh/v1alpha1 ScaledObject")
Mutation = Callable[[dict[str, Any]], Any]


def _crd_objects(run) -> list[dict[str, Any]]:
    groups = (
        "karpenter.sh/", "karpenter.k8s.aws/", "keda.sh/", "monitoring.coreos.com/", "nvidia.com/",
        "gateway.networking.k8s.io/", "inference.networking.k8s.io/", "llm-d.ai/",
    )
    return [r.inputs for r in run.resources if r.custom and r.inputs.get("apiVersion", "").startswith(groups)]


def test_every_custom_resource_passes_its_crd_cel_rules_on_create_and_re_apply(run):
    objects = _crd_objects(run)
    evaluated = {o["kind"]: 0 for o in objects}
    problems = []
    for obj in objects:
        problems += cel_violations(obj) + cel_violations(obj, old=obj)
        results = cel_results(obj, old=obj)
        assert not [r for r in results if r.outcome == "unsupported"], obj["kind"]
        evaluated[obj["kind"]] += sum(r.outcome == "pass" for r in results)
    assert not problems, "\n".join(problems)
    assert evaluated["ScaledObject"] >= 1
    if "NodePool" in evaluated:  # EKS: Karpenter's CRDs carry most of the rules
        assert evaluated["NodePool"] >= 20 and evaluated["EC2NodeClass"] >= 30
    if "Gateway" in evaluated:  # routing: the Gateway API's rules on listeners, routes and filters
        assert evaluated["Gateway"] >= 5 and evaluated["HTTPRoute"] >= 5


def test_a_routed_model_with_a_priority_passes_the_routing_cel_rules():
    values = copy.deepcopy(load_stack_file("prod").values)
    values["llm-platform:models"][0]["priority"] = 10
    values["llm-platform:routing"].update({"tlsSecret": "gateway-tls", "hostname": "llm.example.com", "external": True})
    run = run_program(stack_from(values, "prod"), preview=True)
    assert run.error is None, run.error
    objects = _crd_objects(run)
    assert {"Gateway", "HTTPRoute", "InferenceObjective"} <= {o["kind"] for o in objects}
    problems = [p for obj in objects for p in cel_violations(obj) + cel_violations(obj, old=obj)]
    assert not problems, "\n".join(problems)


# The rules no evaluation here covers: each is a transition rule, which compares an update with the
# object stored in the cluster, so it is checked by hand against what a later `pulumi up` could send.
TRANSITION_RULES = {
    ("karpenter.sh/v1 NodePool", "spec", "has(self.replicas) == has(oldSelf.replicas)"),
    ("karpenter.sh/v1 NodePool", "spec.template.spec.nodeClassRef", "self.group == oldSelf.group"),
    ("karpenter.sh/v1 NodePool", "spec.template.spec.nodeClassRef", "self.kind == oldSelf.kind"),
    ("karpenter.sh/v1 NodeClaim", "spec", "self == oldSelf"),
    ("nvidia.com/v1alpha1 NVIDIADriver", "spec.driverType", "self == oldSelf"),
    ("nvidia.com/v1alpha1 NVIDIADriver", "spec.usePrecompiled", "self == oldSelf"),
    ("gateway.networking.k8s.io/v1 GatewayClass", "spec.controllerName", "self == oldSelf"),
    ("gateway.networking.k8s.io/v1beta1 GatewayClass", "spec.controllerName", "self == oldSelf"),
}
_CEL_BUILTINS = {
    "has",
    "size",
    "matches",
    "startsWith",
    "endsWith",
    "contains",
    "exists",
    "exists_one",
    "all",
    "filter",
    "map",
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "duration",
    "timestamp",
    "type",
    "dyn",
}


def test_every_pinned_cel_rule_is_evaluable_here_or_listed_as_checked_by_hand():
    """Rules calling a function neither standard CEL nor KUBERNETES_FUNCTIONS provide would be
    `unsupported`; none of the pinned CRDs has one. Transition rules are the hand-checked list."""
    rules = list(every_rule())
    assert len(rules) > 100
    called = {name for _, _, rule in rules for name in re.findall(r"\b([A-Za-z_]\w*)\(", rule)}
    assert called <= _CEL_BUILTINS | set(KUBERNETES_FUNCTIONS), called - _CEL_BUILTINS - set(KUBERNETES_FUNCTIONS)
    transition = {(kind, path, rule) for kind, path, rule in rules if re.search(r"\boldSelf\b", rule)}
    assert transition == TRANSITION_RULES


def test_what_a_later_update_sends_keeps_the_transition_rules(run):
    """By hand: our NodePools never set `replicas`, and their nodeClassRef group and kind are the
    same in every stack, so no `pulumi up` changes what the stored object has."""
    for obj in (o for o in _crd_objects(run) if o["kind"] == "NodePool"):
        assert "replicas" not in obj["spec"]
        ref = obj["spec"]["template"]["spec"]["nodeClassRef"]
        assert (ref["group"], ref["kind"]) == ("karpenter.k8s.aws", "EC2NodeClass")


# --- One broken object per rule -------------------------------------------------------------------


def _spec(obj):
    return obj["spec"]


def _kubelet(obj, **values):
    obj["spec"]["kubelet"] = values


def _template(obj):
    return obj["spec"]["template"]


def _requirement(obj, **requirement):
    obj["spec"]["template"]["spec"]["requirements"].append(requirement)


def _nic(**values):
    return {"deviceIndex": 0, "networkCardIndex": 0, "interfaceType": "interface"} | values


def _ami(obj, alias, family=None):
    obj["spec"]["amiSelectorTerms"] = [{"alias": alias}]
    if family:
        obj["spec"]["amiFamily"] = family


# (kind, a substring that names the rule uniquely, the mutation that breaks it, the old object for a transition rule)
CEL_CASES: list[tuple[str, str, Mutation, Mutation | None]] = [
    ("EC2NodeClass", "(has(self.role) && !has(self.instanceProfile))", lambda o: _spec(o).update(instanceProfile="p"), None),
    *[
        (
            "EC2NodeClass",
            f"x.alias.find('^[^@]+') == '{alias}')",
            lambda o, a=alias: _ami(o, f"{a}@latest", "AL2" if a != "al2" else "AL2023"),
            None,
        )
        for alias in ("al2", "al2023", "bottlerocket", "windows2019", "windows2022", "windows2025")
    ],
    (
        "EC2NodeClass",
        "self.amiSelectorTerms.exists(x, has(x.alias)) ? true : has(self.amiFamily)",
        lambda o: _spec(o).update(amiSelectorTerms=[{"id": "ami-0123456789abcdef0"}]),
        None,
    ),
    (
        "EC2NodeClass",
        "has(x.tags) || has(x.id) || has(x.name) || has(x.alias) || has(x.ssmParameter)",
        lambda o: _spec(o).update(amiSelectorTerms=[{"owner": "amazon"}], amiFamily="AL2023"),
        None,
    ),
    (
        "EC2NodeClass",
        "!self.exists(x, has(x.id) && (has(x.alias)",
        lambda o: _spec(o).update(amiSelectorTerms=[{"id": "ami-0123456789abcdef0", "name": "x"}], amiFamily="AL2023"),
        None,
    ),
    (
        "EC2NodeClass",
        "!self.exists(x, has(x.alias) && (has(x.id)",
        lambda o: _spec(o).update(amiSelectorTerms=[{"alias": "al2023@latest", "name": "x"}]),
        None,
    ),
    (
        "EC2NodeClass",
        "!(self.exists(x, has(x.alias)) && self.size() != 1)",
        lambda o: _spec(o)["amiSelectorTerms"].append({"id": "ami-0123456789abcdef0"}),
        None,
    ),
    ("EC2NodeClass", "self.matches('^[a-zA-Z0-9]+@.+$')", lambda o: _ami(o, "al2023"), None),
    ("EC2NodeClass", "self.split('@')[0] in ['al2','al2023','bottlerocket'", lambda o: _ami(o, "ubuntu@latest"), None),
    ("EC2NodeClass", "self.split('@')[1] == 'latest'", lambda o: _ami(o, "windows2022@v20250101"), None),
    (
        "EC2NodeClass",
        "spec.amiSelectorTerms[].tags::",
        lambda o: _spec(o).update(amiSelectorTerms=[{"tags": {"team": ""}}], amiFamily="AL2023"),
        None,
    ),
    (
        "EC2NodeClass",
        "x.rootVolume==true:false).size() <= 1",
        lambda o: _spec(o)["blockDeviceMappings"].append(
            copy.deepcopy(_spec(o)["blockDeviceMappings"][0]) | {"deviceName": "/dev/xvdb"}
        ),
        None,
    ),
    (
        "EC2NodeClass",
        "has(self.snapshotID) || has(self.volumeSize)",
        lambda o: _spec(o)["blockDeviceMappings"][0]["ebs"].pop("volumeSize"),
        None,
    ),
    (
        "EC2NodeClass",
        "!has(self.volumeInitializationRate)",
        lambda o: _spec(o)["blockDeviceMappings"][0]["ebs"].update(volumeInitializationRate=200),
        None,
    ),
    (
        "EC2NodeClass",
        "self.all(x, has(x.tags) || has(x.id) || has(x.instanceMatchCriteria))",
        lambda o: _spec(o).update(capacityReservationSelectorTerms=[{"ownerID": "012345678901"}]),
        None,
    ),
    (
        "EC2NodeClass",
        "!self.all(x, has(x.id) && (has(x.tags) || has(x.ownerID)",
        lambda o: _spec(o).update(capacityReservationSelectorTerms=[{"id": "cr-0123456789abcdef0", "ownerID": "012345678901"}]),
        None,
    ),
    (
        "EC2NodeClass",
        "spec.capacityReservationSelectorTerms[].tags::",
        lambda o: _spec(o).update(capacityReservationSelectorTerms=[{"tags": {"": "x"}}]),
        None,
    ),
    ("EC2NodeClass", "has(self.tcpEstablishedTimeout)", lambda o: _spec(o).update(connectionTracking={}), None),
    ("EC2NodeClass", "spec.instanceProfile::", lambda o: (_spec(o).pop("role"), _spec(o).update(instanceProfile="")), None),
    (
        "EC2NodeClass",
        "self.imageGCHighThresholdPercent > self.imageGCLowThresholdPercent",
        lambda o: _kubelet(o, imageGCHighThresholdPercent=50, imageGCLowThresholdPercent=60),
        None,
    ),
    (
        "EC2NodeClass",
        "self.evictionSoft.all(e, (e in self.evictionSoftGracePeriod))",
        lambda o: _kubelet(
            o,
            evictionSoft={"memory.available": "5%", "nodefs.available": "10%"},
            evictionSoftGracePeriod={"nodefs.available": "1m"},
        ),
        None,
    ),
    (
        "EC2NodeClass",
        "self.evictionSoftGracePeriod.all(e, (e in self.evictionSoft))",
        lambda o: _kubelet(
            o,
            evictionSoft={"nodefs.available": "10%"},
            evictionSoftGracePeriod={"nodefs.available": "1m", "memory.available": "1m"},
        ),
        None,
    ),
    ("EC2NodeClass", "spec.kubelet.evictionHard::", lambda o: _kubelet(o, evictionHard={"gpu.available": "1"}), None),
    (
        "EC2NodeClass",
        "spec.kubelet.evictionSoft::",
        lambda o: _kubelet(o, evictionSoft={"gpu.available": "1"}, evictionSoftGracePeriod={"gpu.available": "1m"}),
        None,
    ),
    (
        "EC2NodeClass",
        "spec.kubelet.evictionSoftGracePeriod::",
        lambda o: _kubelet(o, evictionSoft={"gpu.available": "1"}, evictionSoftGracePeriod={"gpu.available": "1m"}),
        None,
    ),
    (
        "EC2NodeClass",
        "spec.kubelet.kubeReserved::self.all(x, x=='cpu'",
        lambda o: _kubelet(o, kubeReserved={"nvidia.com/gpu": "1"}),
        None,
    ),
    (
        "EC2NodeClass",
        "spec.kubelet.kubeReserved::self.all(x, !self[x].startsWith('-'))",
        lambda o: _kubelet(o, kubeReserved={"cpu": "-100m"}),
        None,
    ),
    (
        "EC2NodeClass",
        "spec.kubelet.systemReserved::self.all(x, x=='cpu'",
        lambda o: _kubelet(o, systemReserved={"nvidia.com/gpu": "1"}),
        None,
    ),
    (
        "EC2NodeClass",
        "spec.kubelet.systemReserved::self.all(x, !self[x].startsWith('-'))",
        lambda o: _kubelet(o, systemReserved={"memory": "-1Gi"}),
        None,
    ),
    (
        "EC2NodeClass",
        "self.size() == 0 || self.exists(x, x.deviceIndex == 0",
        lambda o: _spec(o).update(networkInterfaces=[_nic(deviceIndex=1)]),
        None,
    ),
    (
        "EC2NodeClass",
        "x.networkCardIndex == y.networkCardIndex && x.deviceIndex == y.deviceIndex",
        lambda o: _spec(o).update(networkInterfaces=[_nic(), _nic()]),
        None,
    ),
    (
        "EC2NodeClass",
        "spec.placementGroupSelector::has(self.name) || has(self.id)",
        lambda o: _spec(o).update(placementGroupSelector={}),
        None,
    ),
    (
        "EC2NodeClass",
        "!(has(self.name) && has(self.id))",
        lambda o: _spec(o).update(placementGroupSelector={"name": "a", "id": "pg-0123456789abcdef0"}),
        None,
    ),
    ("EC2NodeClass", "spec.role::", lambda o: _spec(o).update(role=""), None),
    (
        "EC2NodeClass",
        "spec.securityGroupSelectorTerms::self.size() != 0",
        lambda o: _spec(o).update(securityGroupSelectorTerms=[]),
        None,
    ),
    (
        "EC2NodeClass",
        "spec.securityGroupSelectorTerms::self.all(x, has(x.tags) || has(x.id) || has(x.name))",
        lambda o: _spec(o).update(securityGroupSelectorTerms=[{}]),
        None,
    ),
    (
        "EC2NodeClass",
        "!self.all(x, has(x.id) && (has(x.tags) || has(x.name)))",
        lambda o: _spec(o).update(securityGroupSelectorTerms=[{"id": "sg-0123456789abcdef0", "name": "x"}]),
        None,
    ),
    (
        "EC2NodeClass",
        "!self.all(x, has(x.name) && (has(x.tags) || has(x.id)))",
        lambda o: _spec(o).update(securityGroupSelectorTerms=[{"name": "x", "tags": {"a": "b"}}]),
        None,
    ),
    (
        "EC2NodeClass",
        "spec.securityGroupSelectorTerms[].tags::",
        lambda o: _spec(o).update(securityGroupSelectorTerms=[{"tags": {"a": ""}}]),
        None,
    ),
    ("EC2NodeClass", "spec.subnetSelectorTerms::self.size() != 0", lambda o: _spec(o).update(subnetSelectorTerms=[]), None),
    (
        "EC2NodeClass",
        "spec.subnetSelectorTerms::self.all(x, has(x.tags) || has(x.id))",
        lambda o: _spec(o).update(subnetSelectorTerms=[{}]),
        None,
    ),
    (
        "EC2NodeClass",
        "!self.all(x, has(x.id) && has(x.tags))",
        lambda o: _spec(o).update(subnetSelectorTerms=[{"id": "subnet-0123456789abcdef0", "tags": {"a": "b"}}]),
        None,
    ),
    (
        "EC2NodeClass",
        "spec.subnetSelectorTerms[].tags::",
        lambda o: _spec(o).update(subnetSelectorTerms=[{"tags": {"": "x"}}]),
        None,
    ),
    ("EC2NodeClass", "spec.tags::self.all(k, k != '')", lambda o: _spec(o)["tags"].update({"": "x"}), None),
    ("EC2NodeClass", "k !='eks:eks-cluster-name'", lambda o: _spec(o)["tags"].update({"eks:eks-cluster-name": "x"}), None),
    (
        "EC2NodeClass",
        "!k.startsWith('kubernetes.io/cluster')",
        lambda o: _spec(o)["tags"].update({"kubernetes.io/clustername": "x"}),
        None,
    ),
    ("EC2NodeClass", "k != 'karpenter.sh/nodepool'", lambda o: _spec(o)["tags"].update({"karpenter.sh/nodepool": "x"}), None),
    ("EC2NodeClass", "k !='karpenter.sh/nodeclaim'", lambda o: _spec(o)["tags"].update({"karpenter.sh/nodeclaim": "x"}), None),
    (
        "EC2NodeClass",
        "k !='karpenter.k8s.aws/ec2nodeclass'",
        lambda o: _spec(o)["tags"].update({"karpenter.k8s.aws/ec2nodeclass": "x"}),
        None,
    ),
    (
        "NodePool",
        "has(self.replicas) == has(oldSelf.replicas)",
        lambda o: (_spec(o).update(replicas=2), _spec(o).pop("weight"), _spec(o).pop("limits")),
        lambda o: None,
    ),
    ("NodePool", "'nodes' in self.limits", lambda o: _spec(o).update(replicas=2), None),
    (
        "NodePool",
        "!has(self.replicas) || !has(self.weight)",
        lambda o: (_spec(o).update(replicas=2), _spec(o).pop("limits")),
        None,
    ),
    (
        "NodePool",
        "has(x.schedule) == has(x.duration)",
        lambda o: _spec(o)["disruption"]["budgets"].append({"nodes": "0", "schedule": "@daily"}),
        None,
    ),
    (
        "NodePool",
        'labels::self.all(x, x in ["karpenter.sh/capacity-type"',
        lambda o: _template(o)["metadata"]["labels"].update({"karpenter.sh/team": "x"}),
        None,
    ),
    (
        "NodePool",
        'labels::self.all(x, x != "karpenter.sh/nodepool")',
        lambda o: _template(o)["metadata"]["labels"].update({"karpenter.sh/nodepool": "x"}),
        None,
    ),
    (
        "NodePool",
        'labels::self.all(x, x != "kubernetes.io/hostname")',
        lambda o: _template(o)["metadata"]["labels"].update({"kubernetes.io/hostname": "x"}),
        None,
    ),
    (
        "NodePool",
        'labels::self.all(x, x in ["karpenter.k8s.aws/instance-tenancy"',
        lambda o: _template(o)["metadata"]["labels"].update({"team.karpenter.k8s.aws/x": "y"}),
        None,
    ),
    (
        "NodePool",
        "self.group == oldSelf.group",
        lambda o: None,
        lambda o: _template(o)["spec"]["nodeClassRef"].update(group="karpenter.azure.com"),
    ),
    (
        "NodePool",
        "self.kind == oldSelf.kind",
        lambda o: None,
        lambda o: _template(o)["spec"]["nodeClassRef"].update(kind="AKSNodeClass"),
    ),
    ("NodePool", "nodeClassRef.group::", lambda o: _template(o)["spec"]["nodeClassRef"].update(group=""), None),
    ("NodePool", "nodeClassRef.kind::", lambda o: _template(o)["spec"]["nodeClassRef"].update(kind=""), None),
    ("NodePool", "nodeClassRef.name::", lambda o: _template(o)["spec"]["nodeClassRef"].update(name=""), None),
    (
        "NodePool",
        "x.operator == 'In' ? x.values.size() != 0",
        lambda o: _requirement(o, key="example.com/x", operator="In", values=[]),
        None,
    ),
    (
        "NodePool",
        "(x.values.size() == 1 && int(x.values[0]) >= 0)",
        lambda o: _requirement(o, key="karpenter.k8s.aws/instance-cpu", operator="Gt", values=["4", "8"]),
        None,
    ),
    (
        "NodePool",
        "x.values.size() >= x.minValues",
        lambda o: _requirement(o, key="node.kubernetes.io/instance-type", operator="In", values=["g6.xlarge"], minValues=2),
        None,
    ),
    (
        "NodePool",
        'key::self in ["karpenter.sh/capacity-type"',
        lambda o: _requirement(o, key="karpenter.sh/team", operator="Exists"),
        None,
    ),
    (
        "NodePool",
        'key::self != "karpenter.sh/nodepool"',
        lambda o: _requirement(o, key="karpenter.sh/nodepool", operator="Exists"),
        None,
    ),
    (
        "NodePool",
        'key::self != "kubernetes.io/hostname"',
        lambda o: _requirement(o, key="kubernetes.io/hostname", operator="Exists"),
        None,
    ),
    (
        "NodePool",
        'key::self in ["karpenter.k8s.aws/instance-tenancy"',
        lambda o: _requirement(o, key="karpenter.k8s.aws/team", operator="Exists"),
        None,
    ),
    (
        "ScaledObject",
        "self.minReplicaCount <= (has(self.maxReplicaCount)",
        lambda o: _spec(o).update(minReplicaCount=9, maxReplicaCount=2),
        None,
    ),
]


def _rule_matching(kind: str, selector: str) -> tuple[str, str, str]:
    """The one rule of `kind` that `selector` names: a rule substring, or `<path suffix>::<rule prefix>`."""
    path_part, _, rule_part = selector.rpartition("::") if "::" in selector else ("", "", selector)
    matches = [
        (k, path, rule)
        for k, path, rule in every_rule()
        if k.endswith(f" {kind}")
        and (path.endswith(path_part) if path_part else True)
        and (rule.startswith(rule_part) if path_part else rule_part in rule)
    ]
    assert len(matches) == 1, (kind, selector, matches)
    return matches[0]


def _schema_path(path: str) -> str:
    """spec.amiSelectorTerms[0].alias -> spec.amiSelectorTerms[].alias (every_rule's spelling)."""
    return re.sub(r"\['[^']*'\]", "[*]", re.sub(r"\[\d+\]", "[]", path))


def _base(kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(o for o in _crd_objects(program_run("prod", "preview")) if o["kind"] == kind))


@pytest.mark.parametrize("kind, selector, mutate, mutate_old", CEL_CASES, ids=[f"{c[0]}: {c[1][:60]}" for c in CEL_CASES])
def test_cel_rule_catches_its_broken_object(kind, selector, mutate, mutate_old):
    _, path, rule = _rule_matching(kind, selector)
    base = _base(kind)
    broken, old = copy.deepcopy(base), copy.deepcopy(base) if mutate_old else None
    mutate(broken)
    if mutate_old:
        mutate_old(old)
    refused = {(_schema_path(r.path), r.rule) for r in cel_results(broken, old) if r.outcome in ("fail", "error")}
    assert (path, rule) in refused, refused
    assert not cel_violations(base, copy.deepcopy(base) if mutate_old else None)


def test_every_rule_of_the_crds_we_create_objects_of_has_a_broken_object():
    covered = {_rule_matching(kind, selector) for kind, selector, _, _ in CEL_CASES}
    ours = {(kind, path, rule) for kind, path, rule in every_rule() if kind in OUR_KINDS}
    assert ours - covered == set()


# --- Any config the validators accept makes Karpenter objects the CRDs accept --------------------

_LABEL_SEGMENT = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
_DOMAIN = st.lists(_LABEL_SEGMENT, min_size=1, max_size=3).map(".".join) | st.sampled_from(
    [
        "karpenter.sh",
        "karpenter.k8s.aws",
        "kubernetes.io",
        "node.kubernetes.io",
        "a.karpenter.sh",
        "llm-platform.io",
        "example.com",
    ]
)
_LABEL_KEY = st.builds(
    lambda d, n: f"{d}/{n}" if d else n,
    st.none() | _DOMAIN,
    st.sampled_from(["team", "hostname", "nodepool", "capacity-type", "x"]),
)
_TAG_KEY = st.sampled_from(
    [
        "",
        "eks:eks-cluster-name",
        "kubernetes.io/cluster",
        "kubernetes.io/clusterx",
        "kubernetes.io/cluster/llm-dev",
        "karpenter.sh/nodepool",
        "karpenter.sh/nodeclaim",
        "karpenter.k8s.aws/ec2nodeclass",
        "team",
        "aws:x",
        "cost-center",
    ]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    labels=st.dictionaries(_LABEL_KEY, st.sampled_from(["", "ml", "a.b"]), max_size=3),
    tags=st.dictionaries(_TAG_KEY, st.just("v"), max_size=3),
)
def test_accepted_config_never_makes_a_karpenter_object_its_crd_refuses(labels, tags):
    values = dev_config_values()
    values["llm-platform:addons"]["karpenter"]["nodePools"][0]["labels"] = labels
    values["llm-platform:tags"] = tags
    try:
        cfg = parse_stack_config(stack_from(values).namespace_values(), "Pulumi.dev.yaml")
    except ConfigError:
        return  # refused at its key: nothing reaches the cluster
    karpenter = cfg.addons.karpenter
    stack_tags = {"managed-by": "pulumi", "llm-platform/project": "llm-platform", "llm-platform/stack": "dev", **cfg.tags}
    for pool in karpenter.node_pools:
        node_class = ec2_node_class_spec(
            pool, cfg.cluster.name, karpenter.ami_alias, "node-role", {**stack_tags, "llm-platform/pool": pool.name}
        )
        assert not cel_violations(
            {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": pool.name}, "spec": node_class}
        )
    for placement in karpenter_placements(karpenter):
        pool = next(p for p in karpenter.node_pools if p.name == placement.pool)
        spec = nodepool_spec(pool, placement, tuple(cfg.cluster.network.zones))
        name = nodepool_name(pool.name, placement.capacity_type)
        assert not cel_violations({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": name}, "spec": spec})
