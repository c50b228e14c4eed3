"""The offline plan's three output contracts (text, --json, --render) and the schema command."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml
from conftest import PROJECT_DIR, STACKS, program_run

from stacks.config_reference import BEGIN, END, config_reference_markdown
from stacks.offline import ProgramRun, RegisteredResource
from stacks.plan import HELM_RELEASE_TYPE, write_render
from stacks.stack_files import load_stack_file

RESOURCE_KEYS = {"urn", "type", "name", "parent", "dependencies", "protect", "custom", "inputs"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stacks", *args], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module", params=STACKS)
def plan_outputs(request, tmp_path_factory):
    stack = request.param
    out = tmp_path_factory.mktemp(f"plan-{stack}")
    result = _cli("plan", stack, "--json", str(out / "plan.json"), "--render", str(out / "render"))
    assert result.returncode == 0, result.stderr
    return stack, result.stdout, json.loads((out / "plan.json").read_text()), out / "render"


def test_text_plan_shows_the_tree_and_counts(plan_outputs):
    stack, text, document, _ = plan_outputs
    run = program_run(stack, "preview")
    assert text.startswith(f"Offline plan of stack '{stack}'")
    for res in run.resources:
        assert re.search(rf"{re.escape(res.type)}\s+{re.escape(res.name)}", text), res.urn
    customs = sum(r.custom for r in run.resources)
    assert f"Resources: {len(run.resources)} to create ({customs} resources, {len(run.resources) - customs} components)" in text
    pool_types = ("aws:eks/nodeGroup:NodeGroup", "gcp:container/nodePool:NodePool", "azure-native:containerservice:AgentPool")
    (pool_type,) = [t for t in pool_types if run.of_type(t)]
    pools = len(run.of_type(pool_type))
    assert pools >= 1 and re.search(rf"^\s+{pools}  {re.escape(pool_type)}$", text, re.M)
    assert "kubeconfig: [secret]" in text


def test_json_plan_lists_every_registered_resource(plan_outputs):
    stack, _, document, _ = plan_outputs
    run = program_run(stack, "preview")
    assert document["stack"] == stack and document["project"] == "llm-platform" and document["preview"] is True
    assert sorted(r["urn"] for r in document["resources"]) == sorted(r.urn for r in run.resources)
    urns = {r["urn"] for r in document["resources"]}
    for res in document["resources"]:
        assert set(res) == RESOURCE_KEYS
        assert set(res["dependencies"]) <= urns
        assert res["parent"] == "" or res["parent"] in urns
    groups = [r for r in document["resources"] if r["type"] == "aws:eks/nodeGroup:NodeGroup"]
    assert all("instanceTypes" in g["inputs"] and "scalingConfig" in g["inputs"] for g in groups)  # wire names
    assert document["outputs"]["kubeconfig"] == "[secret]"


def test_json_plan_is_byte_stable(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert _cli("plan", "prod", "--quiet", "--json", str(first)).returncode == 0
    assert _cli("plan", "prod", "--quiet", "--json", str(second)).returncode == 0
    assert first.read_bytes() == second.read_bytes()


def test_json_plan_marks_protected_resources(plan_outputs):
    stack, _, document, _ = plan_outputs
    protected = {r["type"] for r in document["resources"] if r["protect"]}
    assert bool(protected) == load_stack_file(stack).validate().cluster.protect


def test_render_writes_each_kubernetes_object_once(plan_outputs):
    stack, _, document, render_dir = plan_outputs
    expected = [r for r in document["resources"] if r["custom"] and r["type"].startswith("kubernetes:")]
    files = sorted(render_dir.rglob("*.yaml"))
    assert len(files) == len(expected) >= 1
    for path in files:
        doc = yaml.safe_load(path.read_text())
        if path.relative_to(render_dir).parts[0] == "HelmRelease":
            assert {"release", "chart", "version", "values"} <= set(doc) and path.stem == doc["release"]
            continue
        assert {"apiVersion", "kind", "metadata"} <= set(doc)
        assert path.relative_to(render_dir).parts[0] == doc["kind"]
        assert path.stem == doc["metadata"]["name"]
    cloud = load_stack_file(stack).validate().cloud
    block, provisioner = {"aws": ("gp3", "ebs.csi.aws.com"), "gcp": ("pd-balanced", "pd.csi.storage.gke.io"), "azure": ("managed-csi-premium-zrs", "disk.csi.azure.com")}[cloud]
    storage_class = yaml.safe_load((render_dir / "StorageClass" / f"{block}.yaml").read_text())
    assert storage_class["provisioner"] == provisioner
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"


def test_render_writes_a_helm_release_as_chart_repository_version_and_values(tmp_path):
    release = RegisteredResource(
        urn="urn:pulumi:dev::llm-platform::llm-platform:addons:Keda$kubernetes:helm.sh/v3:Release::keda",
        type=HELM_RELEASE_TYPE,
        name="keda",
        parent="",
        dependencies=[],
        protect=False,
        custom=True,
        provider="",
        inputs={
            "name": "keda",
            "namespace": "keda",
            "chart": "keda",
            "version": "2.20.2",
            "repositoryOpts": {"repo": "https://kedacore.github.io/charts"},
            "values": {"operator": {"replicaCount": 2}},
        },
    )
    run = ProgramRun(stack="dev", project="llm-platform", preview=True, resources=[release])
    (path,) = write_render(run, tmp_path)
    assert path == tmp_path / "HelmRelease" / "keda" / "keda.yaml"
    assert yaml.safe_load(path.read_text()) == {
        "release": "keda",
        "namespace": "keda",
        "chart": "keda",
        "repository": "https://kedacore.github.io/charts",
        "version": "2.20.2",
        "values": {"operator": {"replicaCount": 2}},
    }


def test_schema_is_valid_and_accepts_every_stack():
    result = _cli("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    for stack in STACKS:
        jsonschema.validate(load_stack_file(stack).namespace_values(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**load_stack_file("dev").namespace_values(), "gpuPools": [{"name": "x"}]}, schema)


def test_config_reference_page_matches_the_schema():
    readme = (PROJECT_DIR / "docs" / "config-reference.md").read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    assert readme[start:end] + "\n" == config_reference_markdown(), "run `make docs` to regenerate docs/config-reference.md"
