"""Issue 19, first part: every model's scale-out budget (warm and cold node, phase by phase, each
with its source), and the startup probe, rollout deadline and alerts derived from it."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from conftest import STACKS, load_stack_file, program_run, stack_from
from components.catalog.scale_out import all_sources, assumptions, engine_init_seconds, storage_read
from components.config.scale_out import MARGIN, MIN_LOAD_SECONDS, model_scale_out
from components.config.stack import ConfigError
from components.planner.scale_out import IN_POD_PHASES
from stacks.diff import diff_documents, render
from stacks.offline import run_program
from stacks.plan import plan_document, render_text

PHASES = ["reaction", "node launch", "GPU stack", "image pull", "weights", "engine start", "readiness"]


def _values(stack: str) -> dict[str, Any]:
    return copy.deepcopy(load_stack_file(stack).values)


def _budget(values: dict[str, Any], stack: str, index: int = 0):
    cfg = stack_from(values, stack).validate()
    return model_scale_out(cfg, cfg.models[index])


def test_every_assumption_names_its_source():
    sources = all_sources()
    assert len(sources) >= 25 and all(len(s) > 20 for s in sources)
    data = assumptions()
    assert data.hpa_sync.value == 15 and data.image_gb.value > 5


@pytest.mark.parametrize("stack", STACKS)
def test_each_models_budget_is_an_output_and_adds_up(stack):
    run = program_run(stack, "update")
    cfg = load_stack_file(stack).validate()
    for model, out in zip(cfg.models, run.outputs["models"], strict=True):
        budget = out["scaleOut"]
        phases = budget["phases"]
        assert [p["phase"] for p in phases] == PHASES
        assert all(set(p) == {"phase", "warmSeconds", "coldSeconds", "source"} and p["source"] for p in phases)
        assert budget["warmSeconds"] == sum(p["warmSeconds"] for p in phases)
        assert budget["coldSeconds"] == sum(p["coldSeconds"] for p in phases)
        assert all(p["warmSeconds"] <= p["coldSeconds"] for p in phases)
        # a warm node has the GPU stack and the image: only the node's own phases differ
        assert [p["phase"] for p in phases if p["warmSeconds"] != p["coldSeconds"]] == ["node launch", "GPU stack", "image pull"]
        assert budget == model_scale_out(cfg, model).as_output()


@pytest.mark.parametrize("stack", STACKS)
def test_probes_and_deadlines_come_from_the_cold_budget(stack):
    cfg = load_stack_file(stack).validate()
    run = program_run(stack, "preview")
    deployments = {r.inputs["metadata"]["name"]: r.inputs for r in run.of_type("kubernetes:apps/v1:Deployment")}
    for model in cfg.models:
        budget = model_scale_out(cfg, model)
        in_pod = sum(p.cold_seconds for p in budget.phases if p.phase in IN_POD_PHASES)
        before = sum(p.cold_seconds for p in budget.phases if p.phase in ("node launch", "GPU stack", "image pull"))
        load = model.load_seconds
        if model.load_timeout is None:
            assert load == max(MIN_LOAD_SECONDS, math.ceil(in_pod * MARGIN / 60) * 60)
        assert load >= in_pod  # a new replica is never killed inside its own budget
        spec = deployments[model.name]["spec"]
        (vllm,) = [c for c in spec["template"]["spec"]["containers"] if c["name"] == "vllm"]
        probe = vllm["startupProbe"]
        assert probe["periodSeconds"] * probe["failureThreshold"] == load
        assert spec["progressDeadlineSeconds"] == load + math.ceil(before * MARGIN / 60) * 60


def test_a_load_timeout_shorter_than_the_budget_is_refused_naming_both():
    values = _values("prod-gke")
    values["llm-platform:models"][0]["loadTimeout"] = "2m"
    run = run_program(stack_from(values, "prod-gke"), preview=True)
    assert isinstance(run.error, ConfigError) and [r.type for r in run.resources] == ["pulumi:pulumi:Stack"]
    ((key, message),) = run.error.problems
    cfg = load_stack_file("prod-gke").validate()
    in_pod = model_scale_out(cfg, cfg.models[0]).in_pod_cold_seconds
    assert key == "llm-platform:models[0].loadTimeout" and "2m" in message and f"{in_pod} s" in message


def test_a_model_no_pool_can_grow_for_has_no_cold_budget():
    values = _values("prod")
    values["llm-platform:addons"]["karpenter"]["nodePools"] = []
    for model in values["llm-platform:models"]:  # only the managed pools' nodes remain to hold them
        model["maxReplicas"] = 2
    budget = _budget(values, "prod")
    assert budget.cold_seconds is None
    node = next(p for p in budget.phases if p.phase == "node launch")
    assert node.cold_seconds is None and "managed node groups keep their size" in node.source
    assert "GPU stack" not in [p.phase for p in budget.phases]


def test_the_volume_sets_the_weights_phase():
    slow, slower = _values("prod-gke"), _values("prod-gke")
    slow["llm-platform:gcp"]["filestore"] = {"tier": "zonal", "capacityGib": 2048}  # 260 MiB/s per TiB, up to a client's 450
    slower["llm-platform:gcp"]["filestore"] = {"tier": "zonal", "capacityGib": 1024}
    weights = lambda b: next(p.cold_seconds for p in b.phases if p.phase == "weights")  # noqa: E731
    base = weights(_budget(_values("prod-gke"), "prod-gke"))  # basic SSD: 1,200 MiB/s, no per-client cap
    assert base < weights(_budget(slow, "prod-gke")) < weights(_budget(slower, "prod-gke"))
    assert storage_read("filestore-zonal", 1024).value == 260 and storage_read("filestore-zonal", 10240).value == 450
    # an Azure Files share reads 100 + 0.1 MiB/s per GiB, up to what one nconnect=4 client takes
    assert storage_read("azure-files-premium", 1024).value == 100 + 0.1 * 1024
    assert storage_read("azure-files-premium", 102400).value == 1536


def test_scaling_from_zero_waits_for_kedas_polling():
    values = _values("dev")
    cfg = stack_from(values, "dev").validate()
    assert cfg.models[0].scaling.scale_to_zero
    values["llm-platform:models"][0]["scaling"]["pollingInterval"] = "60s"
    reaction = next(p for p in _budget(values, "dev").phases if p.phase == "reaction")
    assert reaction.warm_seconds == round((cfg.models[0].metrics_seconds + 60) / 2) and "pollingInterval" in reaction.source


def test_a_bigger_model_starts_slower_and_the_compile_cache_would_save_time():
    small_cold, small_cached, _ = engine_init_seconds(16)
    big_cold, big_cached, _ = engine_init_seconds(140)
    assert (small_cold, big_cold) == (45, 92) and small_cached < small_cold and big_cached < big_cold
    mid_cold, _, _ = engine_init_seconds(78)
    assert small_cold < mid_cold < big_cold and engine_init_seconds(400)[0] == big_cold


def test_gke_node_launch_depends_on_the_machine_family():
    cfg = load_stack_file("prod-gke").validate()
    node = next(p for p in model_scale_out(cfg, cfg.models[0]).phases if p.phase == "node launch")
    assert cfg.gpu_pools[0].instance_types[0].startswith("g2-") and node.cold_seconds == 52


def test_plan_and_pull_request_show_the_budget():
    run = program_run("prod", "preview")
    text = render_text(run)
    assert "Scale-out budget" in text
    for model in run.outputs["models"]:
        budget = model["scaleOut"]
        assert f"{budget['warmSeconds']} / {budget['coldSeconds']}" in text
    document = plan_document(run)
    markdown = render([diff_documents(document, document, "prod")], "markdown")
    assert "| scale-out `qwen3-8b` (warm / cold node) |" in markdown


def test_every_volume_a_stack_can_choose_has_a_read_rate():
    from typing import get_args

    from components.config.addons import EfsCsiAddon
    from components.config.gcp import FilestoreTier

    modes = get_args(EfsCsiAddon.model_fields["throughput_mode"].annotation)
    kinds = [f"efs-{m}" for m in modes] + [f"filestore-{t}" for t in get_args(FilestoreTier)] + ["azure-files-premium"]
    assert all(storage_read(kind, 1024).value > 0 for kind in kinds)


# --- lever: the compile cache on the weights volume -------------------------------------------------


def _vllm_pod(run, name: str) -> dict[str, Any]:
    (deployment,) = [r.inputs for r in run.of_type("kubernetes:apps/v1:Deployment") if r.inputs["metadata"]["name"] == name]
    return deployment["spec"]["template"]["spec"]


def test_the_compile_cache_lives_on_the_weights_volume_and_the_weights_stay_read_only():
    from components.serving.pod import COMPILE_CACHE_DIR, COMPILE_CACHE_MOUNT
    from components.vllm.flags import VLLM_VERSION

    cfg = load_stack_file("prod").validate()
    assert cfg.scale_out.compile_cache  # on by default
    run = program_run("prod", "preview")
    for model in cfg.models:
        pod = _vllm_pod(run, model.name)
        (vllm,) = [c for c in pod["containers"] if c["name"] == "vllm"]
        assert {"name": "VLLM_CACHE_ROOT", "value": COMPILE_CACHE_MOUNT} in vllm["env"]
        mounts = {m["name"]: m for m in vllm["volumeMounts"]}
        assert mounts["compile-cache"] == {"name": "compile-cache", "mountPath": COMPILE_CACHE_MOUNT, "subPath": COMPILE_CACHE_DIR}
        assert COMPILE_CACHE_DIR == f".vllm-cache/{VLLM_VERSION}"  # a new vLLM version starts a new cache
        assert mounts["weights"]["readOnly"] is True
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["compile-cache"]["persistentVolumeClaim"]["claimName"] == volumes["weights"]["persistentVolumeClaim"]["claimName"]
        assert volumes["weights"]["persistentVolumeClaim"]["readOnly"] is True
        engine = next(p for p in model_scale_out(cfg, model).phases if p.phase == "engine start")
        assert "cache hit" in engine.source


def test_turning_the_compile_cache_off_removes_it_and_costs_seconds():
    values = _values("prod")
    values["llm-platform:scaleOut"] = {"compileCache": False}
    run = run_program(stack_from(values, "prod"), preview=True)
    assert run.error is None, run.error
    cfg_on, cfg_off = load_stack_file("prod").validate(), stack_from(values, "prod").validate()
    for on, off in zip(cfg_on.models, cfg_off.models, strict=True):
        pod = _vllm_pod(run, off.name)
        (vllm,) = [c for c in pod["containers"] if c["name"] == "vllm"]
        assert "compile-cache" not in {v["name"] for v in pod["volumes"]}
        assert "VLLM_CACHE_ROOT" not in {e["name"] for e in vllm["env"]}
        saved = model_scale_out(cfg_off, off).warm_seconds - model_scale_out(cfg_on, on).warm_seconds
        assert 20 <= saved <= 50


# --- lever: warm headroom ------------------------------------------------------------------------------

HEADROOM_STACKS = ("prod", "prod-gke", "prod-aks")


@pytest.mark.parametrize("stack", HEADROOM_STACKS)
def test_placeholders_hold_exactly_the_slot_one_replica_needs(stack):
    from components.serving.headroom import PRIORITY_CLASS, headroom_name

    cfg = load_stack_file(stack).validate()
    run = program_run(stack, "preview")
    deployments = {r.inputs["metadata"]["name"]: r for r in run.of_type("kubernetes:apps/v1:Deployment")}
    (priority,) = run.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")
    assert priority.inputs["metadata"]["name"] == PRIORITY_CLASS
    assert priority.inputs["value"] < 0 and priority.inputs["preemptionPolicy"] == "Never" and priority.inputs["globalDefault"] is False
    held = [m for m in cfg.models if m.headroom_slots]
    assert [m.name for m in held] == ["qwen3-8b"]  # the 1-GPU model; the 4-GPU one holds none
    for model in cfg.models:
        if not model.headroom_slots:
            assert headroom_name(model) not in deployments
            continue
        placeholder = deployments[headroom_name(model)]
        assert priority.urn in placeholder.dependencies
        real = deployments[model.name].inputs["spec"]
        spec = placeholder.inputs["spec"]
        assert spec["replicas"] == model.headroom_slots
        pod, real_pod = spec["template"]["spec"], real["template"]["spec"]
        assert pod["priorityClassName"] == PRIORITY_CLASS and pod["terminationGracePeriodSeconds"] == 0
        assert pod["affinity"] == real_pod["affinity"] and pod["tolerations"] == real_pod["tolerations"]
        (container,) = pod["containers"]
        (server,) = [c for c in real_pod["containers"] if c["name"] == "vllm"]
        assert container["resources"]["requests"] == server["resources"]["requests"]  # the same GPUs, CPU and memory
        assert container["image"] == server["image"]  # the node pulls the replica's image
        assert pod["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        # nothing that counts the model's replicas counts a placeholder
        labels = spec["template"]["metadata"]["labels"]
        assert not (real["selector"]["matchLabels"].items() <= labels.items())


def test_a_models_own_headroom_beats_the_stack_default_and_costs_are_flagged():
    values = _values("dev")
    values["llm-platform:scaleOut"] = {"warmHeadroom": 2}
    cfg = stack_from(values, "dev").validate()
    assert cfg.models[0].headroom_slots == 2 and model_scale_out(cfg, cfg.models[0]).as_output()["warmHeadroom"] == 2
    run = run_program(stack_from(values, "dev"), preview=True)
    assert run.error is None, run.error
    (held,) = run.outputs["cost"]["warmHeadroom"]["models"]
    assert held["model"] == "qwen3-4b" and held["gpus"] == 2 and held["perHour"] > 0
    values["llm-platform:models"][0]["warmHeadroom"] = 0
    cfg = stack_from(values, "dev").validate()
    assert cfg.models[0].headroom_slots == 0
    run = run_program(stack_from(values, "dev"), preview=True)
    assert not run.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")
