"""No change moves a URN silently: every stack's URNs are pinned in tests/urns/, aliases count."""

from __future__ import annotations

import pytest

from conftest import PROJECT_DIR, STACKS, program_run
from stacks.urns import known_urns, read_snapshot, snapshot_path, snapshot_problems

# Component types renamed since stacks were deployed: new type -> the type deployed stacks know.
RENAMED_TYPES = {"llm-platform:cluster:Karpenter": "llm-platform:addons:Karpenter"}


@pytest.mark.parametrize("stack", STACKS)
def test_urns_match_the_pinned_snapshot(stack):
    assert snapshot_path(stack).is_file(), f"no pinned URNs for {stack}: run `make urns`"
    problems = snapshot_problems(program_run(stack, "preview"), read_snapshot(stack))
    assert not problems, "\n".join(problems)


def test_every_stack_file_has_pinned_urns_and_nothing_else_is_pinned():
    pinned = sorted(p.stem for p in (PROJECT_DIR / "tests" / "urns").glob("*.txt"))
    assert pinned == STACKS


@pytest.mark.parametrize("stack", STACKS)
def test_renamed_components_and_their_children_keep_the_urns_deployed_stacks_have(stack):
    run = program_run(stack, "preview")
    known = known_urns(run)
    renamed = [r for r in run.resources if any(new in r.urn for new in RENAMED_TYPES)]
    if not renamed:
        pytest.skip(f"{stack} has no renamed component")
    for resource in renamed:
        old = resource.urn
        for new, before in RENAMED_TYPES.items():
            old = old.replace(new, before)
        assert old != resource.urn and old in known[resource.urn], resource.urn


def test_the_check_reports_a_lost_urn_and_an_unpinned_one():
    run = program_run("dev", "preview")
    pinned = sorted(r.urn for r in run.resources)
    dropped, bogus = pinned.pop(), "urn:pulumi:dev::llm-platform::aws:eks/cluster:Cluster::old-name"
    problems = snapshot_problems(run, [*pinned, bogus])
    assert problems == [
        f"would be replaced or deleted (no resource or alias has it): {bogus}",
        f"not pinned (new or renamed; `make urns` pins it): {dropped}",
    ]
