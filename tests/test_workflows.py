"""The GitHub workflows: both linters clean, the shape reviewers rely on (who gets credentials, what
runs for forks, what waits for whom), and the scripts the pull-request job runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from conftest import PROJECT_DIR, STACKS
from policy.rules import CONFIG_SCHEMAS
from stacks.ci_matrix import ci_matrix
from stacks.stack_files import StackFileError

GITHUB = PROJECT_DIR / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))
ACTIONLINT = PROJECT_DIR / ".ci" / "actionlint" / "run.cjs"
ZIZMOR = Path(sys.executable).parent / "zizmor"
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})$")


def _load(path: Path) -> dict[str, Any]:
    # PyYAML reads the key `on` as True (YAML 1.1); the workflows' trigger map is under it.
    document = yaml.safe_load(path.read_text())
    if True in document:
        document["on"] = document.pop(True)
    return document


def workflow(name: str) -> dict[str, Any]:
    return _load(GITHUB / "workflows" / name)


def _steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in document:
        return document["runs"].get("steps", [])
    return [s for job in document["jobs"].values() for s in job.get("steps", [])]


def _uses_lines() -> list[tuple[Path, str, str]]:
    """Every remote `uses:` with the comment after it (the version), as written."""
    found = []
    for path in [*WORKFLOWS, *ACTIONS]:
        for line in path.read_text().splitlines():
            m = re.match(r"^\s*(?:- )?uses:\s*(?P<ref>\S+)\s*(?:#\s*(?P<comment>.*))?$", line)
            if m and not m["ref"].startswith("./"):
                found.append((path, m["ref"], (m["comment"] or "").strip()))
    return found


def _node_modules_ready() -> None:
    if not (ACTIONLINT.parent / "node_modules" / "@tktco" / "node-actionlint").is_dir():
        pytest.fail("actionlint's WebAssembly build is not installed: run `make actionlint-wasm` (make test does)")


def actionlint(*files: Path) -> list[dict[str, Any]]:
    _node_modules_ready()
    result = subprocess.run(["node", str(ACTIONLINT), "--json", *map(str, files)], capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def zizmor(*inputs: Path, cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN")}  # else it goes online
    return subprocess.run([str(ZIZMOR), "--offline", *map(str, inputs)], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


# --- the linters ------------------------------------------------------------------------------------


def test_the_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"pull-request.yml", "deploy.yml", "drift.yml"}
    assert {p.parent.name for p in ACTIONS} == {"setup", "cloud-login"}


def test_zizmor_finds_nothing():
    result = zizmor(GITHUB)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_zizmor_ignores_only_what_its_config_explains():
    config = yaml.safe_load((GITHUB / "zizmor.yml").read_text())
    assert set(config["rules"]) == {"self-repository"}
    text = (GITHUB / "zizmor.yml").read_text()
    assert "rhysd/actionlint#711" in text  # the reason, where it can be checked


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_finds_nothing(path):
    assert actionlint(path) == []


def test_the_linters_catch_what_they_are_here_for(tmp_path):
    """A negative control: an injected expression, an unpinned action and a broken matrix reference
    are caught, so the clean results above mean something."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: pull_request_target\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with:\n"
        "          ref: ${{ github.event.pull_request.head.sha }}\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
        "      - run: echo ${{ matrix.missing }}\n"
    )
    kinds = {p["kind"] for p in actionlint(bad)}
    assert {"expression"} <= kinds
    messages = " ".join(p["message"] for p in actionlint(bad))
    assert "potentially untrusted" in messages and "missing" in messages
    result = zizmor(tmp_path / ".github", cwd=tmp_path)
    assert result.returncode >= 10, result.stdout
    for audit in ("dangerous-triggers", "template-injection", "unpinned-uses", "artipacked"):
        assert f"[{audit}]" in result.stdout, audit


# --- pinning ------------------------------------------------------------------------------------------


def test_every_action_is_pinned_by_full_sha_with_its_version():
    uses = _uses_lines()
    assert uses
    for path, ref, comment in uses:
        assert PINNED.match(ref), f"{path.name}: {ref} is not pinned by a full commit SHA"
        assert re.fullmatch(r"v\d+\.\d+\.\d+", comment), f"{path.name}: {ref} has no `# vX.Y.Z` comment"


def test_one_action_one_pin():
    """Upgrading an action is one SHA in every file, never two versions of it at once."""
    pins: dict[str, set[tuple[str, str]]] = {}
    for _, ref, comment in _uses_lines():
        m = PINNED.match(ref)
        pins.setdefault(m["action"], set()).add((m["sha"], comment))
    assert {a: len(p) for a, p in pins.items() if len(p) > 1} == {}
    assert set(pins) == {
        "actions/checkout",
        "actions/setup-python",
        "pulumi/actions",
        "pulumi/auth-actions",
        "aws-actions/configure-aws-credentials",
        "google-github-actions/auth",
        "google-github-actions/setup-gcloud",
        "azure/login",
    }


def test_the_pulumi_cli_is_pinned_and_new_enough_for_drift():
    """drift.yml relies on `--expect-no-changes` failing with exit 7, which the CLI has since 3.226.1."""
    version = (PROJECT_DIR / ".pulumi-version").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert tuple(map(int, version.split("."))) >= (3, 226, 1)
    for path in WORKFLOWS:
        for step in _steps(_load(path)):
            if step.get("uses", "").startswith("pulumi/actions@"):
                assert step["with"]["pulumi-version-file"] == ".pulumi-version", path.name


# --- who gets what ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege(path):
    document = _load(path)
    assert document["permissions"] == {}, "workflow default: nothing; each job asks for what it needs"
    for name, job in document["jobs"].items():
        assert "permissions" in job, f"{name} has no permissions block"
        assert job["permissions"].get("contents") == "read", name
        writes = {k for k, v in job["permissions"].items() if v == "write"}
        assert writes <= {"id-token", "pull-requests"}, name
        uses_cloud = any(s.get("uses", "").startswith(("pulumi/auth-actions@", "./.github/actions/cloud-login")) for s in job.get("steps", []))
        assert ("id-token" in writes) == uses_cloud, f"{name}: id-token: write exactly where OIDC is used"
    assert "pull_request_target" not in document["on"] and "workflow_run" not in document["on"]


def test_checkouts_do_not_keep_the_token():
    for path in [*WORKFLOWS, *ACTIONS]:
        for step in _steps(_load(path)):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, path.name


def test_pull_request_offline_job_needs_no_secret():
    """It must run for forks, whose runs get no secrets and a read-only token."""
    job = workflow("pull-request.yml")["jobs"]["offline"]
    text = yaml.safe_dump(job)
    assert "secrets." not in text and "vars." not in text
    assert "id-token" not in job["permissions"]
    assert "if" not in job
    runs = [s.get("run", "") for s in job["steps"]]
    assert any(r.startswith(".ci/pr-report ") for r in runs)
    assert any("make lint test" in r for r in runs)
    comment = next(s for s in job["steps"] if ".ci/sticky-comment" in s.get("run", ""))
    assert "github.event.pull_request.head.repo.full_name == github.repository" in comment["if"]
    assert comment["env"]["GH_TOKEN"] == "${{ github.token }}"
    checkout = job["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0  # the merge base must be reachable


def test_pull_request_preview_runs_only_for_this_repository_with_the_policy_pack():
    jobs = workflow("pull-request.yml")["jobs"]
    assert jobs["stacks"]["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    preview = jobs["preview"]
    assert preview["needs"] == "stacks"
    assert preview["strategy"]["matrix"] == "${{ fromJSON(needs.stacks.outputs.matrix) }}"
    assert preview["strategy"]["fail-fast"] is False
    step = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert step["with"]["command"] == "preview"
    assert step["with"]["comment-on-pr"] is True and step["with"]["diff"] is True and step["with"]["refresh"] is True
    assert step["with"]["policyPacks"] == "policy"
    assert (PROJECT_DIR / step["with"]["policyPackConfigs"]).is_file()
    assert step["with"]["stack-name"] == "${{ vars.PULUMI_ORG }}/${{ matrix.stack }}"


def test_deploy_goes_dev_then_production_one_update_per_stack():
    document = workflow("deploy.yml")
    assert document["on"]["push"]["branches"] == ["main"]
    jobs = document["jobs"]
    assert set(jobs["dev"]["needs"]) == {"checks", "stacks"}
    assert "dev" in jobs["production"]["needs"]
    assert jobs["dev"]["environment"] == "dev" and jobs["production"]["environment"] == "production"
    for name in ("dev", "production"):
        job = jobs[name]
        assert job["strategy"]["matrix"] == f"${{{{ fromJSON(needs.stacks.outputs.{name}) }}}}"
        # one group per stack, shared by both jobs' matrices; a queued update waits, never cancels
        assert job["concurrency"] == {"group": "pulumi-up-${{ matrix.stack }}", "cancel-in-progress": False}
        step = next(s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
        assert step["with"]["command"] == "up" and step["with"]["policyPacks"] == "policy"
        login = next(s for s in job["steps"] if s.get("uses") == "./.github/actions/cloud-login")
        assert "DEPLOY" in login["with"]["aws-role-arn"]  # the environment's deploy identity, not the preview one
    assert "make lint test" in jobs["checks"]["steps"][-1]["run"]


def test_drift_fails_on_any_change():
    document = workflow("drift.yml")
    assert document["on"]["schedule"][0]["cron"]
    step = next(s for s in document["jobs"]["drift"]["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert step["with"]["command"] == "preview"
    assert step["with"]["refresh"] is True and step["with"]["expect-no-changes"] is True
    assert "policyPacks" not in step["with"]  # drift is about the cloud, not the code


def test_cloud_login_uses_each_clouds_official_action():
    steps = _load(GITHUB / "actions" / "cloud-login" / "action.yml")["runs"]["steps"]
    by_cloud: dict[str, list[str]] = {}
    for step in steps:
        cloud = re.fullmatch(r"inputs\.cloud == '(\w+)'", step["if"])[1]
        by_cloud.setdefault(cloud, []).append(step.get("uses", "run").split("@")[0])
    assert by_cloud == {
        "aws": ["aws-actions/configure-aws-credentials"],
        "gcp": ["google-github-actions/auth", "google-github-actions/setup-gcloud"],
        "azure": ["azure/login", "run"],
    }


# --- the stack matrix -------------------------------------------------------------------------------


def test_the_matrix_has_every_stack_file_once():
    entries = ci_matrix()["include"]
    assert [e["stack"] for e in entries] == STACKS
    for e in entries:
        assert e["environment"] == ("production" if e["stack"].startswith("prod") else "dev")
        assert e["cloud"] in ("aws", "gcp", "azure") and e["region"]
    assert {e["stack"] for e in ci_matrix("production")["include"]} == {s for s in STACKS if s.startswith("prod")}


def test_the_matrix_names_the_stack_file_and_key_it_cannot_read(tmp_path):
    (tmp_path / "Pulumi.broken.yaml").write_text("config:\n  llm-platform:cloud: oci\n  llm-platform:region: x\n")
    with pytest.raises(StackFileError, match=r"Pulumi\.broken\.yaml: llm-platform:cloud: .*'oci'"):
        ci_matrix(project_dir=tmp_path)
    result = subprocess.run([sys.executable, "-m", "stacks", "ci-matrix", "--stack-dir", str(tmp_path)], capture_output=True, text=True, cwd=PROJECT_DIR)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Pulumi.broken.yaml: llm-platform:cloud" in result.stderr


def test_the_policy_config_is_valid_for_the_pack():
    config = json.loads((PROJECT_DIR / "policy" / "config.json").read_text())
    assert set(config) <= set(CONFIG_SCHEMAS)
    for rule, values in config.items():
        jsonschema.validate(values, {"type": "object", "properties": CONFIG_SCHEMAS[rule], "additionalProperties": False})


# --- the pull request's report ---------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A copy of the project as a git repository: the base commit, then a head that raises dev's
    GPU pool maximum and breaks dev-gke's config. `.ci/pr-report` over those two stacks."""
    repo = tmp_path_factory.mktemp("pr") / "repo"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT_DIR, check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        if (PROJECT_DIR / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_DIR / name, repo / name)
    (repo / "venv").symlink_to(Path(sys.executable).parent.parent)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD")
    dev = yaml.safe_load((repo / "Pulumi.dev.yaml").read_text())
    pool = dev["config"]["llm-platform:gpuPools"][0]
    pool["maxSize"] = pool["maxSize"] + 2
    (repo / "Pulumi.dev.yaml").write_text(yaml.safe_dump(dev, sort_keys=False))
    gke = yaml.safe_load((repo / "Pulumi.dev-gke.yaml").read_text())
    gke["config"]["llm-platform:region"] = "moon-1"
    (repo / "Pulumi.dev-gke.yaml").write_text(yaml.safe_dump(gke, sort_keys=False))
    _git(repo, "commit", "-qam", "head")
    result = subprocess.run(
        [str(repo / ".ci" / "pr-report"), base, str(repo / ".plan" / "pr")],
        capture_output=True, text=True, env={**os.environ, "STACKS": "dev dev-gke"}, timeout=600,
    )
    return result, repo / ".plan" / "pr"


def test_report_is_red_for_an_invalid_head_and_still_writes_the_comment(report):
    result, out = report
    assert result.returncode == 1, result.stderr
    comment = (out / "comment.md").read_text()
    assert comment.startswith("<!-- llm-platform:pr-report -->\n")
    assert "### :x: `dev-gke`: config errors" in comment
    assert "llm-platform:region" in comment and "Traceback" not in comment
    assert sorted(p.name for p in (out / "base").glob("*.json")) == ["dev-gke.json", "dev.json"]
    assert not (out / "base-src").exists()  # the worktree is removed


def test_report_shows_the_change_its_cost_and_the_policy(report):
    _, out = report
    comment = (out / "comment.md").read_text()
    dev = comment[comment.index("### `dev`:"):comment.index("### :x: `dev-gke`")]
    assert "1 to update" in dev
    max_row = next(line for line in dev.splitlines() if line.startswith("| cost at max scale"))
    before, after, delta = (float(c.replace(",", "").replace("+", "")) for c in max_row.strip("|").split("|")[1:4])
    assert after > before and delta == pytest.approx(after - before, abs=1)
    assert "Policy pack: no mandatory violation" in comment
    assert "dev-gke.json: skipped, its config is invalid" in comment


# --- the sticky comment ----------------------------------------------------------------------------

_FAKE_GH = """#!/usr/bin/env python3
import json, os, sys
log = os.environ["GH_LOG"]
with open(log, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if "--paginate" in sys.argv:
    for c in json.loads(os.environ["GH_COMMENTS"]):
        if c["user"] == "github-actions[bot]" and c["body"].startswith(os.environ["GH_MARKER"]):
            print(c["id"])
else:
    print("https://github.com/o/r/pull/7#issuecomment-1")
"""


def _sticky(tmp_path: Path, comments: list[dict[str, Any]], body: str) -> list[list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(_FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    (tmp_path / "body.md").write_text(body)
    log = tmp_path / "gh.log"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "GH_LOG": str(log),
        "GH_COMMENTS": json.dumps(comments),
        "GH_MARKER": body.splitlines()[0],
        "GITHUB_REPOSITORY": "o/r",
        "PR_NUMBER": "7",
    }
    result = subprocess.run([str(PROJECT_DIR / ".ci" / "sticky-comment"), str(tmp_path / "body.md")], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


MARKER = "<!-- llm-platform:pr-report -->"


def test_sticky_comment_is_created_once(tmp_path):
    calls = _sticky(tmp_path, [{"id": 5, "user": "someone", "body": MARKER + " copied by a person"}], MARKER + "\nreport")
    assert calls[-1][:3] == ["api", "--method", "POST"] and calls[-1][3] == "repos/o/r/issues/7/comments"


def test_sticky_comment_is_updated_in_place(tmp_path):
    calls = _sticky(tmp_path, [{"id": 42, "user": "github-actions[bot]", "body": MARKER + "\nold"}], MARKER + "\nnew")
    assert calls[-1][:4] == ["api", "--method", "PATCH", "repos/o/r/issues/comments/42"]
    assert calls[-1][5].startswith("body=@")


def test_sticky_comment_fits_githubs_limit(tmp_path):
    calls = _sticky(tmp_path, [], MARKER + "\n" + "x" * 70_000)
    body_file = Path(calls[-1][5].removeprefix("body=@"))
    assert len(body_file.read_text()) < 65_536
    assert "whole report is in the run summary" in body_file.read_text()
