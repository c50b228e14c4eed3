"""Invalid stack configs, generated from the config's own JSON Schema (issue 21).

A mutation picks one place in a real stack's config and puts there a value the schema itself
rules out: a type the key cannot take, a number past its bound, text outside its pattern or
enum, a list past its length, an unknown key in a closed map, or a required key taken away.
Every one is invalid by construction, so a config that passes validation is a bug (a schema and a
validator that disagree), and every rejection must name the key the mutation touched.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from components.config.errors import format_key_path
from components.config.stack import stack_config_json_schema

SCHEMA = stack_config_json_schema()
DEFS = SCHEMA.get("$defs", {})

# No pattern of ours admits spaces around a non-ASCII symbol, and none is this long.
OFF_PATTERN = " \u2603 \u0663 "
UNKNOWN_KEY = "zzNotAKey"

Path = tuple[str | int, ...]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = {**DEFS[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def branches(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a node (`X | None` is anyOf [X, null])."""
    node = resolve(node)
    alternatives = node.get("anyOf") or node.get("oneOf")
    if not alternatives:
        return [node]
    return [resolve(b) for b in alternatives if resolve(b).get("type") != "null"]


def child_schema(node: dict[str, Any], key: str | int) -> dict[str, Any] | None:
    for branch in branches(node):
        if isinstance(key, int) and branch.get("type") == "array" and isinstance(branch.get("items"), dict):
            return branch["items"]
        if isinstance(key, str) and branch.get("type", "object") == "object":
            if key in branch.get("properties", {}):
                return branch["properties"][key]
            if isinstance(branch.get("additionalProperties"), dict):
                return branch["additionalProperties"]
    return None


def _scalar_invalid(branch: dict[str, Any]) -> list[Any]:
    """Wrong values of the right type, and values of another JSON type; a map and a list for every
    scalar, because code that looks a scalar up in a table (`cloud in {...}`) fails on them."""
    return [*_scalar_invalid_of_kind(branch), {"a": 1}]


def _scalar_invalid_of_kind(branch: dict[str, Any]) -> list[Any]:
    kind = branch.get("type")
    if "enum" in branch or "const" in branch:
        return ["not-an-option" + OFF_PATTERN, 7, ["aws"]]
    if kind == "integer":
        out: list[Any] = [True, 1.5, "twelve", [1]]
        if "maximum" in branch:
            out.append(int(branch["maximum"]) + 1)
        if "minimum" in branch:
            out.append(int(branch["minimum"]) - 1)
        return out
    if kind == "number":
        out = ["abc", True, [0.5], float("nan")]
        if "maximum" in branch:
            out.append(float(branch["maximum"]) * 2 + 1)
        if "minimum" in branch:
            out.append(float(branch["minimum"]) - 1)
        return out
    if kind == "boolean":
        return ["maybe", 2, [True]]
    if kind == "string":
        out = [5, ["x"]]
        if "pattern" in branch or "format" in branch:
            out.append(OFF_PATTERN)
        if "maxLength" in branch:
            out.append("a" * (int(branch["maxLength"]) + 1))
        if branch.get("minLength", 0) > 0:
            out.append("")
        return out
    return []


def invalid_values(node: dict[str, Any], current: Any) -> list[Any]:
    """Values every alternative of `node` refuses."""
    alternatives = branches(node)
    kinds = {b.get("type", "object" if "properties" in b else None) for b in alternatives}
    if None in kinds:
        return []  # an untyped alternative (Any): nothing is invalid for sure
    if len(alternatives) > 1:  # a union: only what no member can take
        return [{UNKNOWN_KEY: [1]}] if kinds <= {"string", "integer", "number", "boolean"} else []
    (branch,) = alternatives
    kind = next(iter(kinds))
    if kind == "object":
        out: list[Any] = [5, "x", [1]]
        if branch.get("additionalProperties") is False and isinstance(current, dict):
            out.append({**current, UNKNOWN_KEY: 1})
        return out
    if kind == "array":
        out = ["x", {"a": 1}]
        if branch.get("minItems", 0) > 0:
            out.append([])
        if "maxItems" in branch and isinstance(current, list) and current:
            out.append(current * (int(branch["maxItems"]) + 1))
        return out
    return _scalar_invalid(branch)


@dataclass(frozen=True)
class Mutation:
    path: Path  # where, below the llm-platform namespace
    value: Any  # what is put there (REMOVED: the key is taken away)
    what: str

    @property
    def key_path(self) -> str:
        return format_key_path(self.path)


REMOVED = object()


def mutation_sites(config: dict[str, Any]) -> list[tuple[Path, dict[str, Any], Any]]:
    """(path, schema, current value) of every key and list item in `config`."""
    sites: list[tuple[Path, dict[str, Any], Any]] = []

    def walk(path: Path, node: dict[str, Any], value: Any) -> None:
        sites.append((path, node, value))
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in children:
            schema = child_schema(node, key)
            if schema is not None:
                walk(path + (key,), schema, child)

    for key, value in config.items():
        if key in SCHEMA["properties"]:
            walk((key,), SCHEMA["properties"][key], value)
    return sites


def removals(config: dict[str, Any]) -> list[Mutation]:
    """Taking away a required key that is there."""
    out = [Mutation((key,), REMOVED, "required key removed") for key in SCHEMA.get("required", []) if key in config]
    for path, node, value in mutation_sites(config):
        if isinstance(value, dict):
            for branch in branches(node):
                out += [Mutation(path + (k,), REMOVED, "required key removed") for k in branch.get("required", []) if k in value]
    return out


def mutations(config: dict[str, Any]) -> list[Mutation]:
    out = removals(config)
    for path, node, value in mutation_sites(config):
        out += [Mutation(path, bad, "invalid value") for bad in invalid_values(node, value)]
    out.append(Mutation((UNKNOWN_KEY,), "x", "unknown top-level key"))
    return out


def applied(config: dict[str, Any], mutation: Mutation) -> dict[str, Any]:
    mutated = copy.deepcopy(config)
    *parents, last = mutation.path
    target: Any = mutated
    for part in parents:
        target = target[part]
    if mutation.value is REMOVED:
        del target[last]
    else:
        target[last] = copy.deepcopy(mutation.value)
    return mutated


def mutation_strategy(config: dict[str, Any]) -> st.SearchStrategy[Mutation]:
    return st.sampled_from(mutations(config))


# What a message must not read like: pydantic's developer wording or a raw regular expression.
DEVELOPER_WORDING = ("Input should", "String should", "List should", "instance of", "does not match ^", "Value error", "[key]", "function-after")


def related(problem_path: str, mutation: Mutation) -> bool:
    """A problem reported at the mutated key, inside it, or at the map or list holding it."""
    touched = mutation.key_path
    return problem_path == touched or problem_path.startswith((touched + ".", touched + "[")) or touched.startswith(
        (problem_path + ".", problem_path + "[")
    )
