"""Issue 19, second part: the levers that cut a scale-out (image pull per cloud, the weight loader,
the reaction), each moving the budget, and the targets the prod stacks reach with them on."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from conftest import STACK_CLOUD, STACKS, load_stack_file, program_run, stack_from
from components.catalog.scale_out import assumptions, loader_read
from components.clusters.contract import ClusterContract
from components.config.planning import RUNAI_BUFFER_FLOOR_BYTES, model_architecture, runai_memory_limit
from components.config.scale_out import model_scale_out
from components.serving.pod import vllm_args
from stacks.offline import run_program


def _values(stack: str) -> dict[str, Any]:
    return copy.deepcopy(load_stack_file(stack).values)


def _phase(budget, name: str):
    return next(p for p in budget.phases if p.phase == name)


def _budgets(values: dict[str, Any], stack: str):
    cfg = stack_from(values, stack).validate()
    return {m.name: model_scale_out(cfg, m) for m in cfg.models}


def _problems(values: dict[str, Any], stack: str) -> list[tuple[str, str]]:
    run = run_program(stack_from(values, stack), preview=True)
    assert run.error is not None and [r.type for r in run.resources] == ["pulumi:pulumi:Stack"]  # nothing registered
    return list(run.error.problems)


def _containers(run, name: str) -> dict[str, dict[str, Any]]:
    (deployment,) = [r.inputs for r in run.of_type("kubernetes:apps/v1:Deployment") if r.inputs["metadata"]["name"] == name]
    pod = deployment["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod["containers"] + pod.get("initContainers", [])}


# --- the targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["prod", "prod-gke", "prod-aks"])
def test_the_prod_stacks_meet_the_targets_their_clouds_allow(stack):
    """The issue's targets, as the plan computes them: 8B warm < 90 s and cold < 5 min, a 32B
    tensor-parallel model cold < 8 min. AKS's GPU node alone (VM, driver build, GPU Operator) is
    estimated at 330 s, so its cold targets are out of reach of anything this program sets."""
    cfg = load_stack_file(stack).validate()
    budgets = {m.name: (m, model_scale_out(cfg, m)) for m in cfg.models}
    small, small_budget = budgets["qwen3-8b"]
    big, big_budget = budgets["qwen3-32b"]
    assert big.gpus_per_replica > 1 and small.gpus_per_replica == 1
    assert small_budget.warm_seconds < 90
    node = _phase(small_budget, "node launch").cold_seconds + _phase(small_budget, "GPU stack").cold_seconds
    if STACK_CLOUD[stack] == "azure":
        assert node >= 300 and small_budget.cold_seconds > 300
    else:
        assert small_budget.cold_seconds < 300 and big_budget.cold_seconds < 480


@pytest.mark.parametrize("lever, value", [("fastImagePull", False), ("weightLoader", "safetensors"), ("metricsInterval", "15s")])
@pytest.mark.parametrize("stack", ["prod", "prod-gke", "prod-aks"])
def test_each_lever_moves_the_budget(stack, lever, value):
    on = _budgets(_values(stack), stack)
    values = _values(stack)
    values["llm-platform:scaleOut"] = {lever: value}
    off = _budgets(values, stack)
    phase = {"fastImagePull": "image pull", "weightLoader": "weights", "metricsInterval": "reaction"}[lever]
    for name in on:
        assert _phase(off[name], phase).cold_seconds > _phase(on[name], phase).cold_seconds
        assert off[name].cold_seconds > on[name].cold_seconds


# --- reaction --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_one_scrape_and_one_hpa_sync_start_the_scale_up(stack):
    cfg = load_stack_file(stack).validate()
    run = program_run(stack, "preview")
    monitors = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in run.resources if r.inputs.get("kind") == "ServiceMonitor"}
    scaled = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in run.resources if r.inputs.get("kind") == "ScaledObject"}
    for model in cfg.models:
        (endpoint,) = monitors[model.name]["endpoints"]
        assert endpoint["interval"] == cfg.scale_out.metrics_interval == "5s"
        assert int(endpoint["scrapeTimeout"].rstrip("s")) < 5
        up = scaled[model.name]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"]
        assert up["stabilizationWindowSeconds"] == 0 and up["selectPolicy"] == "Max"
        assert {p["periodSeconds"] for p in up["policies"]} == {assumptions().hpa_sync.value}
        assert {(p["type"], p["value"]) for p in up["policies"]} == {("Percent", 100), ("Pods", 4)}
        reaction = _phase(model_scale_out(cfg, model), "reaction")
        assert "Prometheus scrape (5 s)" in reaction.source


def test_a_metrics_interval_out_of_range_is_refused_at_its_key():
    values = _values("dev")
    values["llm-platform:scaleOut"] = {"metricsInterval": "1s"}
    ((key, message),) = _problems(values, "dev")
    assert key == "llm-platform:scaleOut.metricsInterval" and "between 5s and 60s" in message


# --- the weight loader ------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_run_ai_streamer_reads_the_weights_with_a_buffer_the_pod_holds(stack):
    cfg = load_stack_file(stack).validate()
    run = program_run(stack, "preview")
    for model in cfg.models:
        args = _containers(run, model.name)["vllm"]["args"]
        assert args[args.index("--load-format") + 1] == "runai_streamer"
        extra = json.loads(args[args.index("--model-loader-extra-config") + 1])
        assert extra["concurrency"] == 16
        arch = model_architecture(model)
        largest = arch.vocab * arch.hidden * 2
        # the streamer refuses a buffer below the largest tensor; ours is at least twice that
        assert extra["memory_limit"] >= max(RUNAI_BUFFER_FLOOR_BYTES, 2 * largest)
        memory = int(model.memory.removesuffix("Gi")) * 2**30
        assert extra["memory_limit"] * model.gpus_per_replica <= memory // 2
        weights = _phase(model_scale_out(cfg, model), "weights")
        assert "runai-streamer" in weights.source or "per-client limit" in weights.source


def test_safetensors_for_one_model_leaves_vllms_default_and_reads_slower():
    values = _values("prod")
    values["llm-platform:models"][0]["weightLoader"] = "safetensors"
    cfg = stack_from(values, "prod").validate()
    first, second = cfg.models
    assert "--load-format" not in vllm_args(first) and "--load-format" in vllm_args(second)
    weights = _phase(model_scale_out(cfg, first), "weights")
    default_cfg = load_stack_file("prod").validate()
    assert weights.cold_seconds > _phase(model_scale_out(default_cfg, default_cfg.models[0]), "weights").cold_seconds
    assert loader_read("safetensors").value < loader_read("runai-streamer").value
    assert "safetensors loader" in weights.source


def test_a_checkpoint_the_streamer_cannot_read_is_a_config_error():
    values = _values("dev")
    values["llm-platform:models"][0]["quantization"] = "bitsandbytes"
    ((key, message),) = _problems(values, "dev")
    assert key == "llm-platform:models[0].quantization" and "weightLoader: safetensors" in message
    values["llm-platform:models"][0]["weightLoader"] = "safetensors"
    assert run_program(stack_from(values, "dev"), preview=True).error is None


def test_a_pod_too_small_for_the_streamers_buffers_is_refused():
    values = _values("dev")
    values["llm-platform:models"][0]["resources"] = {"memory": "6Gi", "shmSize": "1Gi"}
    ((key, message),) = _problems(values, "dev")
    assert key == "llm-platform:models[0].resources.memory" and "Run:ai" in message


def test_the_loader_flags_are_the_platforms():
    values = _values("dev")
    values["llm-platform:models"][0]["extraArgs"] = ["--load-format", "safetensors"]
    ((key, message),) = _problems(values, "dev")
    assert key == "llm-platform:models[0].extraArgs[0]" and "weightLoader" in message


def test_an_unsized_model_gets_the_streamers_own_minimum_buffer():
    values = _values("dev")
    values["llm-platform:models"][0]["fitCheck"] = False
    cfg = stack_from(values, "dev").validate()
    assert runai_memory_limit(cfg.models[0]) == 0  # the streamer sizes it to the largest tensor itself


# --- the image -----------------------------------------------------------------------------------


def test_docker_hub_images_go_through_the_mirror_and_others_do_not():
    contract = ClusterContract.__new__(ClusterContract)
    object.__setattr__(contract, "image_mirror", "r-docker.pkg.dev/p/docker-hub")
    image = contract.image
    assert image("vllm/vllm-openai:v0.33.0") == "r-docker.pkg.dev/p/docker-hub/vllm/vllm-openai:v0.33.0"
    assert image("docker.io/vllm/vllm-openai:v0.33.0") == "r-docker.pkg.dev/p/docker-hub/vllm/vllm-openai:v0.33.0"
    assert image("nginx:1.29") == "r-docker.pkg.dev/p/docker-hub/library/nginx:1.29"
    assert image("docker.io/nginx") == "r-docker.pkg.dev/p/docker-hub/library/nginx"
    for other in ("nvcr.io/nvidia/vllm:25.09", "123.dkr.ecr.us-east-1.amazonaws.com/vllm:v0.33.0", "localhost:5000/vllm:x"):
        assert image(other) == other
    object.__setattr__(contract, "image_mirror", None)
    assert image("vllm/vllm-openai:v0.33.0") == "vllm/vllm-openai:v0.33.0"


@pytest.mark.parametrize("stack", [s for s in STACKS if STACK_CLOUD[s] == "aws"])
def test_karpenter_nodes_pull_in_parallel_onto_a_fast_root_volume(stack):
    run = program_run(stack, "preview")
    classes = [r.inputs for r in run.resources if r.inputs.get("kind") == "EC2NodeClass"]
    assert classes
    for spec in (c["spec"] for c in classes):
        assert "FastImagePull: true" in spec["userData"] and "application/node.eks.aws" in spec["userData"]
        root = spec["blockDeviceMappings"][0]["ebs"]
        assert root["throughput"] >= 600 and root["iops"] >= 4 * root["throughput"] // 1  # gp3: 0.25 MiB/s per IOPS
    values = _values(stack)
    values["llm-platform:scaleOut"] = {"fastImagePull": False}
    off = run_program(stack_from(values, stack), preview=True)
    for spec in (r.inputs["spec"] for r in off.resources if r.inputs.get("kind") == "EC2NodeClass"):
        assert "userData" not in spec and spec["blockDeviceMappings"][0]["ebs"]["throughput"] == 500


def test_an_ami_older_than_parallel_pull_is_refused():
    values = _values("prod")
    values["llm-platform:addons"]["karpenter"]["amiAlias"] = "al2023@v20250701"
    ((key, message),) = _problems(values, "prod")
    assert key == "llm-platform:addons.karpenter.amiAlias" and "fastImagePull" in message
    values["llm-platform:addons"]["karpenter"]["amiAlias"] = "al2023@v20251001"
    assert run_program(stack_from(values, "prod"), preview=True).error is None


@pytest.mark.parametrize("stack", [s for s in STACKS if STACK_CLOUD[s] == "gcp"])
def test_gke_streams_the_vllm_image_from_an_in_region_mirror(stack):
    cfg = load_stack_file(stack).validate()
    run = program_run(stack, "preview")
    (repo,) = run.of_type("gcp:artifactregistry/repository:Repository")
    assert repo.inputs["mode"] == "REMOTE_REPOSITORY" and repo.inputs["format"] == "DOCKER"
    assert repo.inputs["remoteRepositoryConfig"]["dockerRepository"]["publicRepository"] == "DOCKER_HUB"
    assert repo.inputs["location"] == cfg.region
    (reader,) = run.of_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
    assert reader.inputs["role"] == "roles/artifactregistry.reader"
    roles = {r.inputs["role"] for r in run.of_type("gcp:projects/iAMMember:IAMMember")}
    assert "roles/serviceusage.serviceUsageConsumer" in roles
    for pool in run.of_type("gcp:container/nodePool:NodePool"):
        assert pool.inputs["nodeConfig"]["gcfsConfig"] == {"enabled": True}
        assert pool.inputs["nodeConfig"]["imageType"] == "COS_CONTAINERD"
    (cluster,) = run.of_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["nodePoolDefaults"]["nodeConfigDefaults"]["gcfsConfig"] == {"enabled": True}
    prefix = f"{cfg.region}-docker.pkg.dev/{cfg.gcp.project}/docker-hub/"
    jobs = {r.inputs["metadata"]["labels"]["app.kubernetes.io/instance"]: r for r in run.of_type("kubernetes:batch/v1:Job")}
    for model in cfg.models:
        deployment = next(r for r in run.of_type("kubernetes:apps/v1:Deployment") if r.inputs["metadata"]["name"] == model.name)
        containers = _containers(run, model.name)
        assert {c["image"] for c in containers.values()} == {prefix + model.image}
        assert {repo.urn, reader.urn} <= set(deployment.dependencies)
        (download,) = jobs[model.name].inputs["spec"]["template"]["spec"]["containers"]
        assert download["image"] == prefix + model.image and {repo.urn, reader.urn} <= set(jobs[model.name].dependencies)
        assert _phase(model_scale_out(cfg, model), "image pull").cold_seconds == 30


def test_gke_without_the_lever_pulls_from_docker_hub():
    values = _values("prod-gke")
    values["llm-platform:scaleOut"] = {"fastImagePull": False}
    run = run_program(stack_from(values, "prod-gke"), preview=True)
    assert run.error is None, run.error
    assert not run.of_type("gcp:artifactregistry/repository:Repository")
    assert all("gcfsConfig" not in p.inputs["nodeConfig"] for p in run.of_type("gcp:container/nodePool:NodePool"))
    assert _containers(run, "qwen3-8b")["vllm"]["image"] == "vllm/vllm-openai:v0.33.0"


def test_a_model_image_from_another_registry_is_pulled_as_it_is_and_budgeted_so():
    values = _values("prod-gke")
    values["llm-platform:models"][0]["image"] = "nvcr.io/example/vllm-openai:v0.33.0"
    cfg = stack_from(values, "prod-gke").validate()
    run = run_program(stack_from(values, "prod-gke"), preview=True)
    assert _containers(run, cfg.models[0].name)["vllm"]["image"] == "nvcr.io/example/vllm-openai:v0.33.0"
    pulls = [_phase(model_scale_out(cfg, m), "image pull").cold_seconds for m in cfg.models]
    assert pulls[0] > 200 and pulls[1] == 30


@pytest.mark.parametrize("stack", [s for s in STACKS if STACK_CLOUD[s] == "azure"])
def test_aks_pre_pulls_each_model_image_as_gpu_nodes_join(stack):
    from components.serving.prepull import NAMESPACE, prepull_name

    cfg = load_stack_file(stack).validate()
    run = program_run(stack, "preview")
    (namespace,) = [r for r in run.of_type("kubernetes:core/v1:Namespace") if r.inputs["metadata"]["name"] == NAMESPACE]
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    daemonsets = {r.inputs["metadata"]["name"]: r.inputs for r in run.of_type("kubernetes:apps/v1:DaemonSet") if r.inputs["metadata"]["namespace"] == NAMESPACE}
    images = {m.image for m in cfg.models}
    assert set(daemonsets) == {prepull_name(i) for i in images}
    for image in images:
        pod = daemonsets[prepull_name(image)]["spec"]["template"]["spec"]
        (pull,) = pod["initContainers"]
        assert pull["image"] == image and pull["command"] == ["true"]
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms[0]["matchExpressions"][0]["values"] == sorted({m.gpu_type for m in cfg.models if m.image == image})
        tolerated = {(t["key"], t["value"], t["effect"]) for t in pod["tolerations"]}
        for model in cfg.models:
            vllm_tolerations = next(
                r.inputs["spec"]["template"]["spec"]["tolerations"]
                for r in run.of_type("kubernetes:apps/v1:Deployment")
                if r.inputs["metadata"]["name"] == model.name
            )
            assert {(t["key"], t["value"], t["effect"]) for t in vllm_tolerations} <= tolerated
        assert pod["securityContext"]["runAsNonRoot"] is True and all(
            c["securityContext"]["capabilities"] == {"drop": ["ALL"]} for c in pod["containers"] + pod["initContainers"]
        )
        assert daemonsets[prepull_name(image)]["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    for model in cfg.models:
        budget = model_scale_out(cfg, model)
        default = round(assumptions().image_gb.value * 1000 / assumptions().pull_mb_per_second.value)
        assert _phase(budget, "image pull").cold_seconds == default - _phase(budget, "GPU stack").cold_seconds


@pytest.mark.parametrize("stack", [s for s in STACKS if STACK_CLOUD[s] != "azure"])
def test_only_aks_pre_pulls(stack):
    run = program_run(stack, "preview")
    assert not [r for r in run.of_type("kubernetes:apps/v1:DaemonSet") if r.inputs["metadata"]["namespace"] == "llm-platform-images"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_download_job_runs_the_serving_image_and_installs_nothing(stack):
    cfg = load_stack_file(stack).validate()
    run = program_run(stack, "preview")
    jobs = {r.inputs["metadata"]["labels"]["app.kubernetes.io/instance"]: r.inputs for r in run.of_type("kubernetes:batch/v1:Job")}
    for model in cfg.models:
        if model.is_local_path:
            continue
        (download,) = jobs[model.name]["spec"]["template"]["spec"]["containers"]
        assert download["image"] == _containers(run, model.name)["vllm"]["image"]
        assert download["command"][0] == "python3" and "pip" not in " ".join(download["command"])
        assert "snapshot_download" in download["command"][-1]


# --- cost of the held slots -------------------------------------------------------------------------


def test_held_gpus_are_priced_on_the_cheapest_pool_the_model_may_use():
    run = program_run("prod", "update")
    cfg = load_stack_file("prod").validate()
    held = run.outputs["cost"]["warmHeadroom"]
    (entry,) = held["models"]
    model = next(m for m in cfg.models if m.name == entry["model"])
    assert entry["gpus"] == model.headroom_slots * model.gpus_per_replica
    gpus_per_node = {p.name: p.gpus_per_node for p in cfg.gpu_pools} | {k.name: k.gpus_per_node for k in cfg.addons.karpenter.node_pools}
    gpu_type = {p.name: p.gpu_type for p in cfg.gpu_pools} | {k.name: k.gpu_type for k in cfg.addons.karpenter.node_pools}
    per_gpu = [
        p["nodePricePerHour"] / gpus_per_node[p["pool"]]
        for p in run.outputs["cost"]["pools"]
        if gpu_type.get(p["pool"]) == model.gpu_type and p["nodePricePerHour"] is not None
    ]
    assert entry["gpuPricePerHour"] == round(min(per_gpu), 4) > 0
    assert entry["perHour"] == round(entry["gpus"] * entry["gpuPricePerHour"], 2)
    assert held["perHour"] == entry["perHour"] and held["perMonth"] == pytest.approx(entry["gpus"] * entry["gpuPricePerHour"] * 730, abs=0.01)
    assert not any("warm headroom" in item for item in run.outputs["cost"]["notIncluded"])


def test_a_system_disk_too_small_for_the_download_image_is_refused():
    from components.config.scale_out import system_disk_needed_gib

    needed = system_disk_needed_gib()
    data = assumptions()
    assert needed * 2**30 * 0.85 >= (data.image_gb.value + data.image_unpacked_gb.value) * 1e9  # the image alone fits below GC
    values = _values("dev")
    values["llm-platform:systemPool"] = {**values.get("llm-platform:systemPool", {}), "diskSizeGib": needed - 1}
    ((key, message),) = _problems(values, "dev")
    assert key == "llm-platform:systemPool.diskSizeGib" and f"at least {needed} GiB" in message
    values["llm-platform:systemPool"]["diskSizeGib"] = needed
    assert run_program(stack_from(values, "dev"), preview=True).error is None
    assert load_stack_file("dev").validate().system_pool.disk_size_gib >= needed  # the default holds it
