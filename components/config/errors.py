"""Config problems as a person reads them: `<stack file>: llm-platform:<key path>: why`.

Pydantic reports locations as tuples and messages for developers; this turns them into the key
paths of `Pulumi.<stack>.yaml` (camelCase, `[i]` for list items), suggests the closest key for a
typo, and carries several cross-field problems out of one validator (`raise_problems`).
"""

from __future__ import annotations

import difflib
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


def _message(error: dict[str, Any]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "string_pattern_mismatch":
        return f"{error['input']!r} does not match {error['ctx']['pattern']}"
    if msg.startswith("Input should be "):
        return "must be " + msg.removeprefix("Input should be ") + f" (got {error['input']!r})"
    return msg.removeprefix("Value error, ")


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
    close = difflib.get_close_matches(str(loc[-1]), _field_names(model), n=1)
    return f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(_field_names(model))})"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def problems_from_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    """One (key path, message) per problem; `root` is the model that was validated."""
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == "config_problems":
            problems += [(format_key_path(loc + tuple(sub)), msg) for sub, msg in error["ctx"]["problems"]]
            continue
        message = _message(error)
        if error["type"] == "extra_forbidden":
            message += _suggest(loc, root)
        problems.append((format_key_path(loc), message))
    return problems
