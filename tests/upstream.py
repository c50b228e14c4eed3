"""Checks of what we emit against the real upstream schemas in `../shared/upstream` (never copied in).

Kubernetes prunes unknown fields and Helm ignores unknown values, both silently, so a misspelt key
would deploy "fine" and do nothing. These helpers make such a key a test failure:
- `helm_value_problems`: every value path we set must exist in the pinned chart's `values.yaml` or
  be read by its templates (`template-value-refs.txt`); below a free-form map anything goes.
- `crd_validator`: the CRD's openAPIV3Schema with every object that lists `properties` (and neither
  `additionalProperties` nor `x-kubernetes-preserve-unknown-fields`) closed, and int-or-string
  fields accepting both.
"""

from __future__ import annotations

import copy
import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from conftest import PROJECT_DIR

UPSTREAM_DIR = Path(os.environ.get("LLM_PLATFORM_UPSTREAM", PROJECT_DIR.parent / "shared" / "upstream"))

# Maps whose keys are the user's (Kubernetes label maps, resource lists, pod-spec fragments).
FREE_FORM_KEYS = frozenset(
    {
        "nodeSelector",
        "tolerations",
        "affinity",
        "resources",
        "annotations",
        "labels",
        "podAnnotations",
        "podLabels",
        "additionalLabels",
        "externalLabels",
        "extraArgs",
        "env",
        "storageSpec",
        "storage",
        "topologySpreadConstraints",
        "matchLabels",  # a label selector (the EPP chart's router.modelServers.matchLabels)
        "securityContext",
    }
)


def require_upstream() -> Path:
    if not (UPSTREAM_DIR / "SOURCES.md").is_file():
        raise AssertionError(
            f"upstream schemas not found at {UPSTREAM_DIR}; set LLM_PLATFORM_UPSTREAM to the shared/upstream directory"
        )
    return UPSTREAM_DIR


def _walk(node: Any, prefix: tuple[str, ...], out: dict[tuple[str, ...], Any]) -> None:
    out[prefix] = node
    if isinstance(node, dict):
        for key, value in node.items():
            _walk(value, (*prefix, str(key)), out)


@cache
def chart_schema(chart_dir: str) -> tuple[dict[tuple[str, ...], Any], frozenset[tuple[str, ...]], tuple[str, ...]]:
    """(every node path of values.yaml -> default, template-referenced paths, subchart names)."""
    base = _chart_dir(chart_dir)
    defaults: dict[tuple[str, ...], Any] = {}
    values = yaml.safe_load((base / "values.yaml").read_text()) or {}
    if base.parent.name == "istio":
        # SOURCES.md, routing caveats: Istio's defaults sit under `_internal_defaults_do_not_set`
        # and users set the same keys at the top level; the three guard keys are never ours to set.
        values = {**values.pop(ISTIO_INTERNAL_DEFAULTS, {}), **values}
    _walk(values, (), defaults)
    refs = _refs(base)
    if base.parent.name == "istio":
        refs = refs - {(k,) for k in ISTIO_GUARDS}
    if base.name == "llm-d-router-gateway":
        # SOURCES.md, routing caveats: routerlib is a library chart aliased `router`; its templates
        # run in the parent's context (their refs are parent paths already), and its four
        # deprecation-guard refs fail the install, so they are not allowed.
        lib = base.parent / "routerlib"
        _walk(yaml.safe_load((lib / "values.yaml").read_text()) or {}, ("router",), defaults)
        refs = (refs | _refs(lib)) - {(k,) for k in ROUTERLIB_GUARDS}
    subcharts = tuple(p.name for p in (base / "charts").iterdir()) if (base / "charts").is_dir() else ()
    return defaults, refs, subcharts


ISTIO_INTERNAL_DEFAULTS = "_internal_defaults_do_not_set"
ISTIO_GUARDS = (ISTIO_INTERNAL_DEFAULTS, "_original", "defaults")
ROUTERLIB_GUARDS = ("inferenceExtension", "inferencePool", "experimentalHttpRoute", "inferenceObjectives")


def _chart_dir(chart_dir: str) -> Path:
    """`routing/charts/<chart>` lives beside `charts/` in the upstream tree."""
    upstream = require_upstream()
    return upstream / chart_dir if chart_dir.startswith("routing/") else upstream / "charts" / chart_dir


def _refs(base: Path) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(line.strip().split(".")) for line in (base / "template-value-refs.txt").read_text().splitlines() if line.strip())


def upstream_chart_version(chart_dir: str) -> str:
    return str(yaml.safe_load((_chart_dir(chart_dir) / "Chart.yaml").read_text())["version"])


def _leaf_paths(values: Any, prefix: tuple[str, ...] = ()):
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from _leaf_paths(value, (*prefix, str(key)))
    else:
        yield prefix, values


def _kind(value: Any) -> str:
    return "map" if isinstance(value, dict) else "list" if isinstance(value, list) else "scalar"


def helm_value_problems(chart_dir: str, values: dict[str, Any]) -> list[str]:
    """Every value path we set that the pinned chart does not know, or sets with the wrong shape."""
    problems = []
    for path, value in _leaf_paths(values):
        problem = _path_problem(chart_dir, path, value)
        if problem:
            problems.append(f"{chart_dir}: {'.'.join(path)}: {problem}")
    return problems


def _path_problem(chart_dir: str, path: tuple[str, ...], value: Any) -> str | None:
    defaults, refs, subcharts = chart_schema(chart_dir)
    if path and path[0] in ROUTERLIB_GUARDS and chart_dir.endswith("llm-d-router-gateway"):
        return "an old GAIE inferencepool key: the chart's deprecation guard fails the install"
    if path and path[0] in ISTIO_GUARDS and "/istio/" in chart_dir:
        return "Istio's internal defaults key: set the value at the top level (`defaults` makes the chart fail)"
    if len(path) > 1 and path[0] in subcharts and _path_problem(f"{chart_dir}/charts/{path[0]}", path[1:], value) is None:
        return None  # a subchart's value, known to the subchart (the parent may also list it)
    for i in range(1, len(path)):
        prefix = path[:i]
        if prefix not in defaults and prefix not in refs:
            continue
        default = defaults.get(prefix)
        if prefix[-1] in FREE_FORM_KEYS or (isinstance(default, dict) and not default):
            return None  # below a free-form map, or a map the chart leaves empty for the user
    if path in defaults:
        default = defaults[path]
        if default is not None and value is not None and _kind(default) != _kind(value):
            return f"upstream default is a {_kind(default)}, we set a {_kind(value)}"
        return None
    if path in refs:
        return None
    return "not in the chart's values.yaml nor read by its templates"


def _closed(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _closed(value) for key, value in schema.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@cache
def crd_schemas() -> dict[tuple[str, str, str], dict]:
    """(group, version, kind) -> the served version's openAPIV3Schema as upstream wrote it, for every
    pinned CRD (add-ons and routing)."""
    upstream = require_upstream()
    index = {}
    for path in sorted([*(upstream / "crds").rglob("*.yaml"), *(upstream / "routing" / "crds").rglob("*.yaml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if version.get("served", True):
                    index[(spec["group"], version["name"], spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return index


@cache
def crd_index() -> dict[tuple[str, str, str], dict]:
    """(group, version, kind) -> the closed JSON schema of that served version."""
    return {key: _closed(copy.deepcopy(schema)) for key, schema in crd_schemas().items()}


def crd_validation_errors(obj: dict[str, Any]) -> list[str]:
    group, _, version = obj["apiVersion"].rpartition("/")
    schema = crd_index().get((group, version, obj["kind"]))
    if schema is None:
        return [f"no upstream CRD for {obj['apiVersion']} {obj['kind']}"]
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{obj['kind']}/{obj['metadata'].get('name')}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(obj)
    ]
