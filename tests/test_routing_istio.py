"""The pieces of routing that differ per cloud: the CRDs we install (EKS, AKS) or leave to the cloud
(GKE), our Istio gateway on EKS and AKS, the answer for unknown models, and model priorities."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
from typing import Any

import pytest
import yaml
from upstream import crd_validation_errors, helm_value_problems, require_upstream

from conftest import load_stack_file, program_run, stack_from
from components.config.routing import GatewayProxyConfig
from components.releases import ISTIO_BASE, ISTIOD
from components.routing import crd_install
from components.routing.gateway import GATEWAY_NAME, NAMESPACE, PROXY_CONFIG, proxy_overlays
from components.routing.not_found import HEALTH_PATH, NAME as NOT_FOUND, PORT as NOT_FOUND_PORT, models_body, nginx_config, not_found_body
from components.routing.pools import OBJECTIVE_HEADER, pool_name
from components.scheduling import system_pool_labels
from stacks.offline import run_program

CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
RELEASE = "kubernetes:helm.sh/v3:Release"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
OBJECTIVE = "kubernetes:llm-d.ai/v1alpha2:InferenceObjective"
ISTIO_STACKS = ("prod", "prod-aks")


def _run(stack: str, mode: str = "preview"):
    result = program_run(stack, mode)
    assert result.error is None, result.error
    return result


def _releases(run) -> dict[str, Any]:
    return {r.inputs["name"]: r for r in run.of_type(RELEASE)}


# --- the CRDs ----------------------------------------------------------------------------------------


def test_the_pinned_crds_are_the_upstream_files_at_their_commits():

    pinned = crd_install.sources()
    assert set(pinned) == {*crd_install.GATEWAY_API_FILES, *crd_install.INFERENCE_POOL_FILES, *crd_install.LLM_D_FILES}
    upstream = {p.name: p for p in (require_upstream() / "routing/crds").rglob("*.yaml")}
    for file, source in pinned.items():
        assert re.fullmatch(rf"https://raw\.githubusercontent\.com/{re.escape(source['repo'])}/[0-9a-f]{{40}}/.+/{re.escape(file)}", source["url"]), file
        # ../shared/upstream holds each one as its upstream wrote it: the hash pins exactly that file
        assert hashlib.sha256(upstream[file].read_bytes()).hexdigest() == source["sha256"], file


def test_a_crd_that_is_not_the_pinned_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "llm-d.ai_inferenceobjectives.yaml").write_text("apiVersion: v1\n")
    monkeypatch.setenv(crd_install.CRD_DIR_ENV, str(tmp_path))
    crd_install.crd_text.cache_clear()
    try:
        with pytest.raises(crd_install.CrdUnavailable, match="SHA-256 differs"):
            crd_install.crd_text("llm-d.ai_inferenceobjectives.yaml")
    finally:
        crd_install.crd_text.cache_clear()


def test_no_crd_file_is_committed_in_the_project():
    from conftest import PROJECT_DIR

    tracked = subprocess.run(["git", "ls-files"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True).stdout.split()
    assert not [path for path in tracked if path.rsplit("/", 1)[-1] in crd_install.sources()]


@pytest.mark.parametrize("stack", ["prod", "prod-gke", "prod-aks"])
def test_crds_are_installed_exactly_where_the_cloud_does_not_bring_them(stack):
    run = _run(stack)
    names = {r.inputs["metadata"]["name"] for r in run.of_type(CRD)}
    llm_d = {"inferenceobjectives.llm-d.ai", "inferencemodelrewrites.llm-d.ai"}
    if stack == "prod-gke":  # GKE >= 1.34 installs the Gateway API and InferencePool itself
        assert names == llm_d
    else:
        gateway_api = {f"{k}.gateway.networking.k8s.io" for k in ("gatewayclasses", "gateways", "httproutes", "referencegrants")}
        assert names == gateway_api | {"inferencepools.inference.networking.k8s.io"} | llm_d
    by_name = {doc["metadata"]["name"]: doc for file in crd_install.sources() for doc in crd_install.documents(file)}
    for crd in run.of_type(CRD):
        assert crd.inputs["spec"] == by_name[crd.inputs["metadata"]["name"]]["spec"], crd.urn  # registered as upstream wrote it
        assert crd.inputs["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"


@pytest.mark.parametrize("stack", ["prod", "prod-gke", "prod-aks"])
def test_everything_written_in_a_routing_group_waits_for_its_crds(stack):
    run = _run(stack)
    crds = {r.urn for r in run.of_type(CRD)}
    gated = [r for r in run.resources if r.type in (GATEWAY, ROUTE, OBJECTIVE)] + [r for r in run.of_type(RELEASE) if r.inputs["name"].endswith("-pool")]
    assert gated
    for res in gated:
        # the picker discovers the llm-d.ai kinds once, at start: they must exist before it runs
        assert crds <= set(res.dependencies), res.urn


# --- Istio on EKS and AKS -------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ISTIO_STACKS)
def test_istio_is_pinned_ingress_only_and_serves_inference_pools(stack):
    releases = _releases(_run(stack))
    base, istiod = releases["istio-base"], releases["istiod"]
    assert (base.inputs["chart"], base.inputs["version"]) == ("base", "1.30.3")
    assert (istiod.inputs["chart"], istiod.inputs["version"]) == ("istiod", "1.30.3")
    assert base.urn in istiod.dependencies
    values = istiod.inputs["values"]
    assert values["env"]["ENABLE_GATEWAY_API_INFERENCE_EXTENSION"] == "true"  # no InferencePool backends without it
    assert values["global"]["hub"] == "docker.io/istio" and values["global"]["tag"] == "1.30.3"  # not the chart tree's testing/latest
    assert values["sidecarInjectorWebhook"]["enableNamespacesByDefault"] is False
    assert values["nodeSelector"] == system_pool_labels()
    assert values["replicaCount"] == 2 and values["global"]["defaultPodDisruptionBudget"]["enabled"] is True  # prod
    for release in (base, istiod):
        chart = ISTIO_BASE if release is base else ISTIOD
        assert helm_value_problems(chart.upstream, release.inputs["values"]) == []


def test_a_single_istiod_gets_no_disruption_budget():
    from components.routing.istio import istiod_values

    values = istiod_values(GatewayProxyConfig(), {"role": "system"})
    assert values["replicaCount"] == 1 and values["global"]["defaultPodDisruptionBudget"]["enabled"] is False  # it would block every drain
    assert values["topologySpreadConstraints"] == []


def test_istio_values_check_refuses_the_internal_defaults_key():
    assert helm_value_problems(ISTIOD.upstream, {"_internal_defaults_do_not_set": {"env": {"X": "1"}}})
    assert helm_value_problems(ISTIOD.upstream, {"pilot": {"env": {"X": "1"}}})  # the istioctl spelling
    assert helm_value_problems(ISTIOD.upstream, {"env": {"X": "1"}}) == []


@pytest.mark.parametrize("stack", ISTIO_STACKS)
def test_the_gateway_shapes_its_proxies_and_its_load_balancer(stack):
    run = _run(stack)
    cfg = load_stack_file(stack).validate()
    (gateway,) = [r.inputs for r in run.of_type(GATEWAY)]
    infrastructure = gateway["spec"]["infrastructure"]
    assert infrastructure["parametersRef"] == {"group": "", "kind": "ConfigMap", "name": PROXY_CONFIG}
    expected = {
        "prod": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb", "service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
        "prod-aks": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true", "service.beta.kubernetes.io/port_80_health-probe_protocol": "tcp"},
    }[stack]
    assert infrastructure["annotations"] == expected
    (config,) = [r.inputs for r in run.of_type(CONFIG_MAP) if r.inputs["metadata"]["name"] == PROXY_CONFIG]
    assert config["metadata"]["namespace"] == NAMESPACE
    overlays = {key: yaml.safe_load(text) for key, text in config["data"].items()}
    # istiod 1.30.3 refuses any other key (pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go supportedOverlays)
    assert set(overlays) <= {"deployment", "service", "serviceAccount", "horizontalPodAutoscaler", "podDisruptionBudget"}
    pod = overlays["deployment"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == system_pool_labels()  # never on a GPU node
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone" and spread["labelSelector"]["matchLabels"] == {"gateway.networking.k8s.io/gateway-name": GATEWAY_NAME}
    (proxy,) = pod["containers"]
    assert proxy["name"] == "istio-proxy" and proxy["resources"]["requests"] == {"cpu": cfg.routing.proxy.cpu, "memory": cfg.routing.proxy.memory}
    hpa = overlays["horizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (cfg.routing.proxy.replicas, cfg.routing.proxy.max_replicas) == (2, 6)
    assert "replicas" not in overlays["deployment"]["spec"]  # the HPA owns it
    assert overlays["podDisruptionBudget"] == {"spec": {"minAvailable": 1}}


def test_a_dev_gateway_has_one_proxy_and_no_budget():
    overlays = proxy_overlays(GatewayProxyConfig(), {"role": "system"})
    assert overlays["deployment"]["spec"]["replicas"] == 1
    assert set(overlays) == {"deployment"}


def test_an_external_istio_gateway_drops_the_internal_annotation():
    values = copy.deepcopy(load_stack_file("prod").values)
    values["llm-platform:routing"]["external"] = True
    run = run_program(stack_from(values, "prod"), preview=True)
    assert run.error is None, run.error
    (gateway,) = [r.inputs for r in run.of_type(GATEWAY)]
    assert gateway["spec"]["infrastructure"]["annotations"] == {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
    assert gateway["metadata"]["labels"]["llm-platform.io/public"] == "true"


def test_routing_on_a_dev_eks_stack_runs_one_of_everything():
    values = copy.deepcopy(load_stack_file("dev").values)
    values["llm-platform:routing"] = {"enabled": True}
    run = run_program(stack_from(values, "dev"), preview=True)
    assert run.error is None, run.error
    istiod = _releases(run)["istiod"].inputs["values"]
    assert istiod["replicaCount"] == 1
    assert not [r for r in run.of_type("kubernetes:policy/v1:PodDisruptionBudget") if r.inputs["metadata"]["namespace"] == NAMESPACE]


def test_gateway_namespaces_enforce_the_strictest_pod_security_their_pods_meet():
    run = _run("prod")
    namespaces = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"] for r in run.of_type("kubernetes:core/v1:Namespace")}
    assert namespaces["istio-system"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # which holds only because istiod and the proxies it deploys get RuntimeDefault seccomp
    istiod = _releases(run)["istiod"].inputs["values"]
    assert istiod["seccompProfile"] == istiod["gateways"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # BBR's chart writes no securityContext: `restricted` would refuse its pod
    assert namespaces[NAMESPACE]["pod-security.kubernetes.io/enforce"] == "baseline"


@pytest.mark.parametrize("stack", ["prod", "prod-gke"])
def test_body_based_routing_fails_closed_so_prod_keeps_two(stack):
    run = _run(stack)
    assert _releases(run)["body-based-routing"].inputs["values"]["bbr"]["replicas"] == 2
    budgets = {r.inputs["metadata"]["name"]: r.inputs for r in run.of_type("kubernetes:policy/v1:PodDisruptionBudget") if r.inputs["metadata"]["namespace"] == NAMESPACE}
    assert budgets["body-based-router"]["spec"] == {"minAvailable": 1, "selector": {"matchLabels": {"app": "body-based-router"}}}


# --- unknown models -------------------------------------------------------------------------------------


def test_the_not_found_answers_are_openai_json():
    error = json.loads(not_found_body())["error"]
    assert error["code"] == 404 and error["type"] == "NotFoundError" and error["param"] == "model" and error["message"]
    listing = json.loads(models_body(["b", "a"]))
    assert listing["object"] == "list" and [m["id"] for m in listing["data"]] == ["a", "b"]
    config = nginx_config(["qwen3-8b"])
    bodies = re.findall(r"return (\d+) '((?:[^'\\]|\\.)*)';", config)
    assert {int(code) for code, _ in bodies} == {200, 404}
    for _, body in bodies:
        json.loads(body.replace("\\'", "'"))  # every answer parses
    assert "default_type application/json;" in config and f"listen {NOT_FOUND_PORT};" in config


def test_a_model_name_cannot_break_out_of_the_nginx_string():
    config = nginx_config(["evil'; return 200 'x"])
    (line,) = [line for line in config.splitlines() if "location = /v1/models" in line]
    (body,) = re.findall(r"return 200 '((?:[^'\\]|\\.)*)'; }$", line)  # one string, ending where nginx ends it
    assert re.sub(r"\\(.)", r"\1", body) == models_body(["evil'; return 200 'x"])


@pytest.mark.parametrize("stack", ["prod", "prod-gke", "prod-aks"])
def test_unknown_models_fall_to_the_not_found_backend(stack):
    run = _run(stack)
    cfg = load_stack_file(stack).validate()
    routes = {r.inputs["metadata"]["name"]: r for r in run.of_type(ROUTE)}
    route = routes[NOT_FOUND]
    assert route.inputs["metadata"]["namespace"] == NAMESPACE
    (rule,) = route.inputs["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]  # no header: every model route outranks it
    assert rule["backendRefs"] == [{"group": "", "kind": "Service", "name": NOT_FOUND, "port": NOT_FOUND_PORT}]
    (config,) = [r.inputs for r in run.of_type(CONFIG_MAP) if r.inputs["metadata"]["name"] == NOT_FOUND]
    assert config["data"]["default.conf"] == nginx_config([m.served_name for m in cfg.routed_models])
    (deployment,) = [r.inputs for r in run.of_type(DEPLOYMENT) if r.inputs["metadata"]["name"] == NOT_FOUND]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == system_pool_labels() and deployment["spec"]["replicas"] == 2
    (container,) = pod["containers"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["readinessProbe"]["httpGet"]["path"] == HEALTH_PATH
    checks = run.of_type("kubernetes:networking.gke.io/v1:HealthCheckPolicy")
    if stack == "prod-gke":  # GKE would probe `/`, which answers 404 by design
        (check,) = checks
        assert check.inputs["spec"]["targetRef"] == {"group": "", "kind": "Service", "name": NOT_FOUND}
        assert check.inputs["spec"]["default"]["config"]["httpHealthCheck"] == {"port": NOT_FOUND_PORT, "requestPath": HEALTH_PATH}
    else:
        assert not checks


# --- model priority ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["prod", "prod-gke"])
def test_a_model_priority_becomes_its_objective_and_every_request_carries_it(stack):
    values = copy.deepcopy(load_stack_file(stack).values)
    values["llm-platform:models"][1]["priority"] = -1
    run = run_program(stack_from(values, stack), preview=True)
    assert run.error is None, run.error
    model = load_stack_file(stack).validate().models[1]
    (objective,) = run.of_type(OBJECTIVE)
    assert crd_validation_errors(objective.inputs) == []
    assert objective.inputs["metadata"] == {**objective.inputs["metadata"], "name": model.name, "namespace": model.namespace_name}
    assert objective.inputs["spec"] == {"poolRef": {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": pool_name(model)}, "priority": -1}
    routes = {r.inputs["metadata"]["namespace"]: r.inputs for r in run.of_type(ROUTE) if r.inputs["metadata"]["name"] != NOT_FOUND}
    (rule,) = routes[model.namespace_name]["spec"]["rules"]
    assert rule["filters"] == [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": OBJECTIVE_HEADER, "value": model.name}]}}]
    assert crd_validation_errors(routes[model.namespace_name]) == []
    (other,) = routes[values["llm-platform:models"][0].get("namespace", values["llm-platform:models"][0]["name"])]["spec"]["rules"]
    assert "filters" not in other  # no priority, no objective
