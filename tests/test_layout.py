"""The layout's dependency rules, read from the imports of every module under components/ (ast,
module-level and inside functions), followed transitively through our own modules."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from conftest import PROJECT_DIR

COMPONENTS = PROJECT_DIR / "components"
CLOUD_PACKAGES = ("components.clusters.aws", "components.clusters.gcp", "components.clusters.azure")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _imports() -> dict[str, frozenset[str]]:
    """module -> every module or package it imports (absolute names; `from x import y` counts as x.y
    when x.y is one of our modules, else as x)."""
    modules = {_module_name(p): p for p in COMPONENTS.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if candidate in modules else base)
        graph[name] = frozenset(found)
    return graph


def _ours(name: str) -> bool:
    return name == "components" or name.startswith("components.")


def _reachable(module: str) -> set[str]:
    """Every import, ours followed transitively, of `module`."""
    graph, seen, todo = _imports(), set(), [module]
    while todo:
        for imported in graph.get(todo.pop(), ()):
            if imported not in seen:
                seen.add(imported)
                if _ours(imported):
                    todo.append(imported)
    return seen


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _modules_of(package: str) -> list[str]:
    return sorted(m for m in _imports() if _in(m, package))


def _violations(package: str, forbidden) -> list[str]:
    return [f"{m} -> {i}" for m in _modules_of(package) for i in sorted(_reachable(m)) if forbidden(i)]


def test_the_import_graph_is_read():
    assert len(_imports()) > 40
    assert "components.config.models" in _reachable("components.serving.service")
    assert "pulumi_aws" in _reachable("components.clusters.aws.cluster")


def test_addons_and_serving_never_reach_a_cloud_package():
    for package in ("components.addons", "components.serving"):
        assert _modules_of(package)
        assert not _violations(package, lambda i: any(_in(i, cloud) for cloud in CLOUD_PACKAGES))


def test_the_planner_imports_neither_pulumi_nor_the_config():
    assert not _violations("components.planner", lambda i: i.split(".")[0].startswith("pulumi") or _in(i, "components.config"))


def test_the_config_imports_no_provider_package():
    assert not _violations("components.config", lambda i: i.split(".")[0].startswith("pulumi_"))


def test_clusters_never_import_addons_or_serving():
    assert not _violations("components.clusters", lambda i: _in(i, "components.addons") or _in(i, "components.serving"))


def test_facts_and_operator_rules_are_pure():
    """catalog, vllm and admission are data and rules: no Pulumi, no stack config."""
    for package in ("components.catalog", "components.vllm", "components.admission"):
        assert not _violations(package, lambda i: i.split(".")[0].startswith("pulumi") or _in(i, "components.config"))


def _package(module: str) -> str:
    """The package a module belongs to for the cycle rule: components.<first level> (a cloud
    package is part of clusters, whose `build` picks it)."""
    return ".".join(module.split(".")[:2])


def test_no_import_cycle_between_packages():
    edges: dict[str, set[str]] = {}
    for module, imported in _imports().items():
        for target in filter(_ours, imported):
            if target != "components" and _package(target) != _package(module):
                edges.setdefault(_package(module), set()).add(_package(target))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and not seen.add(n) and reaches(n, goal, seen)) for n in edges.get(start, ()))

    cycles = sorted(p for p in edges if reaches(p, p, set()))
    assert not cycles, {p: sorted(edges[p]) for p in cycles}
    assert {"components.serving", "components.addons", "components.clusters", "components.config", "components.planner"} <= set(edges)
