"""`python -m stacks diff`: what a PR changes in resources, model capacity and the GPU bill."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import PROJECT_DIR, STACKS, dev_config_values, program_run, stack_from

from stacks.diff import FORCE_NEW, changed_keys, diff_documents, render
from stacks.offline import run_program
from stacks.plan import plan_document

NS = "llm-platform"


def _document(values) -> dict:
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    return json.loads(json.dumps(plan_document(run)))


def _base() -> dict:
    return json.loads(json.dumps(plan_document(program_run("dev", "preview"))))


def test_an_unchanged_stack_has_no_changes_and_no_cost_delta():
    diff = diff_documents(_base(), _base())
    assert diff.ok and diff.changes == []
    assert all(row["delta"] == 0 for row in diff.cost.values())
    assert [m["before"] == m["after"] for m in diff.models] == [True]


def test_changed_instance_types_replace_the_node_group_and_say_why():
    values = dev_config_values()
    values[f"{NS}:gpuPools"][0]["instanceTypes"] = ["g6.xlarge"]
    diff = diff_documents(_base(), _document(values))
    (group,) = [c for c in diff.changes if c.type == "aws:eks/nodeGroup:NodeGroup"]
    assert group.action == "replace" and group.keys == ["instanceTypes"]
    assert group.reasons == ["instanceTypes: EKS node groups cannot change instance types"]
    # the spot pool is priced at its dearest type: one cheaper type lowers the maximum
    assert diff.cost["max"]["delta"] < 0 and diff.cost["max"]["delta"] == round(diff.cost["max"]["after"] - diff.cost["max"]["before"], 2)


def test_a_longer_context_is_an_update_with_less_concurrency():
    values = dev_config_values()
    values[f"{NS}:models"][0]["maxModelLen"] = 32768
    diff = diff_documents(_base(), _document(values))
    deployments = [c for c in diff.changes if c.type == "kubernetes:apps/v1:Deployment"]
    assert [c.action for c in deployments] == ["update"]
    assert "spec.template.spec.containers" in deployments[0].keys
    (model,) = diff.models
    assert model["after"]["kvCacheTokens"] == model["before"]["kvCacheTokens"]
    assert model["after"]["maxConcurrency"] < model["before"]["maxConcurrency"]


def test_added_and_removed_models_are_creates_and_deletes():
    values = dev_config_values()
    extra = dict(values[f"{NS}:models"][0], name="qwen3-4b-b")
    values[f"{NS}:models"].append(extra)
    head = _document(values)
    added = diff_documents(_base(), head)
    assert added.count("create") >= 8 and added.count("delete") == 0
    assert {m["model"]: m["before"] for m in added.models}["qwen3-4b-b"] is None
    removed = diff_documents(head, _base())
    assert removed.count("delete") == added.count("create") and removed.count("create") == 0


def test_a_new_stack_is_all_creates():
    diff = diff_documents(None, _base(), "dev")
    assert diff.ok and diff.count("create") == len(_base()["resources"])
    assert diff.cost["min"]["before"] is None and diff.cost["min"]["delta"] is None


def test_an_invalid_head_is_a_red_result_with_its_errors():
    head = {"stack": "dev", "errors": ["Pulumi.dev.yaml: llm-platform:gpuPools[0].maxSize: must be ≥ minSize (2)"]}
    diff = diff_documents(_base(), head)
    assert not diff.ok and diff.errors == [f"head: {head['errors'][0]}"]
    markdown = render([diff], "markdown")
    assert ":x:" in markdown and "gpuPools[0].maxSize" in markdown


def test_force_new_rules_name_types_the_program_registers():
    registered = {r.type for stack in STACKS for r in program_run(stack, "preview").resources}
    assert {token for token, _ in FORCE_NEW} <= registered


def test_changed_keys_are_dotted_leaf_paths():
    before = {"spec": {"replicas": 1, "template": {"args": ["a"]}}, "gone": 1}
    after = {"spec": {"replicas": 2, "template": {"args": ["a", "b"]}}, "new": {"x": 1}}
    assert changed_keys(before, after) == ["gone", "new.x", "spec.replicas", "spec.template.args"]


def test_markdown_is_one_summary_table_with_folded_details_and_json_parses():
    values = dev_config_values()
    values[f"{NS}:gpuPools"][0]["instanceTypes"] = ["g6.xlarge"]
    diff = diff_documents(_base(), _document(values))
    markdown = render([diff], "markdown")
    assert markdown.startswith("### `dev`: ") and "**1 to replace**" in markdown
    assert "| cost at max scale (USD/month) |" in markdown and "<details>" in markdown and "</details>" in markdown
    (document,) = json.loads(render([diff], "json"))
    assert document["summary"]["replace"] == 1 and document["ok"] is True


def test_cli_diffs_directories_and_an_invalid_stack_exits_2_without_a_traceback(tmp_path):
    base, head, stacks = tmp_path / "base", tmp_path / "head", tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.dev.yaml").write_text((PROJECT_DIR / "Pulumi.dev.yaml").read_text().replace("maxSize: 3\n  llm-platform:addons", "maxSize: 0\n  llm-platform:addons", 1))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "stacks", *args], cwd=PROJECT_DIR, capture_output=True, text=True)

    assert cli("plan", "dev", "--quiet", "--json", str(base / "dev.json")).returncode == 0
    invalid = cli("plan", "dev", "--quiet", "--stack-dir", str(stacks), "--json", str(head / "dev.json"))
    assert invalid.returncode == 2 and json.loads((head / "dev.json").read_text())["errors"]
    result = cli("diff", str(base), str(head), "--format", "markdown")
    assert result.returncode == 2 and ":x: `dev`: config errors" in result.stdout and "Traceback" not in result.stderr
    same = cli("diff", str(base / "dev.json"), str(base / "dev.json"))
    assert same.returncode == 0 and same.stdout.startswith("stack dev: 0 to create, 0 to update, 0 to replace, 0 to delete")
