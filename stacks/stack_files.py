"""Reading `Pulumi.<stack>.yaml` without the Pulumi CLI, the way the engine would hand it over.

Mocks never read stack files (pulumi/pulumi#4472), so the offline plan and the tests load the file
here and give the program exactly what the engine gives it: keys `namespace:key`, structured
values as JSON text, and `secure:` values as secrets (they cannot be decrypted offline, so a
placeholder stands in, still marked secret).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config.errors import format_key_path
from components.config.stack import CONFIG_NAMESPACE, StackConfig

from . import PROJECT_DIR
from .preflight import checked_stack_config

SECRET_PLACEHOLDER = "offline-placeholder-secret"


class UnknownStackError(Exception):
    def __init__(self, stack: str, available: list[str]):
        self.stack = stack
        self.available = available
        listed = ", ".join(available) if available else "none"
        super().__init__(f"no stack named {stack!r}: Pulumi.{stack}.yaml does not exist (available stacks: {listed})")


class StackFileError(Exception):
    """The stack file itself is unreadable (bad YAML, no `config:` map)."""


@dataclass(frozen=True)
class StackFile:
    name: str
    path: Path
    values: dict[str, Any]  # config key (with namespace) -> value as written in YAML
    secret_keys: frozenset[str] = field(default_factory=frozenset)

    @property
    def file_name(self) -> str:
        return self.path.name

    def engine_config(self) -> dict[str, str]:
        """Config as the engine passes it to a program: every value a string, objects as JSON."""
        out: dict[str, str] = {}
        for key, value in self.values.items():
            if key in self.secret_keys:
                out[key] = SECRET_PLACEHOLDER
            elif isinstance(value, (dict, list)):
                out[key] = json.dumps(value)
            elif isinstance(value, bool):
                out[key] = "true" if value else "false"
            else:
                out[key] = str(value)
        return out

    def namespace_values(self) -> dict[str, Any]:
        prefix = f"{CONFIG_NAMESPACE}:"
        return {k[len(prefix):]: v for k, v in self.values.items() if k.startswith(prefix)}

    def check(self) -> tuple[StackConfig, list[tuple[str, str]]]:
        """The same validation and preflight the program runs: the config and the preflight's
        warnings (key path, message); raises ConfigError."""
        prefix = f"{CONFIG_NAMESPACE}:"
        secret = {k[len(prefix):] for k in self.secret_keys if k.startswith(prefix)}
        # an encrypted value (`{secure: …}`) is validated as the string the engine would decrypt
        values = {k: SECRET_PLACEHOLDER if k in secret else v for k, v in self.namespace_values().items()}
        return checked_stack_config(values, self.file_name, secret)

    def validate(self) -> StackConfig:
        return self.check()[0]


def duplicate_keys(text: str) -> list[tuple[str, str]]:
    """(key path, why) for every key given twice in one map. PyYAML keeps the last of two equal
    keys; the Pulumi CLI refuses the file (Go's yaml.v3: "mapping key already defined"), so a
    second `maxSize:` silently winning offline would plan what `pulumi up` never runs."""
    found: list[tuple[str, str]] = []

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                line = key_node.start_mark.line + 1
                if key is not None and key in seen:
                    found.append((_shown_path(path + (key,)), f"given twice in one map (lines {seen[key]} and {line}); YAML would keep only the last"))
                if key is not None:
                    seen.setdefault(key, line)
                walk(value_node, path + ((key,) if key is not None else ()))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (i,))

    walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    return found


def _shown_path(path: tuple[str | int, ...]) -> str:
    """("config", "llm-platform:gpuPools", 0, "maxSize") -> "llm-platform:gpuPools[0].maxSize"."""
    if len(path) >= 2 and path[0] == "config" and isinstance(path[1], str) and path[1].startswith(f"{CONFIG_NAMESPACE}:"):
        return format_key_path((path[1][len(CONFIG_NAMESPACE) + 1:],) + path[2:])
    return ".".join(str(p) for p in path)


def available_stacks(project_dir: Path = PROJECT_DIR) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def load_stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> StackFile:
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise UnknownStackError(stack, available_stacks(project_dir))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StackFileError(
            f"{path.name}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): Pulumi reads stack files as UTF-8; save it so"
        ) from None
    try:
        duplicates = duplicate_keys(text)
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path.name}: not valid YAML: {exc}") from None
    if duplicates:
        raise StackFileError("\n".join(f"{path.name}: {key}: {why}" for key, why in duplicates))
    config = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise StackFileError(f"{path.name}: expected a top-level `config:` map")
    return stack_file_from_values(stack, config, path)


def stack_file_from_values(stack: str, config: dict[str, Any], path: Path | None = None) -> StackFile:
    """A stack from an in-memory config map (tests, benchmarks, the portal's requests)."""
    secret_keys = frozenset(k for k, v in config.items() if isinstance(v, dict) and set(v) == {"secure"})
    return StackFile(stack, path or PROJECT_DIR / f"Pulumi.{stack}.yaml", dict(config), secret_keys)
