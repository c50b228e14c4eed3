"""checkov 3.3 (kubernetes framework) over every stack's rendered manifests, as a third-party
scanner sees them: no failed check but the ones `.checkov.yaml` skips, each with its reason."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_DIR, STACKS, program_run

from stacks.plan import write_render

CHECKOV = Path(os.environ.get("LLM_PLATFORM_CHECKOV", PROJECT_DIR / ".ci" / "checkov" / "venv" / "bin" / "checkov"))
CONFIG = PROJECT_DIR / ".checkov.yaml"


def _scan(directory: Path) -> list[dict]:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: `make checkov-venv` installs it"
    result = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--config-file", str(CONFIG), "--output", "json", "--compact"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]


def test_every_skip_says_why():
    text = CONFIG.read_text()
    skipped = yaml.safe_load(text)["skip-check"]
    assert skipped and len(set(skipped)) == len(skipped)
    lines = text.splitlines()
    for check in skipped:
        at = lines.index(f"  - {check}")
        assert lines[at - 1].lstrip().startswith(("#", "- CKV")), check  # a comment above (or a neighbour sharing it)
    assert not {"CKV_K8S_28", "CKV_K8S_37", "CKV_K8S_20", "CKV_K8S_23", "CKV_K8S_40", "CKV2_K8S_6"} & set(skipped)  # caps, root, policies


@pytest.mark.parametrize("stack", STACKS)
def test_checkov_finds_nothing_in_the_rendered_manifests(stack, tmp_path):
    run = program_run(stack, "preview")
    assert run.error is None, run.error
    written = write_render(run, tmp_path)
    assert any(p.parent.parent.name == "Deployment" for p in written)
    reports = [r for r in _scan(tmp_path) if r.get("check_type") == "kubernetes"]
    assert reports, "checkov scanned nothing"
    failed = [(f["check_id"], f["resource"]) for r in reports for f in r["results"]["failed_checks"]]
    assert failed == []
    # it really read the workloads: NET_RAW and all capabilities dropped, non-root, read-only
    # root, seccomp, and every pod under a NetworkPolicy
    passed = {f["check_id"] for r in reports for f in r["results"]["passed_checks"]}
    assert {"CKV_K8S_28", "CKV_K8S_37", "CKV_K8S_23", "CKV_K8S_40", "CKV_K8S_22", "CKV_K8S_31", "CKV2_K8S_6"} <= passed, passed
