"""`python -m stacks policy PLAN.json|DIR`: the policy pack's rules over offline plan JSONs, for the
pull-request job that has no credentials (`pulumi preview --policy-pack` needs the engine and the
cloud). Exit 1 on a mandatory violation; advisory ones are printed and pass."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from policy.rules import Resource, Violation, check

from .plan_files import PlanFileError, read_json_file, read_plan


def plan_resources(document: Mapping[str, Any]) -> list[Resource]:
    """The custom resources of a plan document, as the engine hands them to a policy."""
    return [Resource(r["type"], r.get("inputs", {}), r["urn"], r["name"]) for r in document.get("resources", []) if r.get("custom")]


def check_plan(document: Mapping[str, Any], config: Mapping[str, Mapping[str, Any]] | None = None) -> list[Violation]:
    return check(plan_resources(document), config)


def plan_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.json")) if path.is_dir() else [path]


def run_policy(path: Path, config_path: Path | None) -> tuple[int, str]:
    config = read_json_file(config_path, "a policy config") if config_path else {}
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        raise PlanFileError(f"{config_path}: not a policy config: an object of rule name to its settings")
    lines, mandatory = [], 0
    for plan in plan_files(path):
        document = read_plan(plan)
        if document.get("errors"):
            lines.append(f"{plan.name}: skipped, its config is invalid")
            continue
        violations = check_plan(document, config)
        mandatory += sum(v.level == "mandatory" for v in violations)
        lines.append(f"{plan.name}: {len(violations)} violation(s)")
        lines += [f"  {v.level}: {v.rule}: {v.urn or 'stack'}: {v.message}" for v in violations]
    return (1 if mandatory else 0), "\n".join(lines) + "\n"
