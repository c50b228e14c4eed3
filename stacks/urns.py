"""Every stack's URNs, pinned: a URN that changes is a resource Pulumi replaces (a new EKS cluster,
an emptied EFS) unless an alias tells the engine the old name.

`tests/urns/<stack>.txt` holds the URNs of each stack as the offline plan registers them. The test
fails when a pinned URN is neither registered nor reachable through an alias (something would be
replaced), or when a registered URN is not pinned (a new or renamed resource: look, then run
`make urns` to pin it on purpose). Aliases are resolved as the engine resolves them: a resource's
own aliases, and every old URN of its parent, which its children inherit.

URNs are the mock monitor's (`pulumi.runtime.mocks`): the parent's last type segment, `$`, the
type. The engine writes the whole chain, but both change exactly when a type, a name or a parent
changes, which is what this guards.
"""

from __future__ import annotations

from pathlib import Path

from . import PROJECT_DIR
from .offline import ProgramRun, RegisteredResource

SNAPSHOT_DIR = PROJECT_DIR / "tests" / "urns"
HEADER = "# URNs of this stack, pinned. Regenerate on purpose with `make urns` (python -m stacks urns <stack> --write).\n"


def make_urn(stack: str, project: str, parent_urn: str, type_: str, name: str) -> str:
    if parent_urn:
        type_ = parent_urn.split("::")[2].split("$")[-1] + "$" + type_
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


def known_urns(run: ProgramRun) -> dict[str, set[str]]:
    """URN -> every URN the engine would take as this resource: its own, its aliases', and those
    its parent's old URNs give it."""
    by_urn = {r.urn: r for r in run.resources}
    memo: dict[str, set[str]] = {}

    def names(resource: RegisteredResource) -> set[str]:
        if resource.urn in memo:
            return memo[resource.urn]
        parent = by_urn.get(resource.parent)
        parents = names(parent) if parent else {resource.parent}

        def urn(parent_urn: str, type_: str = resource.type, name: str = resource.name) -> str:
            return make_urn(run.stack, run.project, parent_urn, type_, name)

        found = {resource.urn} | {urn(p) for p in parents}
        for alias in resource.aliases:
            if "urn" in alias:
                found.add(alias["urn"])
                continue
            spec = alias.get("spec", {})
            candidates = {""} if spec.get("noParent") else {spec["parentUrn"]} if spec.get("parentUrn") else parents
            found |= {urn(p, spec.get("type") or resource.type, spec.get("name") or resource.name) for p in candidates}
        memo[resource.urn] = found
        return found

    return {r.urn: names(r) for r in run.resources}


def snapshot_path(stack: str) -> Path:
    return SNAPSHOT_DIR / f"{stack}.txt"


def read_snapshot(stack: str) -> list[str]:
    return [line for line in snapshot_path(stack).read_text().splitlines() if line and not line.startswith("#")]


def render_snapshot(run: ProgramRun) -> str:
    return HEADER + "".join(f"{urn}\n" for urn in sorted(r.urn for r in run.resources))


def snapshot_problems(run: ProgramRun, pinned: list[str]) -> list[str]:
    known = known_urns(run)
    reachable = set().union(*known.values())
    lost = [f"would be replaced or deleted (no resource or alias has it): {urn}" for urn in pinned if urn not in reachable]
    pinned_set = set(pinned)
    new = [f"not pinned (new or renamed; `make urns` pins it): {urn}" for urn in sorted(known) if urn not in pinned_set]
    return lost + new
