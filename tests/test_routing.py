"""Routing by model name on every cloud (each prod stack routes both models: GKE through its managed
inference gateway, EKS and AKS through our Istio): the Gateway, the routes and the endpoint
pickers against the pinned CRDs, charts and vLLM metrics, and the config errors routing adds.
What only the in-cluster gateway has (Istio, the CRDs we install) is in test_routing_istio.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from upstream import crd_validation_errors, require_upstream

from conftest import load_stack_file, program_run, stack_from
from components.catalog.images import catalog_image
from components.config.stack import ConfigError
from components.releases import LLM_D_ROUTER_GATEWAY
from components.routing.gateway import GATEWAY_NAME, NAMESPACE
from components.routing.pools import EPP_EXT_PROC_PORT, EPP_VLLM_METRICS, MODEL_HEADER, epp_pod_labels, pool_name
from components.serving.pod import VLLM_PORT
from components.serving.service import pod_labels
from stacks.offline import run_program

STACK = "prod-gke"
ROUTED_STACKS = ("prod", "prod-gke", "prod-aks")
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
RELEASE = "kubernetes:helm.sh/v3:Release"
POOL_OBJECTIVE = "kubernetes:llm-d.ai/v1alpha2:InferenceObjective"


@pytest.fixture(scope="module", params=[(s, m) for s in ROUTED_STACKS for m in ("preview", "update")], ids=lambda p: f"{p[0]}-{p[1]}")
def stack_mode(request):
    return request.param


@pytest.fixture(scope="module")
def run(stack_mode):
    result = program_run(*stack_mode)
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def cfg(stack_mode):
    return load_stack_file(stack_mode[0]).validate()


GKE_ONLY = pytest.mark.parametrize("stack_mode", [(STACK, m) for m in ("preview", "update")], indirect=True, ids=lambda p: f"{p[0]}-{p[1]}")


def _releases(run) -> dict[str, dict[str, Any]]:
    return {r.inputs["name"]: r.inputs for r in run.of_type(RELEASE)}


def test_routing_objects_validate_against_the_pinned_crds(run, cfg):
    objects = [r.inputs for r in run.resources if r.type in (GATEWAY, ROUTE, POOL_OBJECTIVE)]
    assert len(objects) == 1 + len(cfg.routed_models) + 1  # the gateway, a route per model, the not-found route
    problems = [p for obj in objects for p in crd_validation_errors({k: v for k, v in obj.items() if k != "status"})]
    assert problems == []


def test_the_gateway_is_internal_and_admits_routes_only_from_model_namespaces(run, cfg):
    (gateway,) = [r.inputs for r in run.of_type(GATEWAY)]
    assert gateway["metadata"] == {**gateway["metadata"], "name": GATEWAY_NAME, "namespace": NAMESPACE}
    assert gateway["spec"]["gatewayClassName"] == {"gcp": "gke-l7-rilb", "aws": "istio", "azure": "istio"}[cfg.cloud]
    (listener,) = gateway["spec"]["listeners"]
    assert listener["protocol"] == "HTTP" and listener["port"] == 80
    (expression,) = listener["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"]
    assert expression["values"] == sorted({m.namespace_name for m in cfg.routed_models} | {NAMESPACE})  # and the not-found route


def test_an_external_gateway_says_so_with_the_policy_label():
    from components.config.routing import RoutingConfig
    from components.routing.gateway import gateway_labels
    from policy.rules import PUBLIC_ALLOW_LABEL

    assert PUBLIC_ALLOW_LABEL not in gateway_labels(RoutingConfig(enabled=True))
    assert gateway_labels(RoutingConfig(enabled=True, external=True))[PUBLIC_ALLOW_LABEL] == "true"


def test_each_route_matches_its_served_name_and_sends_to_its_own_pool(run, cfg):
    routes = {r.inputs["metadata"]["namespace"]: r.inputs for r in run.of_type(ROUTE)}
    for model in cfg.routed_models:
        route = routes[model.namespace_name]
        assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME, "namespace": NAMESPACE}]
        (rule,) = route["spec"]["rules"]
        (match,) = rule["matches"]
        assert match["headers"] == [{"type": "Exact", "name": MODEL_HEADER, "value": model.served_name}]
        assert rule["backendRefs"] == [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": pool_name(model)}]
        # GKE's load balancer ends a request at the picker chart's 300 s; elsewhere generations get 15 minutes
        assert rule["timeouts"]["request"] == ("300s" if cfg.cloud == "gcp" else "900s")


def test_each_pool_selects_exactly_its_models_pods(run, cfg):
    releases = _releases(run)
    deployments = {r.inputs["metadata"]["namespace"]: r.inputs for r in run.of_type("kubernetes:apps/v1:Deployment") if r.inputs["metadata"]["name"] in {m.name for m in cfg.models}}
    for model in cfg.routed_models:
        values = releases[pool_name(model)]["values"]
        assert releases[pool_name(model)]["namespace"] == model.namespace_name
        servers = values["router"]["modelServers"]
        assert servers["matchLabels"] == pod_labels(model) == deployments[model.namespace_name]["spec"]["selector"]["matchLabels"]
        assert servers["targetPorts"] == [{"number": VLLM_PORT}]
        others = [m for m in cfg.models if m.name != model.name and m.namespace_name == model.namespace_name]
        assert all(pod_labels(o) != servers["matchLabels"] for o in others)
        epp = values["router"]["epp"]
        assert epp["replicas"] == cfg.routing.endpoint_picker.replicas == 2  # prod: HA
        assert epp["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}  # not the chart's 8 CPU / 8 GiB
        # the release's picker, by digest (the chart's own default is tag `main`, pulled Always)
        assert epp["image"]["tag"] == f"{LLM_D_ROUTER_GATEWAY.version}@{catalog_image('endpoint-picker').digest}"
        assert epp["image"]["pullPolicy"] == "IfNotPresent" and epp["image"]["tag"].startswith("v0.10.0@sha256:")
        assert values["provider"]["name"] == ("gke" if cfg.cloud == "gcp" else "istio") and values["httpRoute"]["create"] is False


def test_prod_pickers_have_a_disruption_budget(run, cfg):
    budgets = {r.inputs["metadata"]["name"]: r.inputs for r in run.of_type("kubernetes:policy/v1:PodDisruptionBudget")}
    for model in cfg.routed_models:
        pdb = budgets[f"{pool_name(model)}-epp"]
        assert pdb["spec"]["minAvailable"] == 1 and pdb["spec"]["selector"]["matchLabels"] == epp_pod_labels(model)


def test_the_gateway_and_the_picker_reach_the_pods_and_nothing_more(run, cfg):
    policies = {r.inputs["metadata"]["name"]: r.inputs for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    for model in cfg.routed_models:
        spec = policies[f"{model.name}-from-gateway"]["spec"]
        assert spec["podSelector"]["matchLabels"] == pod_labels(model)
        (rule,) = spec["ingress"]
        assert rule["ports"] == [{"port": VLLM_PORT, "protocol": "TCP"}]
        if cfg.cloud == "gcp":  # the managed load balancer's proxies (proxy-only subnet) and Google's health-check probers
            proxies = [{"ipBlock": {"cidr": cidr}} for cidr in (cfg.gcp.network.proxy_only_cidr, "35.191.0.0/16", "130.211.0.0/22")]
        else:  # the Istio proxies istiod deploys for our Gateway
            proxies = [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                    "podSelector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": GATEWAY_NAME}},
                }
            ]
        assert rule["from"] == [*proxies, {"podSelector": {"matchLabels": epp_pod_labels(model)}}]


def test_the_picker_takes_only_the_gateway_and_reaches_dns_its_pods_and_the_api_server(run, cfg):
    """Its namespace denies by default; this is all it may do."""
    every = [r.inputs for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")]
    policies = {p["metadata"]["name"]: p for p in every}
    denied = {p["metadata"]["namespace"] for p in every if p["metadata"]["name"] == "default-deny"}
    for model in cfg.routed_models:
        assert model.namespace_name in denied, model.name
        policy = policies[f"{pool_name(model)}-epp"]
        spec = policy["spec"]
        assert policy["metadata"]["namespace"] == model.namespace_name
        assert spec["podSelector"]["matchLabels"] == epp_pod_labels(model) and spec["policyTypes"] == ["Ingress", "Egress"]
        (rule,) = spec["ingress"]
        assert rule["ports"] == [{"port": 9002, "protocol": "TCP"}, {"port": 9003, "protocol": "TCP"}]
        assert rule["from"] == policies[f"{model.name}-from-gateway"]["spec"]["ingress"][0]["from"][:-1]  # the proxies, not itself
        dns, pods, api_server = spec["egress"]
        assert dns == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
        assert pods == {"to": [{"podSelector": {"matchLabels": pod_labels(model)}}], "ports": [{"port": VLLM_PORT, "protocol": "TCP"}]}
        assert api_server == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]}


def test_the_picker_policy_opens_the_ports_the_pinned_chart_gives_it(run, cfg):
    """If the chart moved its ports (or our values did), the policy would shut the gateway out."""
    chart = require_upstream() / "routing" / "charts" / "routerlib" / "values.yaml"
    text = chart.read_text()
    assert yaml.safe_load(text)["epp"]["extProcPort"] == EPP_EXT_PROC_PORT == 9002
    assert "grpcHealthPort: 9003" in text and "9003 if unset" in text  # commented out: the template's default
    releases = _releases(run)
    for model in cfg.routed_models:
        epp = releases[pool_name(model)]["values"]["router"]["epp"]
        assert "extProcPort" not in epp and "grpcHealthPort" not in epp


def test_bbr_attaches_to_our_gateway(run, cfg):
    values = _releases(run)["body-based-routing"]["values"]
    assert values["inferenceGateway"]["name"] == GATEWAY_NAME and values["provider"]["name"] == ("gke" if cfg.cloud == "gcp" else "istio")
    assert _releases(run)["body-based-routing"]["namespace"] == NAMESPACE


def test_the_picker_reads_only_metrics_vllm_publishes():
    published = set((require_upstream() / "vllm/vllm-metrics.txt").read_text().split())
    assert set(EPP_VLLM_METRICS) - published == set()


@GKE_ONLY
def test_gke_turns_on_the_gateway_api_and_a_proxy_only_subnet(run, cfg):
    (cluster,) = run.of_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["gatewayApiConfig"] == {"channel": "CHANNEL_STANDARD"}
    (proxy,) = [s.inputs for s in run.of_type("gcp:compute/subnetwork:Subnetwork") if s.inputs.get("purpose")]
    assert proxy["purpose"] == "REGIONAL_MANAGED_PROXY" and proxy["role"] == "ACTIVE" and proxy["ipCidrRange"] == cfg.gcp.network.proxy_only_cidr


def test_the_models_output_says_which_are_routed_and_the_stack_the_url(run, cfg):
    assert "gatewayUrl" in run.outputs
    routed = {m.name for m in cfg.routed_models}
    assert {m["name"]: m["routed"] for m in run.outputs["models"]} == {m.name: m.name in routed for m in cfg.models}
    assert all(m["predicted"]["kvCacheTokens"] > 0 for m in run.outputs["models"])  # still known at preview


@pytest.mark.parametrize("stack", ROUTED_STACKS)
def test_preview_registers_everything_update_does(stack):
    kinds = lambda r: sorted(x.urn for x in r.resources if ":routing:" in x.urn)  # noqa: E731
    assert kinds(program_run(stack, "preview")) == kinds(program_run(stack, "update"))
    assert len(kinds(program_run(stack, "preview"))) >= 20


def test_stacks_without_routing_have_none():
    for stack in ("dev", "dev-gke", "dev-aks"):
        assert not [r for r in program_run(stack, "preview").resources if ":routing:" in r.urn]


# --- config errors ------------------------------------------------------------------------------------


def _values(stack: str) -> dict[str, Any]:
    return copy.deepcopy(load_stack_file(stack).values)


def _problems(values: dict[str, Any], stack: str) -> list[tuple[str, str]]:
    run = run_program(stack_from(values, stack), preview=True)
    assert isinstance(run.error, ConfigError), run.error
    assert [r.type for r in run.resources] == ["pulumi:pulumi:Stack"]
    return run.error.problems


def test_gke_refuses_a_longer_request_timeout_than_its_load_balancer_keeps():
    values = _values(STACK)
    values["llm-platform:routing"]["requestTimeout"] = "15m"
    (problem,) = _problems(values, STACK)
    assert problem[0] == "llm-platform:routing.requestTimeout" and "300s" in problem[1]


def test_gke_has_no_proxies_to_size():
    values = _values(STACK)
    values["llm-platform:routing"]["proxy"] = {"replicas": 3}
    (problem,) = _problems(values, STACK)
    assert problem[0] == "llm-platform:routing.proxy"


def test_a_priority_needs_the_model_routed():
    values = _values("dev")
    values["llm-platform:models"][0]["priority"] = -1
    (problem,) = _problems(values, "dev")
    assert problem[0] == "llm-platform:models[0].priority" and "routing is off" in problem[1]


def test_a_route_for_a_model_that_does_not_exist():
    values = _values(STACK)
    values["llm-platform:routing"]["models"] = ["qwen3-8b", "qwen3-70b"]
    (problem,) = _problems(values, STACK)
    assert problem[0] == "llm-platform:routing.models[1]" and "qwen3-70b" in problem[1]


def test_two_models_served_under_one_name():
    values = _values(STACK)
    values["llm-platform:models"][1]["servedModelName"] = values["llm-platform:models"][0].get("servedModelName", values["llm-platform:models"][0]["name"])
    (problem,) = _problems(values, STACK)
    assert problem[0] == "llm-platform:models[1].servedModelName" and "models[0]" in problem[1]


def test_gke_routing_needs_the_proxy_only_range():
    values = _values(STACK)
    del values["llm-platform:gcp"]["network"]["proxyOnlyCidr"]
    (problem,) = _problems(values, STACK)
    assert problem[0] == "llm-platform:gcp.network.proxyOnlyCidr"


def test_proxy_only_range_must_not_overlap_the_nodes():
    values = _values(STACK)
    values["llm-platform:gcp"]["network"]["proxyOnlyCidr"] = values["llm-platform:gcp"]["network"]["subnetCidr"].replace("/20", "/23")
    (problem,) = _problems(values, STACK)
    assert problem[0] == "llm-platform:gcp.network.proxyOnlyCidr" and "overlaps" in problem[1]


@pytest.mark.parametrize("stack", ["prod", "prod-aks"])
def test_routing_leaves_each_models_service_and_scaling_untouched(stack):
    """In-cluster clients keep calling the model's Service, and KEDA keeps its vLLM signals."""
    values = _values(stack)
    values["llm-platform:routing"]["enabled"] = False
    plain = run_program(stack_from(values, stack), preview=True)
    assert plain.error is None, plain.error
    routed = program_run(stack, "preview")
    kinds = ("kubernetes:core/v1:Service", "kubernetes:keda.sh/v1alpha1:ScaledObject", "kubernetes:apps/v1:Deployment")
    model_objects = lambda run: {r.urn: r.inputs for r in run.resources if r.type in kinds and ":models:VllmModelService$" in r.urn}  # noqa: E731
    assert model_objects(routed) == model_objects(plain) and len(model_objects(plain)) >= 6


def test_gke_routing_needs_a_version_that_brings_the_inference_pool():
    values = _values(STACK)
    values["llm-platform:cluster"]["kubernetesVersion"] = "1.33"
    (problem,) = _problems(values, STACK)
    assert problem[0] == "llm-platform:cluster.kubernetesVersion" and "1.34" in problem[1]
