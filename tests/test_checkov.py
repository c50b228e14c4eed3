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

from components.catalog.images import catalog_images
from stacks.plan import write_render

CHECKOV = Path(os.environ.get("LLM_PLATFORM_CHECKOV", PROJECT_DIR / ".ci" / "checkov" / "venv" / "bin" / "checkov"))
CONFIG = PROJECT_DIR / ".checkov.yaml"


# Skipped in .checkov.yaml, but run here: it may fail only on the catalog's images whose digest is
# not resolved yet (components/catalog/data/images.yaml), never on another image.
DIGEST_CHECK = "CKV_K8S_43"


def _config_running_the_digest_check(directory: Path) -> Path:
    config = yaml.safe_load(CONFIG.read_text())
    config["skip-check"] = [c for c in config["skip-check"] if c != DIGEST_CHECK]
    path = directory / "checkov.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _unresolved_image(image: str) -> bool:
    """A catalog image without its digest, pulled from where the cluster pulls it (GKE's mirror
    of Docker Hub prefixes the name)."""
    references = [i.reference.removeprefix("docker.io/") for i in catalog_images().values() if not i.pinned]
    return any(image.removeprefix("docker.io/") == ref or image.endswith(f"/{ref}") for ref in references)


def _images(manifest: dict) -> list[str]:
    spec = manifest["spec"]
    pod = spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec", spec)
    return [c["image"] for key in ("initContainers", "containers") for c in pod.get(key, [])]


def _scan(directory: Path, config: Path = CONFIG) -> list[dict]:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: `make checkov-venv` installs it"
    result = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--config-file", str(config), "--output", "json", "--compact"],
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


def test_the_digest_skip_lasts_only_while_an_image_is_unresolved():
    unresolved = [i.key for i in catalog_images().values() if not i.pinned]
    skipped = DIGEST_CHECK in yaml.safe_load(CONFIG.read_text())["skip-check"]
    assert skipped == bool(unresolved), f"unresolved: {unresolved}; drop {DIGEST_CHECK} from .checkov.yaml once every digest is recorded"


@pytest.mark.parametrize("stack", STACKS)
def test_checkov_finds_nothing_in_the_rendered_manifests(stack, tmp_path):
    run = program_run(stack, "preview")
    assert run.error is None, run.error
    rendered = tmp_path / "rendered"
    written = write_render(run, rendered)
    assert any(p.parent.parent.name == "Deployment" for p in written)
    reports = [r for r in _scan(rendered, _config_running_the_digest_check(tmp_path)) if r.get("check_type") == "kubernetes"]
    assert reports, "checkov scanned nothing"
    failed = [(f["check_id"], f["resource"], f["file_path"]) for r in reports for f in r["results"]["failed_checks"]]
    assert [(check, resource) for check, resource, _ in failed if check != DIGEST_CHECK] == []
    for _, resource, file_path in failed:
        unpinned = [i for i in _images(yaml.safe_load((rendered / file_path.lstrip("/")).read_text())) if "@sha256:" not in i]
        assert unpinned and all(_unresolved_image(i) for i in unpinned), (resource, unpinned)
    # it really read the workloads: NET_RAW and all capabilities dropped, non-root, read-only
    # root, seccomp, and every pod under a NetworkPolicy
    passed = {f["check_id"] for r in reports for f in r["results"]["passed_checks"]}
    assert DIGEST_CHECK in passed | {check for check, _, _ in failed}  # the digest check ran
    assert {"CKV_K8S_28", "CKV_K8S_37", "CKV_K8S_23", "CKV_K8S_40", "CKV_K8S_22", "CKV_K8S_31", "CKV2_K8S_6"} <= passed, passed
