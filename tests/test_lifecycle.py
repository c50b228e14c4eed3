"""Lifecycle invariants every stack holds (issue 21): what the config rules derive, checked on the
objects the program registers, so a later change to a derivation cannot break them unseen."""

from __future__ import annotations

from conftest import inputs_of

from components.config.scale_out import model_scale_out
from stacks.stack_files import load_stack_file


def _servers(run) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in inputs_of(run, "kubernetes:apps/v1:Deployment")
            if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") == "vllm"}


def test_grace_outlasts_prestop_and_drain_and_no_budget_blocks_every_eviction(run):
    cfg = load_stack_file(run.stack).validate()
    servers = _servers(run)
    budgets = {p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/instance"): p["spec"] for p in inputs_of(run, "kubernetes:policy/v1:PodDisruptionBudget")}
    for model in cfg.models:
        pod = servers[model.name]["spec"]["template"]["spec"]
        (server,) = pod["containers"]
        pre_stop = server["lifecycle"]["preStop"]["sleep"]["seconds"]
        drain = int(server["args"][server["args"].index("--shutdown-timeout") + 1])
        assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain, model.name
        pdb = budgets[model.name]
        assert pdb.get("maxUnavailable", 0) >= 1 and "minAvailable" not in pdb, model.name  # one eviction always allowed


def test_the_startup_window_covers_the_cold_start_budget(run):
    cfg = load_stack_file(run.stack).validate()
    servers = _servers(run)
    for model in cfg.models:
        (server,) = servers[model.name]["spec"]["template"]["spec"]["containers"]
        probe = server["startupProbe"]
        window = probe["periodSeconds"] * probe["failureThreshold"]
        budget = model_scale_out(cfg, model)
        assert window >= (budget.in_pod_cold_seconds if budget else model.load_seconds), model.name
        deadline = servers[model.name]["spec"]["progressDeadlineSeconds"]
        assert deadline > window, model.name
