"""An environment request: the stack config a portal sends, validated as the CLI validates a stack
file, with each problem at a JSON Pointer into the request.

The request is `{"config": {...}, "secrets": {...}}`: `config` holds the stack's `llm-platform:`
keys without the prefix, exactly what `stack_config_json_schema()` describes (the portal renders its
forms from that schema); `secrets` holds the keys whose values are secret (`hfToken`), which are
written with `--secret` and never stored or returned by us. A credential sent in `config` is refused
as the CLI refuses one written in plain text.
"""

from __future__ import annotations

import ast
import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from components.config.errors import CONFIG_NAMESPACE, ConfigError
from components.config.stack import SECRET_KEYS, credential_problem
from stacks.offline import run_program
from stacks.stack_files import SECRET_PLACEHOLDER, StackFile, stack_file_from_values


# The offline runner sets Pulumi's process-wide mocks and config, and the SDK needs an event loop in
# its thread: one thread of its own runs the program, one run at a time, whoever calls (an HTTP
# worker thread has no loop).
_PROGRAM_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offline-program", initializer=lambda: asyncio.set_event_loop(asyncio.new_event_loop()))


class EnvironmentRequest(BaseModel):
    """What a portal sends to preview or update one environment."""

    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] = Field(
        description=f"The stack's '{CONFIG_NAMESPACE}:' keys without the prefix, as GET /v1/schema describes."
    )
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Config keys whose values are secret (e.g. hfToken): set with --secret, never stored or returned by the service.",
    )


@dataclass(frozen=True)
class FieldError:
    """One config problem: where in the request (JSON Pointer), the stack-file key path and the
    message the CLI prints, and the CLI's whole line."""

    pointer: str
    key: str
    message: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class RequestInvalid(Exception):
    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("\n".join(e.text for e in errors))


@dataclass(frozen=True)
class ValidatedRequest:
    stack: str
    warnings: list[FieldError]
    models: list[dict[str, Any]] = field(default_factory=list)  # each model's served name and predicted capacity
    cost: dict[str, Any] | None = None  # the plan's estimate at minimum and maximum scale


def stack_file_of(stack: str, request: EnvironmentRequest) -> StackFile:
    """The request as a stack file, secrets as the placeholder the offline plan uses (`{secure: …}`
    marks them secret; the value is never needed to validate or plan)."""
    values: dict[str, Any] = {f"{CONFIG_NAMESPACE}:{k}": v for k, v in request.config.items()}
    values.update({f"{CONFIG_NAMESPACE}:{k}": {"secure": SECRET_PLACEHOLDER} for k in request.secrets})
    return stack_file_from_values(stack, values)


_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\]")


def key_path_parts(key_path: str) -> list[str | int] | None:
    """`llm-platform:gpuPools[1].labels['team.example.com/owner']` -> ["gpuPools", 1, "labels",
    "team.example.com/owner"]; None if the path is not one `format_key_path` writes."""
    rest = key_path.removeprefix(CONFIG_NAMESPACE).removeprefix(":")
    parts: list[str | int] = []
    position = 0
    while position < len(rest):
        m = _TOKEN.match(rest, position)
        if m is None or (m.group(0).startswith(".") and not parts):
            return None
        name, index, quoted = m.groups()
        parts.append(name if name is not None else int(index) if index is not None else ast.literal_eval(quoted))
        position = m.end()
    return parts


def json_pointer(parts: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def request_pointer(key_path: str, request: EnvironmentRequest) -> str:
    """Where a stack-file key path is in the request: under /secrets for a secret key, /config else."""
    parts = key_path_parts(key_path)
    if not parts:
        return "/config"
    root = "secrets" if parts[0] in request.secrets and parts[0] not in request.config else "config"
    return json_pointer([root, *parts])


def field_errors(stack_file: StackFile, problems: list[tuple[str, str]], request: EnvironmentRequest) -> list[FieldError]:
    return [FieldError(request_pointer(k, request), k, m, f"{stack_file.file_name}: {k}: {m}") for k, m in problems]


def validate_request(stack: str, request: EnvironmentRequest) -> ValidatedRequest:
    """Validate as `pulumi preview` would, before anything runs: the config models, the preflight
    of what the operators would refuse, then the program itself under the offline runner (which
    gives each model's predicted capacity and the cost estimate). Raises RequestInvalid."""
    both = sorted(set(request.config) & set(request.secrets))
    if both:
        raise RequestInvalid(
            [FieldError(json_pointer(["secrets", k]), f"{CONFIG_NAMESPACE}:{k}", "given in both config and secrets", f"{k}: given in both config and secrets") for k in both]
        )
    stack_file = stack_file_of(stack, request)
    unusable = [(f"{CONFIG_NAMESPACE}:{k}", credential_problem(v)) for k, v in sorted(request.secrets.items()) if k in SECRET_KEYS]
    if any(problem for _, problem in unusable):  # checked here: the stack file holds placeholders, not the values
        raise RequestInvalid(field_errors(stack_file, [(k, p) for k, p in unusable if p], request))
    try:
        _, warnings = stack_file.check()
    except ConfigError as exc:
        raise RequestInvalid(field_errors(stack_file, exc.problems, request)) from None
    run = _PROGRAM_THREAD.submit(run_program, stack_file, True).result()
    if isinstance(run.error, ConfigError):
        raise RequestInvalid(field_errors(stack_file, run.error.problems, request)) from None
    if run.error is not None:
        raise run.error
    return ValidatedRequest(
        stack=stack,
        warnings=field_errors(stack_file, warnings, request),
        models=list(run.outputs.get("models") or []),
        cost=run.outputs.get("cost"),
    )
