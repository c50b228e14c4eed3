"""Test harness: the real program under Pulumi mocks, for every `Pulumi.*.yaml`, in both modes.

`preview` is what a pull request's `pulumi preview` sees (cloud outputs unknown, `apply` callbacks
skipped); `update` returns stand-in outputs so the `apply` paths run too. Runs are cached per
session: a run is deterministic, and the program takes ~0.1-0.5 s.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

# The routing CRDs the program installs are the upstream files at pinned hashes; with no network the
# tests hand it the same files from ../shared/upstream (subprocesses inherit this).
# (upstream.py reads the same LLM_PLATFORM_UPSTREAM; it imports this module, so not the reverse)
_UPSTREAM = Path(os.environ.get("LLM_PLATFORM_UPSTREAM", PROJECT_DIR.parent / "shared" / "upstream"))
os.environ.setdefault("LLM_PLATFORM_CRD_DIR", str(_UPSTREAM / "routing" / "crds"))

from policy.rules import tolerates  # noqa: E402, F401 - the tests' one Kubernetes toleration check
from stacks.offline import ProgramRun, run_program  # noqa: E402
from stacks.stack_files import StackFile, available_stacks, load_stack_file, stack_file_from_values  # noqa: E402

STACKS = available_stacks(PROJECT_DIR)
MODES = ("preview", "update")
STACK_CLOUD = {s: load_stack_file(s).namespace_values().get("cloud") for s in STACKS}
AWS_STACKS = [s for s in STACKS if STACK_CLOUD[s] == "aws"]
GCP_STACKS = [s for s in STACKS if STACK_CLOUD[s] == "gcp"]
AZURE_STACKS = [s for s in STACKS if STACK_CLOUD[s] == "azure"]


def pytest_configure(config):
    config.addinivalue_line("markers", "cloud(*clouds): run this `run`-parametrized test only for stacks on these clouds")


def pytest_collection_modifyitems(config, items):
    """A test marked `@pytest.mark.cloud("aws")` checks AWS resources: it runs for the AWS stacks'
    `run` parameters only (deselected, not skipped, for the others)."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("cloud")
        params = getattr(getattr(item, "callspec", None), "params", {})
        stack = params["run"][0] if "run" in params else params.get("stack")
        if marker is not None and stack is not None and STACK_CLOUD.get(stack) not in marker.args:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep

_runs: dict[tuple[str, str], ProgramRun] = {}


def program_run(stack: str, mode: str) -> ProgramRun:
    key = (stack, mode)
    if key not in _runs:
        _runs[key] = run_program(load_stack_file(stack), preview=(mode == "preview"))
    return _runs[key]


@pytest.fixture(params=[(s, m) for s in STACKS for m in MODES], ids=lambda p: f"{p[0]}-{p[1]}")
def run(request) -> ProgramRun:
    stack, mode = request.param
    result = program_run(stack, mode)
    assert result.error is None, f"program failed for {stack} ({mode}): {result.error}"
    return result


@pytest.fixture
def stack_config(run: ProgramRun):
    """The validated StackConfig of the stack under test."""
    return load_stack_file(run.stack).validate()


def dev_config_values() -> dict[str, Any]:
    """A deep copy of dev's `config:` map, for tests that mutate one value."""
    return copy.deepcopy(yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())["config"])


def stack_from(values: dict[str, Any], name: str = "dev") -> StackFile:
    return stack_file_from_values(name, values)


def inputs_of(run: ProgramRun, type_token: str) -> list[dict[str, Any]]:
    return [r.inputs for r in run.of_type(type_token)]


EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
AKS_AGENT_POOL = "azure-native:containerservice:AgentPool"
AKS_CLUSTER = "azure-native:containerservice:ManagedCluster"
_CLOUD_TAINT_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def node_pools(run: ProgramRun) -> list[dict[str, Any]]:
    """Every node group (EKS) or node pool (GKE) as one shape: its labels, its taints as Kubernetes
    writes them (key, value, NoSchedule), whether it is spot, and the registered inputs."""
    pools = []
    for r in run.of_type(EKS_NODE_GROUP):
        pools.append({"labels": r.inputs["labels"], "taints": r.inputs.get("taints") or [], "spot": r.inputs["capacityType"] == "SPOT", "inputs": r.inputs})
    for r in run.of_type(GKE_NODE_POOL):
        node = r.inputs["nodeConfig"]
        pools.append({"labels": node["labels"], "taints": node.get("taints") or [], "spot": bool(node.get("spot")), "inputs": r.inputs})
    for pool in pools:
        pool["taints"] = [(t["key"], t["value"], _CLOUD_TAINT_EFFECTS[t["effect"]]) for t in pool["taints"]]
    # AKS writes taints as Kubernetes does ("key=value:NoSchedule"); its system pool is inside the cluster.
    aks = [(r.inputs, r.inputs.get("scaleSetPriority") == "Spot") for r in run.of_type(AKS_AGENT_POOL)]
    aks += [(profile, profile.get("scaleSetPriority") == "Spot") for r in run.of_type(AKS_CLUSTER) for profile in r.inputs["agentPoolProfiles"]]
    for inputs, spot in aks:
        taints = [(t.split("=", 1)[0], t.split("=", 1)[1].split(":")[0], t.rsplit(":", 1)[1]) for t in inputs.get("nodeTaints") or []]
        pools.append({"labels": inputs["nodeLabels"], "taints": taints, "spot": spot, "inputs": inputs})
    for pool in pools:
        pool["role"] = pool["labels"].get("llm-platform.io/node-role")
        pool["name"] = pool["labels"].get("llm-platform.io/pool")
    return pools

