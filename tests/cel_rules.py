"""The pinned CRDs' own CEL rules (`x-kubernetes-validations`), evaluated against our objects as the
API server evaluates them on create.

A JSON-Schema check ignores these rules, and an object the schema accepts can still be refused by
them (a NodePool label under `karpenter.sh/`, an EC2NodeClass tag starting `kubernetes.io/cluster`).
What the API server does, and so what this does (apiextensions-apiserver, `pkg/apiserver/schema/cel`):
- schema defaults are applied first, so `has()` sees what the server sees;
- a rule runs at the schema node that declares it, for every value present there (each list item,
  each map value), with `self` bound to that value;
- object property names are escaped (`namespace` -> `__namespace__`, `a-b` -> `a__dash__b`), map keys
  are not;
- transition rules (those reading `oldSelf`) run only on update, where the old object has a value
  at the same place: pass `old` to evaluate them (a re-apply of the same object is `old=obj`);
- Kubernetes' CEL libraries add functions to standard CEL; the ones the pinned CRDs call are below
  (`KUBERNETES_FUNCTIONS`). A rule that calls anything else cannot be evaluated here and is reported
  as such, so a test can name it and check it by hand.

The evaluator is `common-expression-language` (PyPI, the Rust `cel` interpreter).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cel
from upstream import crd_schemas

# github.com/google/cel-spec reserved words, escaped by Kubernetes as __<word>__ in property names.
_CEL_RESERVED = frozenset(
    "true false null in as break const continue else for function if import let loop package namespace return var void while".split()
)
_PROPERTY_NAME = re.compile(r"^[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*$")


def escape_property(name: str) -> str | None:
    """Kubernetes' CEL name of an object property (`model/escaping.go`); None if CEL cannot name it."""
    if name in _CEL_RESERVED:
        return f"__{name}__"
    if not _PROPERTY_NAME.match(name):
        return None
    return name.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__").replace("/", "__slash__")


def _find(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    return match.group(0) if match else ""


def _split(text: str, separator: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    return text.split(separator, limit - 1 if limit > 0 else -1)


# k8s.io/apiserver/pkg/cel/library: regex `find`/`findAll` and cel-go's strings extension, as far as
# the pinned CRDs call them.
KUBERNETES_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "find": _find,
    "findAll": lambda text, pattern, limit=-1: re.findall(pattern, text)[: None if limit < 0 else limit],
    "split": _split,
    "lowerAscii": lambda text: text.lower(),
    "upperAscii": lambda text: text.upper(),
    "trim": lambda text: text.strip(),
    "join": lambda items, separator="": separator.join(items),
}


@dataclass(frozen=True)
class RuleResult:
    kind: str  # group/version Kind
    path: str  # where the rule is declared, e.g. spec.template.spec.requirements[2].key
    rule: str
    message: str
    outcome: str  # "pass", "fail", "error" (the server refuses on an evaluation error too), "transition", "unsupported"
    detail: str = ""


def schema_of(obj: dict[str, Any]) -> tuple[str, dict]:
    group, _, version = obj["apiVersion"].rpartition("/")
    key = (group, version, obj["kind"])
    if key not in crd_schemas():
        raise KeyError(f"no upstream CRD for {obj['apiVersion']} {obj['kind']}")
    return f"{obj['apiVersion']} {obj['kind']}", crd_schemas()[key]


def with_defaults(schema: dict, value: Any) -> Any:
    """The object after structural defaulting: absent properties that declare a `default` get it
    (and its own defaults), below every present object, list item and map value."""
    if isinstance(value, dict):
        out = dict(value)
        for name, sub in schema.get("properties", {}).items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            if name in out:
                out[name] = with_defaults(sub, out[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in set(out) - set(schema.get("properties", {})):
                out[key] = with_defaults(extra, out[key])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(schema["items"], item) for item in value]
    return value


def cel_value(schema: dict, value: Any) -> Any:
    """`value` as a CEL rule sees it: object properties under their escaped names."""
    if isinstance(value, dict):
        properties = schema.get("properties")
        if properties is not None:
            out = {}
            for name, item in value.items():
                escaped = escape_property(name)
                if escaped is not None:
                    out[escaped] = cel_value(properties.get(name, {}), item)
            return out
        extra = schema.get("additionalProperties")
        sub = extra if isinstance(extra, dict) else {}
        return {key: cel_value(sub, item) for key, item in value.items()}
    if isinstance(value, list):
        return [cel_value(schema.get("items") or {}, item) for item in value]
    return value


def _uses_unsupported_function(error: Exception) -> str | None:
    match = re.search(r"Undefined variable or function: '([^']+)'", str(error))
    return match.group(1) if match and match.group(1) != "self" else None


_ABSENT = object()


def _evaluate(kind: str, path: str, schema: dict, value: Any, old: Any) -> Iterator[RuleResult]:
    for rule in schema.get("x-kubernetes-validations", []):
        text, message = rule["rule"], rule.get("message") or rule["rule"]
        variables = {"self": cel_value(schema, value)}
        if re.search(r"\boldSelf\b", text):
            if old is _ABSENT:
                yield RuleResult(kind, path, text, message, "transition", "runs on update only")
                continue
            variables["oldSelf"] = cel_value(schema, old)
        context = cel.Context(variables=variables, functions=KUBERNETES_FUNCTIONS)
        try:
            result = cel.evaluate(text, context)
        except Exception as exc:  # noqa: BLE001 - the server refuses an object whose rule errors
            missing = _uses_unsupported_function(exc)
            if missing:
                yield RuleResult(kind, path, text, message, "unsupported", f"no Kubernetes CEL function {missing!r} here")
            else:
                yield RuleResult(kind, path, text, message, "error", f"{type(exc).__name__}: {exc}")
            continue
        yield RuleResult(
            kind, path, text, message, "pass" if result is True else "fail", "" if result is True else f"= {result!r}"
        )


def _old_member(old: Any, key: str) -> Any:
    return old[key] if isinstance(old, dict) and old.get(key) is not None else _ABSENT


def _old_item(schema: dict, old: Any, item: Any) -> Any:
    """The old list item a new one is correlated with: only `x-kubernetes-list-type: map` lists
    correlate (by their keys); below atomic and set lists transition rules do not run."""
    keys = schema.get("x-kubernetes-list-map-keys")
    if schema.get("x-kubernetes-list-type") != "map" or not keys or not isinstance(old, list) or not isinstance(item, dict):
        return _ABSENT
    for candidate in old:
        if isinstance(candidate, dict) and all(candidate.get(k) == item.get(k) for k in keys):
            return candidate
    return _ABSENT


def _walk(kind: str, path: str, schema: dict, value: Any, old: Any) -> Iterator[RuleResult]:
    yield from _evaluate(kind, path, schema, value, old)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name, sub in properties.items():
            if name in value and value[name] is not None:
                yield from _walk(kind, f"{path}.{name}" if path else name, sub, value[name], _old_member(old, name))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in sorted(set(value) - set(properties)):
                yield from _walk(kind, f"{path}[{key!r}]", extra, value[key], _old_member(old, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _walk(kind, f"{path}[{i}]", schema["items"], item, _old_item(schema, old, item))


def cel_results(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[RuleResult]:
    """Every CEL rule of the object's CRD that applies to it, with its outcome: a create, or an
    update from `old` (which also runs the transition rules)."""
    kind, schema = schema_of(obj)
    previous = _ABSENT if old is None else with_defaults(schema, old)
    return list(_walk(kind, "", schema, with_defaults(schema, obj), previous))


def cel_violations(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """What the API server would refuse (failed or erroring rules), one line each."""
    name = obj.get("metadata", {}).get("name")
    return [
        f"{r.kind}/{name}: {r.path}: {r.message} ({r.outcome}{': ' + r.detail if r.detail else ''})"
        for r in cel_results(obj, old)
        if r.outcome in ("fail", "error")
    ]


def every_rule() -> Iterator[tuple[str, str, str]]:
    """(kind, schema path, rule) of every CEL rule in the pinned CRDs."""

    def walk(kind: str, path: str, schema: dict) -> Iterator[tuple[str, str, str]]:
        for rule in schema.get("x-kubernetes-validations", []):
            yield kind, path, rule["rule"]
        for name, sub in schema.get("properties", {}).items():
            yield from walk(kind, f"{path}.{name}" if path else name, sub)
        if isinstance(schema.get("items"), dict):
            yield from walk(kind, f"{path}[]", schema["items"])
        if isinstance(schema.get("additionalProperties"), dict):
            yield from walk(kind, f"{path}[*]", schema["additionalProperties"])

    for (group, version, kind), schema in crd_schemas().items():
        yield from walk(f"{group}/{version} {kind}", "", schema)
