"""Model services: what each VllmModelService emits, checked for the properties that decide whether
a model survives a rollout, a spot reclaim and a traffic spike, against the pinned upstream files
(vLLM 0.33.0 flags and metrics, Kubernetes' API schema, the CRDs)."""

from __future__ import annotations

import json
import re
from typing import Any

import kubernetes_validate
import pytest
from conftest import STACKS, dev_config_values, program_run, stack_from
from upstream import require_upstream

from components.routing.pools import ROUTING_COMPONENT
from components.addons.dashboards import VLLM_DASHBOARD
from components.addons.gpu import DCGM_COUNTERS
from components.addons.monitoring import NAMESPACE as MONITORING_NAMESPACE
from components.scheduling import GPU_TAINT, LABEL_CAPACITY_TYPE, LABEL_GPU_COUNT, LABEL_GPU_TYPE, SPOT_TAINT
from components.vllm.flags import (
    ALLOWED_EXTRA_FLAGS,
    SWITCH_FLAGS,
    PLATFORM_FLAGS,
    REMOVED_FLAGS,
    RULED_OUT_FLAGS,
    SHORT_ALIASES,
    canonical_flag,
    extra_arg_problems,
)
from stacks.offline import COMPUTED, SECRET, run_program

NS = "llm-platform"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
# kube-state-metrics series (shipped by kube-prometheus-stack) the alerts read besides vLLM and DCGM.
KUBE_STATE_METRICS = {"kube_deployment_spec_replicas", "kube_deployment_status_replicas_available"}



def pulled_image(cfg, image: str) -> str:
    """Where the stack's nodes pull a Docker Hub image from: GKE's mirror with scaleOut.fastImagePull."""
    from components.clusters.gcp.images import mirror_prefix

    if cfg.cloud == "gcp" and cfg.scale_out.fast_image_pull:
        return f"{mirror_prefix(cfg.gcp.project, cfg.region)}/{image}"
    return image

def _upstream_flags() -> set[str]:
    return set((require_upstream() / "vllm/vllm-cli-flags.txt").read_text().split())


def _upstream_metrics() -> set[str]:
    return set((require_upstream() / "vllm/vllm-metrics.txt").read_text().split())


def _renamed_metrics() -> set[str]:
    lines = (require_upstream() / "vllm/vllm-metrics-renamed.tsv").read_text().splitlines()[1:]
    return {line.split("\t", 1)[0] for line in lines if line.strip()}


def _objects(run, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    return [
        r.inputs
        for r in run.resources
        if r.custom and r.type.startswith("kubernetes:") and r.type.endswith(f":{kind}")
        and (namespace is None or r.inputs["metadata"].get("namespace") == namespace)
    ]


def _one(run, kind: str, model) -> dict[str, Any]:
    (obj,) = [
        o
        for o in _objects(run, kind, model.namespace_name)
        if o["metadata"]["name"].startswith(model.name)
        and (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") != ROUTING_COMPONENT
        and (o["metadata"].get("labels") or {}).get("app.kubernetes.io/name") != "vllm-headroom"  # warm-headroom placeholders
    ]
    return obj


def _vllm_container(deployment: dict) -> dict:
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm"]
    return container


def _arg(container: dict, flag: str) -> str:
    args = container["args"]
    return args[args.index(flag) + 1]


def _models(stack_config):
    assert stack_config.models, "every shipped stack serves at least one model"
    return stack_config.models


# --- The vLLM command line ----------------------------------------------------------------------


def test_every_flag_in_the_container_args_is_a_vllm_0_33_flag(run, stack_config):
    published = _upstream_flags()
    for model in _models(stack_config):
        args = _vllm_container(_one(run, "Deployment", model))["args"]
        flags = {canonical_flag(a) for a in args} - {None}
        assert flags and flags <= published, flags - published
        assert not flags & set(REMOVED_FLAGS)


def test_flag_tables_agree_with_the_released_parser():
    published = _upstream_flags()
    assert ALLOWED_EXTRA_FLAGS <= published, ALLOWED_EXTRA_FLAGS - published
    assert set(PLATFORM_FLAGS) <= published and set(RULED_OUT_FLAGS) <= published
    assert not set(REMOVED_FLAGS) & published, set(REMOVED_FLAGS) & published
    assert not ALLOWED_EXTRA_FLAGS & (set(PLATFORM_FLAGS) | set(RULED_OUT_FLAGS))
    assert {"--swap-space", "--num-scheduler-steps"} <= set(REMOVED_FLAGS)
    records = json.loads((require_upstream() / "vllm/vllm-cli-flags.json").read_text())["arguments"]
    aliases = {alias: rec["flags"][-1] for rec in records for alias in rec["short_aliases"]}
    for short, long in SHORT_ALIASES.items():
        assert aliases.get(short) == long, short
    # the yes/no switches are exactly the accepted flags the parser gives no value
    takes_value = {flag: rec["takes_value"] for rec in records for flag in rec["flags"] + rec["negative_flags"] + rec["hidden_flags"]}
    assert SWITCH_FLAGS == {flag for flag in ALLOWED_EXTRA_FLAGS if takes_value[flag] is False}


@pytest.mark.parametrize(
    "token, flag",
    [
        ("--max_model_len", "--max-model-len"),
        ("--max-model-len=4096", "--max-model-len"),
        ("--compilation-config.mode", "--compilation-config"),
        ("-tp", "--tensor-parallel-size"),
        ("-O3", "--optimization-level"),
        ("4096", None),
        ("-1", None),
    ],
)
def test_flags_are_read_as_vllms_parser_reads_them(token, flag):
    assert canonical_flag(token) == flag


def test_extra_args_accept_values_and_reject_repeats():
    assert extra_arg_problems(["--tool-call-parser", "hermes", "--enable-auto-tool-choice", "--seed", "-1"]) == []
    ((index, message),) = extra_arg_problems(["--seed", "1", "--seed", "2"])
    assert index == 2 and "given twice" in message


def test_tensor_parallel_size_is_the_gpu_limit(run, stack_config):
    for model in _models(stack_config):
        container = _vllm_container(_one(run, "Deployment", model))
        tp = _arg(container, "--tensor-parallel-size")
        resources = container["resources"]
        assert tp == resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == str(model.gpus_per_replica)


def test_args_carry_the_typed_config(run, stack_config):
    for model in _models(stack_config):
        container = _vllm_container(_one(run, "Deployment", model))
        assert container["image"] == pulled_image(stack_config, model.image) and container["command"] == ["vllm", "serve"]
        assert _arg(container, "--served-model-name") == model.served_name
        assert _arg(container, "--gpu-memory-utilization") == str(model.gpu_memory_utilization)
        assert _arg(container, "--kv-cache-dtype") == model.kv_cache_dtype
        if model.max_model_len:
            assert _arg(container, "--max-model-len") == str(model.max_model_len)
        assert container["args"][len(container["args"]) - len(model.extra_args) :] == model.extra_args
        assert {"name": "HF_HUB_OFFLINE", "value": "1"} in container["env"]


# --- Lifecycle: start-up, shutdown, rollouts, disruptions ----------------------------------------


def test_grace_period_covers_prestop_and_drain(run, stack_config):
    for model in _models(stack_config):
        spec = _one(run, "Deployment", model)["spec"]["template"]["spec"]
        container = _vllm_container(_one(run, "Deployment", model))
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        drain = int(_arg(container, "--shutdown-timeout"))
        assert drain == model.drain_seconds
        assert spec["terminationGracePeriodSeconds"] >= pre_stop + drain


def test_liveness_never_kills_a_loading_model(run, stack_config):
    for model in _models(stack_config):
        deployment = _one(run, "Deployment", model)
        container = _vllm_container(deployment)
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= model.load_seconds
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] == "/health"
        # A rollout's new pod may take the whole load time (plus a node and image pull) to be ready.
        assert deployment["spec"]["progressDeadlineSeconds"] > model.load_seconds


def test_rollouts_never_drop_a_serving_replica(run, stack_config):
    for model in _models(stack_config):
        deployment = _one(run, "Deployment", model)
        assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
        assert "replicas" not in deployment["spec"]  # KEDA's HPA owns the count


def _allowed_evictions(pdb_spec: dict, replicas: int) -> int:
    def count(value) -> int:
        if isinstance(value, str) and value.endswith("%"):
            return int(value[:-1]) * replicas // 100
        return int(value)

    if "maxUnavailable" in pdb_spec:
        return count(pdb_spec["maxUnavailable"])
    return replicas - count(pdb_spec["minAvailable"])


def test_pdb_allows_an_eviction_at_min_replicas_and_selects_the_pods(run, stack_config):
    for model in _models(stack_config):
        pdb = _one(run, "PodDisruptionBudget", model)["spec"]
        assert _allowed_evictions(pdb, model.min_replicas) >= 1
        assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        labels = _one(run, "Deployment", model)["spec"]["template"]["metadata"]["labels"]
        assert pdb["selector"]["matchLabels"].items() <= labels.items()


def test_pdb_check_catches_a_budget_that_blocks_every_eviction():
    assert _allowed_evictions({"minAvailable": 2}, 2) == 0
    assert _allowed_evictions({"maxUnavailable": "10%"}, 2) == 0


# --- Placement ---------------------------------------------------------------------------------


def _tolerates(tolerations: list[dict], taint) -> bool:
    return any(t.get("key") == taint.key and t.get("value") == taint.value and t.get("effect") == taint.effect for t in tolerations)


def test_gpu_taint_always_tolerated_spot_only_when_allowed(run, stack_config):
    for model in _models(stack_config):
        spec = _one(run, "Deployment", model)["spec"]["template"]["spec"]
        assert _tolerates(spec["tolerations"], GPU_TAINT)
        assert _tolerates(spec["tolerations"], SPOT_TAINT) == (model.capacity != "on-demand")


def test_node_affinity_admits_only_pools_the_model_fits(run, stack_config):
    pools = run.outputs["gpuPools"]
    for model in _models(stack_config):
        spec = _one(run, "Deployment", model)["spec"]["template"]["spec"]
        (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        required = {e["key"]: e["values"] for e in term["matchExpressions"]}
        assert required[LABEL_GPU_TYPE] == [model.gpu_type]
        assert all(int(n) % model.gpus_per_replica == 0 for n in required[LABEL_GPU_COUNT])
        if model.capacity == "on-demand":
            assert required[LABEL_CAPACITY_TYPE] == ["on-demand"]
        admitted = [
            p for p in pools
            if p["gpuType"] == model.gpu_type and str(p["gpusPerNode"]) in required[LABEL_GPU_COUNT]
            and (p["capacityType"] == "on-demand" or model.capacity != "on-demand")
        ]
        assert admitted, f"{model.name} fits no pool"


def test_replicas_spread_over_zones_and_nodes(run, stack_config):
    for model in _models(stack_config):
        spec = _one(run, "Deployment", model)["spec"]["template"]["spec"]
        keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_shm_is_a_memory_volume_and_weights_are_read_only(run, stack_config):
    for model in _models(stack_config):
        spec = _one(run, "Deployment", model)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in _vllm_container(_one(run, "Deployment", model))["volumeMounts"]}
        assert volumes[mounts["/dev/shm"]["name"]]["emptyDir"]["medium"] == "Memory"
        weights = mounts["/weights"]
        assert weights["readOnly"] is True
        assert volumes[weights["name"]]["persistentVolumeClaim"]["readOnly"] is True


# --- Weights -----------------------------------------------------------------------------------


def test_weights_are_downloaded_once_to_shared_storage_and_awaited(run, stack_config):
    storage_class = run.outputs["sharedWeightsStorageClass"]
    for model in _models(stack_config):
        claim = _one(run, "PersistentVolumeClaim", model)
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"] and claim["spec"]["storageClassName"] == storage_class
        (job,) = _objects(run, "Job", model.namespace_name)
        pod = job["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["MODEL_ID"] == model.model and env["MODEL_REVISION"] == model.revision
        assert "snapshot_download" in pod["containers"][0]["command"][-1]
        assert pod["nodeSelector"] == {"llm-platform.io/pool": "system", "llm-platform.io/node-role": "system"}
        assert not pod.get("tolerations")  # never on a GPU node
        assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        # Serving pods read the same directory, after the init container saw the completion marker.
        deployment = _one(run, "Deployment", model)
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        model_dir = _vllm_container(deployment)["args"][0]
        assert env["TARGET_DIR"] == model_dir and f"{model_dir}/.llm-platform-complete" in init["command"][-1]


def test_pvc_waits_for_the_storage_class_and_the_job_for_the_pvc(run):
    by_urn = {r.urn: r for r in run.resources}
    for claim in run.of_type("kubernetes:core/v1:PersistentVolumeClaim"):
        deps = [by_urn[d] for d in claim.dependencies]
        assert any(d.type == "kubernetes:storage.k8s.io/v1:StorageClass" for d in deps)
    for job in run.of_type("kubernetes:batch/v1:Job"):
        assert any(by_urn[d].type == "kubernetes:core/v1:PersistentVolumeClaim" for d in job.dependencies)


def test_gated_model_token_is_a_secret_only_the_download_job_reads():
    values = dev_config_values()
    values[f"{NS}:hfToken"] = {"secure": "v1:AAAAencryptedblob"}
    values[f"{NS}:models"][0]["gated"] = True
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    (secret,) = [r.inputs for r in run.of_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"].endswith("-hf-token")]
    assert secret["stringData"] == SECRET
    (job,) = [r.inputs for r in run.of_type("kubernetes:batch/v1:Job")]
    (token_env,) = [e for e in job["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "HF_TOKEN"]
    assert token_env["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    (deployment,) = [r.inputs for r in run.of_type(DEPLOYMENT)]
    assert "HF_TOKEN" not in str(deployment) and "hf-token" not in str(deployment)


# --- Scaling -----------------------------------------------------------------------------------


def test_scaled_object_targets_the_deployment_with_stack_bounds(run, stack_config):
    for model in _models(stack_config):
        spec = _one(run, "ScaledObject", model)["spec"]
        assert spec["scaleTargetRef"]["name"] == _one(run, "Deployment", model)["metadata"]["name"]
        assert spec["maxReplicaCount"] == model.max_replicas
        expected_min = 0 if model.scaling.scale_to_zero else model.min_replicas
        assert spec["minReplicaCount"] == expected_min
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
        assert spec["fallback"]["behavior"] == "currentReplicasIfHigher"


def test_triggers_read_queue_and_kv_cache_of_this_model_from_the_stack_prometheus(run, stack_config):
    for model in _models(stack_config):
        triggers = {t["name"]: t for t in _one(run, "ScaledObject", model)["spec"]["triggers"]}
        for name, metric in (("queue", "vllm:num_requests_waiting"), ("kv-cache", "vllm:kv_cache_usage_perc")):
            meta = triggers[name]["metadata"]
            assert meta["serverAddress"] == run.outputs["prometheusUrl"]
            assert metric in meta["query"]
            assert f'namespace="{model.namespace_name}"' in meta["query"] and f'model_name="{model.served_name}"' in meta["query"]
            # a sum over the model's pods against an AverageValue target: the HPA divides by the replicas
            assert meta["query"].startswith(f"sum({metric}{{") and triggers[name]["metricType"] == "AverageValue"
        assert triggers["queue"]["metadata"]["threshold"] == str(model.scaling.waiting_requests_per_replica)
        assert triggers["kv-cache"]["metadata"]["threshold"] == str(model.scaling.kv_cache_usage)


# Trigger metadata is a free-form map in the CRD, so a misspelt key is silently ignored there. These
# are the keys KEDA v2.20.2's scalers read (pkg/scalers/prometheus_scaler.go, cron_scaler.go).
KEDA_SCALER_KEYS = {
    "prometheus": {"serverAddress", "query", "queryParameters", "threshold", "activationThreshold", "namespace",
                   "customHeaders", "ignoreNullValues", "unsafeSsl", "awsRegion", "timeout", "identityOwner"},
    "cron": {"start", "end", "timezone", "desiredReplicas"},
}


def test_trigger_metadata_uses_only_keys_the_scalers_read(run, stack_config):
    for model in _models(stack_config):
        for trigger in _one(run, "ScaledObject", model)["spec"]["triggers"]:
            assert set(trigger["metadata"]) <= KEDA_SCALER_KEYS[trigger["type"]], trigger


def test_scale_to_zero_only_where_the_stack_allows_it(run, stack_config):
    for model in _models(stack_config):
        spec = _one(run, "ScaledObject", model)["spec"]
        if spec["minReplicaCount"] == 0:
            assert stack_config.model_policy.allow_scale_to_zero
            triggers = {t["name"]: t for t in spec["triggers"]}
            assert all("activationThreshold" in t["metadata"] for t in triggers.values() if t["type"] == "prometheus")
            assert triggers["active-hours"]["type"] == "cron"  # what wakes a model no pod reports for


def test_stacks_serve_what_the_issue_asks():
    dev = program_run("dev", "update")
    (dev_model,) = dev.outputs["models"]
    assert dev_model["minReplicas"] == 0 and dev_model["capacity"] != "on-demand"
    prod = program_run("prod", "update").outputs["models"]
    assert len(prod) >= 2 and any(m["gpusPerReplica"] > 1 for m in prod)
    assert all(m["minReplicas"] >= 2 and m["capacity"] == "spot-allowed" for m in prod)
    budgets = [r for r in program_run("prod", "update").of_type("kubernetes:policy/v1:PodDisruptionBudget") if ":models:VllmModelService$" in r.urn]
    assert len(budgets) == len(prod)


def test_models_export_the_planners_prediction_and_serve_its_max_num_seqs():
    for stack in ("dev", "prod"):
        run = program_run(stack, "preview")
        deployments = {d.name: d for d in run.of_type("kubernetes:apps/v1:Deployment")}
        for model in run.outputs["models"]:
            predicted = model["predicted"]
            assert predicted["kvCacheTokens"] >= predicted["maxModelLen"]  # one full-length request fits
            assert predicted["maxConcurrency"] == pytest.approx(predicted["kvCacheTokens"] / predicted["maxModelLen"], rel=0.01)
            args = _container_args(deployments, model["name"])
            assert args[args.index("--max-num-seqs") + 1] == str(model["maxNumSeqs"])


def _container_args(deployments, name):
    matches = [d for key, d in deployments.items() if key.endswith(f"-{name}-deployment")]
    assert len(matches) == 1, (name, list(deployments))
    (container,) = [c for c in matches[0].inputs["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm"]
    return container["args"]


def test_prod_forbids_scale_to_zero_by_default():
    from stacks.stack_files import load_stack_file

    assert load_stack_file("prod").validate().model_policy.allow_scale_to_zero is False


# --- Monitoring and access ---------------------------------------------------------------------


def _promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers directly followed by a selector `{`."""
    return set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", expr))


def test_every_metric_in_triggers_alerts_and_dashboards_is_published(run, stack_config):
    published = _upstream_metrics() | {name for name, _, _ in DCGM_COUNTERS} | KUBE_STATE_METRICS
    exprs = [p_expr for panel in VLLM_DASHBOARD.panels for p_expr in panel.exprs]
    for model in _models(stack_config):
        exprs += [t["metadata"]["query"] for t in _one(run, "ScaledObject", model)["spec"]["triggers"] if t["type"] == "prometheus"]
        (group,) = _one(run, "PrometheusRule", model)["spec"]["groups"]
        exprs += [r["expr"] for r in group["rules"]]
    used = set().union(*map(_promql_metric_names, exprs))
    assert used and used <= published, used - published
    assert not used & _renamed_metrics()


def test_metric_check_catches_a_renamed_metric():
    assert "vllm:gpu_cache_usage_perc" in _renamed_metrics()
    assert _promql_metric_names('avg(vllm:gpu_cache_usage_perc{a="b"}) > 0.9') == {"vllm:gpu_cache_usage_perc"}
    assert "vllm:gpu_cache_usage_perc" not in _upstream_metrics()


def test_alerts_cover_kv_cache_queue_readiness_gpu_temperature_and_errors(run, stack_config):
    for model in _models(stack_config):
        (group,) = _one(run, "PrometheusRule", model)["spec"]["groups"]
        rules = {r["alert"]: r for r in group["rules"]}
        assert set(rules) == {"VllmKvCacheNearlyFull", "VllmRequestsQueueing", "VllmNoReadyReplica", "VllmGpuTemperatureHigh", "VllmRequestErrors"}
        assert "vllm:kv_cache_usage_perc" in rules["VllmKvCacheNearlyFull"]["expr"] and "> 0.9" in rules["VllmKvCacheNearlyFull"]["expr"]
        assert "DCGM_FI_DEV_GPU_TEMP" in rules["VllmGpuTemperatureHigh"]["expr"]
        for rule in rules.values():
            assert model.namespace_name in rule["expr"]


def test_service_monitor_scrapes_the_service_port(run, stack_config):
    for model in _models(stack_config):
        service = _one(run, "Service", model)
        monitor = _one(run, "ServiceMonitor", model)["spec"]
        assert service["spec"]["type"] == "ClusterIP"
        (port,) = service["spec"]["ports"]
        assert port["name"].startswith("http") and port["targetPort"] == port["name"]
        assert monitor["endpoints"][0]["port"] == port["name"] and monitor["endpoints"][0]["path"] == "/metrics"
        assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert service["spec"]["selector"] == monitor["selector"]["matchLabels"]


def _policies(run, model) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p["spec"] for p in _objects(run, "NetworkPolicy", model.namespace_name)}


def test_network_policy_admits_only_configured_namespaces_and_prometheus(run, stack_config):
    for model in _models(stack_config):
        policy = _policies(run, model)[model.name]
        assert policy["policyTypes"] == ["Ingress", "Egress"] and not policy.get("egress")  # the server calls nothing
        (rule,) = policy["ingress"]
        admitted = {peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in rule["from"]}
        expected = {MONITORING_NAMESPACE, *model.access.allowed_namespaces}
        if model.access.ingress:
            expected.add(model.access.ingress.controller_namespace)
        assert admitted == expected


def test_the_download_job_reaches_dns_and_https_only_and_nothing_reaches_it(run, stack_config):
    for model in _models(stack_config):
        policy = _policies(run, model)[f"{model.name}-download"]
        (job,) = [j for j in _objects(run, "Job", model.namespace_name) if j["metadata"]["name"].startswith(f"{model.name}-download-")]
        assert policy["podSelector"]["matchLabels"] == job["spec"]["template"]["metadata"]["labels"]
        assert policy["policyTypes"] == ["Ingress", "Egress"] and not policy.get("ingress")
        dns, https = policy["egress"]
        assert dns == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
        assert https == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]}


def test_every_model_namespace_denies_by_default(run, stack_config):
    """Routed ones too: the endpoint picker has its own policy (test_routing)."""
    for model in _models(stack_config):
        assert _policies(run, model)["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, model.name


def test_ingress_and_shared_namespace_when_configured():
    values = dev_config_values()
    model = values[f"{NS}:models"][0]
    model["namespace"] = "inference"
    model["access"] = {"ingress": {"className": "alb", "host": "llm.example.com", "controllerNamespace": "kube-system"}}
    values[f"{NS}:models"].append({**model, "name": "qwen3-4b-b", "servedModelName": "qwen-b", "access": {}})
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    namespaces = [r for r in run.of_type("kubernetes:core/v1:Namespace") if r.inputs["metadata"]["name"] == "inference"]
    assert len(namespaces) == 1 and namespaces[0].type == "kubernetes:core/v1:Namespace"
    (ingress,) = _objects(run, "Ingress", "inference")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "qwen3-4b", "port": {"name": "http-openai"}}
    (policy,) = [p for p in _objects(run, "NetworkPolicy", "inference") if p["metadata"]["name"] == "qwen3-4b"]
    admitted = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in policy["spec"]["ingress"][0]["from"]}
    assert "kube-system" in admitted


# --- Schemas and ordering ----------------------------------------------------------------------


def _redacted(doc: Any) -> Any:
    """Secret values print as "[secret]"; give the schema a map where the object holds one."""
    if isinstance(doc, dict):
        return {k: ({"redacted": "x"} if v == SECRET and k in ("data", "stringData") else _redacted(v)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_redacted(v) for v in doc]
    return doc


# CRs: validated against the pinned CRDs (test_addons_upstream, test_routing). GKE's HealthCheckPolicy
# has no CRD in ../shared/upstream: test_routing_istio checks its fields against GKE's API reference.
CRD_GROUPS = (
    "keda.sh/", "karpenter.sh/", "karpenter.k8s.aws/", "monitoring.coreos.com/", "nvidia.com/",
    "gateway.networking.k8s.io/", "inference.networking.k8s.io/", "llm-d.ai/", "networking.gke.io/",
)


def test_every_kubernetes_object_validates_against_the_api_schema(run, stack_config):
    version = f"{stack_config.cluster.kubernetes_version}.0"
    checked = 0
    for res in run.resources:
        if not (res.custom and res.type.startswith("kubernetes:")) or res.type.startswith(("kubernetes:helm.sh/", "pulumi:")):
            continue
        if res.inputs.get("apiVersion", "").startswith(CRD_GROUPS):
            continue  # CRs: validated against the pinned CRDs (test_addons_upstream)
        doc = _redacted(res.inputs)
        if COMPUTED in str(doc):
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{res.urn}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked >= 10


def test_schema_check_catches_a_misspelt_field():
    deployment = program_run("dev", "update").of_type(DEPLOYMENT)[0].inputs
    broken = {**deployment, "spec": {**deployment["spec"], "maxSurge": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.35.0", strict=True)


@pytest.mark.parametrize("stack", STACKS)
def test_preview_registers_every_model_object_of_update(stack):
    def model_objects(mode):
        return sorted((r.type, r.name) for r in program_run(stack, mode).resources if "-models" in r.name)

    assert model_objects("preview") == model_objects("update") != []


def test_component_tree_and_dependencies(run):
    by_urn = {r.urn: r for r in run.resources}
    services = run.of_type("llm-platform:models:VllmModelService")
    assert services and all(by_urn[s.parent].type == "llm-platform:models:ModelServices" for s in services)
    for res in run.resources:
        if res.parent in {s.urn for s in services}:
            assert res.name.startswith(by_urn[res.parent].name)
    keda = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "keda"][0]
    for scaled in run.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject"):
        assert keda.urn in scaled.dependencies

