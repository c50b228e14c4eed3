"""Config problems as a person reads them: `<stack file>: llm-platform:<key path>: why`.

Pydantic reports locations as tuples and messages for developers; this turns them into the key
paths of `Pulumi.<stack>.yaml` (camelCase, `[i]` for list items), suggests the closest key for a
typo, and carries several cross-field problems out of one validator (`raise_problems`).
"""

from __future__ import annotations

import difflib
import reprlib
import re
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

CONFIG_NAMESPACE = "llm-platform"

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


class ConfigError(pulumi.RunError):
    """Invalid stack config. A `RunError`, so `pulumi up` prints the message without a traceback."""

    def __init__(self, stack_file: str, problems: list[tuple[str, str]]):
        self.stack_file = stack_file
        self.problems = problems  # (key path, message), e.g. ("llm-platform:gpuPools[1].maxSize", "...")
        lines = [f"{stack_file}: {path}: {message}" for path, message in problems]
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"invalid stack config ({len(problems)} {noun}):\n" + "\n".join(lines))


def raise_problems(problems: list[Problem]) -> None:
    """Report several cross-field problems at once, each at its own key path below the model."""
    if problems:
        summary = "; ".join(message for _, message in problems)
        raise PydanticCustomError("config_problems", "{summary}", {"summary": summary, "problems": problems})


def format_key_path(loc: Loc) -> str:
    """("gpuPools", 1, "maxSize") -> "llm-platform:gpuPools[1].maxSize"."""
    text = f"{CONFIG_NAMESPACE}:{loc[0]}" if loc else CONFIG_NAMESPACE
    for part in loc[1:]:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            text += f".{part}"
        else:  # a map key such as a label "team.example.com/owner"
            text += f"[{part!r}]"
    return text


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxlist, _BRIEF.maxtuple, _BRIEF.maxdict, _BRIEF.maxset = 4, 12, 12, 8, 12
_BRIEF.maxstring = _BRIEF.maxother = _BRIEF.maxlong = 100


def _shown(value: Any) -> str:
    """A value as the stack file writes it: null, true, 'text', [..]; long values cut short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = _BRIEF.repr(value)  # bounded: a value may be a list of a million items
    return text if len(text) <= 80 else text[:77] + "…"


# pydantic's error kinds in the words a platform engineer reads (the value shown after them)
_PLAIN = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_parsing_size": "must be a whole number of a sensible size",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a map of keys to values",
    "string_type": "must be text",
    "string_unicode": "must be text",
    "invalid_key": "keys must be text (quote a key YAML reads as a number, true or null)",
}


def _message(error: dict[str, Any], root: type[BaseModel] | None = None) -> str:
    kind, msg, ctx = error["type"], error["msg"], error.get("ctx") or {}
    value = error.get("input")
    got = f" (got {_shown(value)})"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"must be text: put it in quotes (YAML read it as the number {value!r})"
    if kind in _PLAIN:
        return _PLAIN[kind] + got
    if kind in ("model_type", "model_attributes_type", "dataclass_type"):
        model = _models_by_name(root).get(str(ctx.get("class_name")))
        keys = f" with keys such as {', '.join(_field_names(model)[:4])}" if model else ""
        return f"must be a map{keys}{got}"
    if kind == "too_short":
        return f"must list at least {ctx['min_length']} item{'s' if ctx['min_length'] != 1 else ''} (it has {ctx['actual_length']})"
    if kind == "too_long":
        return f"must list at most {ctx['max_length']} items (it has {ctx['actual_length']})"
    if kind == "string_too_short":
        return f"must be at least {ctx['min_length']} characters long{got}"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters long (it has {len(value)})"
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not match {ctx['pattern']}"
    if msg.startswith("Input should be "):
        return "must be " + msg.removeprefix("Input should be ") + got
    return msg.removeprefix("Value error, ")


def _models_by_name(root: type[BaseModel] | None) -> dict[str, type[BaseModel]]:
    """Every model class reachable from `root`, by class name (pydantic names the class it wanted)."""
    found: dict[str, type[BaseModel]] = {}
    todo = [root] if root else []
    while todo:
        model = todo.pop()
        if model.__name__ in found:
            continue
        found[model.__name__] = model
        todo += [m for f in model.model_fields.values() for m in _models_in(f.annotation)]
    return found


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def _suggest(loc: Loc, root: type[BaseModel]) -> str:
    """For an unknown key, the closest real key at that level ("gpuPool" -> "gpuPools")."""
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return ""
        model = _model_of(field.annotation)
        if model is None:
            return ""
    names = _field_names(model)
    by_case = {n.lower(): n for n in names}  # keys are case-sensitive: "CLOUD" and "hfTOKEN" are typos too
    folded = str(loc[-1]).strip().lower()
    close = [by_case[folded]] if folded in by_case else difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(names)})"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    found = _models_in(annotation)
    return found[0] if found else None


def problems_from_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    """One (key path, message) per problem; `root` is the model that was validated."""
    problems: list[tuple[str, str]] = []
    union_failures: dict[str, list[str]] = {}  # a value that fits no member of a union fails once per member
    for error in exc.errors(include_url=False):
        raw_loc = tuple(error["loc"])
        loc = _key_loc(raw_loc)
        if error["type"] == "config_problems":
            problems += [(format_key_path(loc + tuple(sub)), msg) for sub, msg in error["ctx"]["problems"]]
            continue
        message = _message(error, root)
        if error["type"] == "extra_forbidden":
            message += _suggest(loc, root)
        path = format_key_path(loc)
        if any(isinstance(p, str) and _UNION_MEMBER.match(p) for p in raw_loc):
            if path not in union_failures:
                problems.append((path, ""))
            union_failures.setdefault(path, []).append(message)
        else:
            problems.append((path, message))
    return [(path, "; or ".join(union_failures[path]) if not message and path in union_failures else message)
            for path, message in problems]


# pydantic's own location steps that are not keys: a union member ("function-after[check(), str]",
# "literal['Never']") and a map's key itself ("[key]")
_UNION_MEMBER = re.compile(r"^[a-z][a-z0-9_-]*\[.*\]$")


def _key_loc(loc: Loc) -> Loc:
    return tuple(part for part in loc if not (isinstance(part, str) and (part == "[key]" or _UNION_MEMBER.match(part))))

