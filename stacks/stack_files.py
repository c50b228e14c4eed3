"""Reading `Pulumi.<stack>.yaml` without the Pulumi CLI, the way the engine would hand it over.

Mocks never read stack files (pulumi/pulumi#4472), so the offline plan and the tests load the file
here and give the program exactly what the engine gives it: keys `namespace:key`, structured
values as JSON text, and `secure:` values as secrets (they cannot be decrypted offline, so a
placeholder stands in, still marked secret).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config.errors import format_key_path
from components.config.stack import CONFIG_NAMESPACE, StackConfig

from . import PROJECT_DIR
from .go_yaml import GoYamlLoader, literal_text
from .config_keys import ConfigKeyError, foreign_key_warnings, normalised_config
from .preflight import checked_stack_config

SECRET_PLACEHOLDER = "offline-placeholder-secret"
STACK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"  # Pulumi's stack name rule, 100 characters at most


class UnknownStackError(Exception):
    def __init__(self, stack: str, available: list[str]):
        self.stack = stack
        self.available = available
        listed = ", ".join(available) if available else "none"
        if re.fullmatch(STACK_NAME_PATTERN, stack):
            super().__init__(f"no stack named {stack!r}: Pulumi.{stack}.yaml does not exist (available stacks: {listed})")
        else:
            shown = repr(stack) if len(stack) <= 60 else repr(stack[:57]) + "…"
            super().__init__(
                f"{shown} is not a stack name: Pulumi's are letters, digits, '-', '_' and '.', at most 100 characters (available stacks: {listed})"
            )


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
        cfg, warnings = checked_stack_config(values, self.file_name, secret)
        return cfg, foreign_key_warnings(self.values) + warnings

    def validate(self) -> StackConfig:
        return self.check()[0]


def duplicate_keys(root: yaml.Node) -> list[tuple[str, str]]:
    """(key path, why) for every key given twice in one map. PyYAML keeps the last of two equal
    keys; the Pulumi CLI refuses the file (Go's yaml.v3: "mapping key already defined"), so a
    second `maxSize:` silently winning offline would plan what `pulumi up` never runs. Each node
    is read once, at its anchor: an alias repeats what was already checked."""
    found: list[tuple[int, str, str]] = []
    seen_nodes: set[int] = set()
    pending: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    while pending:
        node, path = pending.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            lines: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                line = key_node.start_mark.line + 1
                if key is not None and key in lines:
                    found.append((line, _shown_path(path + (key,)), f"given twice in one map (lines {lines[key]} and {line}); YAML would keep only the last"))
                if key is not None:
                    lines.setdefault(key, line)
                pending.append((value_node, path + ((key,) if key is not None else ())))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((item, path + (i,)) for i, item in enumerate(node.value))
    return [(key, why) for _, key, why in sorted(found)]


# go-yaml v3's bound on alias expansion (decode.go, allowedAliasRatio), which the Pulumi CLI
# reads stack files with: past 1000 decoded nodes and 100 from aliases, at most 99% of them may
# come from aliases up to 400,000 decodes, falling to 10% at 4,000,000.
_ALIAS_RATIO_LOW, _ALIAS_RATIO_HIGH = 400_000, 4_000_000


def _allowed_alias_ratio(decoded: int) -> float:
    if decoded <= _ALIAS_RATIO_LOW:
        return 0.99
    if decoded >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


def alias_refusal(root: yaml.Node) -> str | None:
    """Why the Pulumi CLI would refuse this document's aliases, if it would: an anchor whose value
    holds itself ("anchor value contains itself"), or aliases that expand into most of what is
    decoded ("document contains excessive aliasing": the billion laughs). PyYAML accepts both
    and would hand the program a cycle, or build a value of a billion strings."""
    decoded = from_aliases = 0
    defined: set[int] = set()
    open_nodes: set[int] = set()
    pending: list[tuple[yaml.Node, bool, bool]] = [(root, False, False)]  # node, in an alias, leaving
    while pending:
        node, in_alias, leaving = pending.pop()
        if leaving:
            open_nodes.discard(id(node))
            continue
        if id(node) in open_nodes:
            return "an anchor's value holds an alias of itself; the Pulumi CLI refuses the file (anchor value contains itself)"
        in_alias = in_alias or id(node) in defined  # a node seen before is reached again through an alias
        defined.add(id(node))
        decoded += 1
        from_aliases += in_alias
        if from_aliases > 100 and decoded > 1000 and from_aliases / decoded > _allowed_alias_ratio(decoded):
            return "its aliases expand to most of what it holds; the Pulumi CLI refuses the file (document contains excessive aliasing)"
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value if isinstance(node, yaml.SequenceNode) else []
        if children:
            open_nodes.add(id(node))
            pending.append((node, in_alias, True))
            pending.extend((child, in_alias, False) for child in reversed(children))
    return None


def _shown_path(path: tuple[str | int, ...]) -> str:
    """("config", "llm-platform:gpuPools", 0, "maxSize") -> "llm-platform:gpuPools[0].maxSize"."""
    if len(path) >= 2 and path[0] == "config" and isinstance(path[1], str) and path[1].startswith(f"{CONFIG_NAMESPACE}:"):
        return format_key_path((path[1][len(CONFIG_NAMESPACE) + 1:],) + path[2:])
    return ".".join(str(p) for p in path)


def available_stacks(project_dir: Path = PROJECT_DIR) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def load_stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> StackFile:
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not re.fullmatch(STACK_NAME_PATTERN, stack) or not path.is_file():  # the name first: no path from `../x`
        raise UnknownStackError(stack, available_stacks(project_dir))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StackFileError(
            f"{path.name}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): Pulumi reads stack files as UTF-8; save it so"
        ) from None
    try:
        root = yaml.compose(text, Loader=GoYamlLoader)
        refusal = alias_refusal(root) if root is not None else None
        if refusal:
            raise StackFileError(f"{path.name}: {refusal}")
        duplicates = duplicate_keys(root) if root is not None else []
        document = yaml.load(text, Loader=GoYamlLoader) or {}  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path.name}: {_yaml_problem(exc)}") from None
    except (ValueError, OverflowError) as exc:  # a tagged value its type cannot hold: `!!int foo`, `!!timestamp 2001-13-45`
        raise StackFileError(f"{path.name}: not valid YAML: a value its tag cannot hold ({exc})") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise StackFileError(f"{path.name}: nested too deeply to read (hundreds of levels of lists or maps): no stack config is") from None
    if duplicates:
        raise StackFileError("\n".join(f"{path.name}: {key}: {why}" for key, why in duplicates))
    config = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise StackFileError(f"{path.name}: expected a top-level `config:` map")
    config.update(_top_level_text(root))
    try:
        config = normalised_config(config)
    except ConfigKeyError as exc:
        raise StackFileError(f"{path.name}: config: {exc}") from None
    return stack_file_from_values(stack, config, path)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error on one line, where it is: its own text quotes the line and points at it."""
    mark = getattr(exc, "problem_mark", None)
    problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}not valid YAML: {problem}" + (f" ({' '.join(str(context).split())})" if context else "")


def _top_level_text(root: yaml.Node) -> dict[str, str]:
    """Each `config:` key whose value is a plain scalar, as the text written: the CLI reads a key's
    value into a string first, so `llm-platform:cloud: 0x10` reaches the program as "0x10"."""
    if not isinstance(root, yaml.MappingNode):
        return {}
    config = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "config"), None)
    if not isinstance(config, yaml.MappingNode):
        return {}
    return {k.value: text for k, v in config.value if isinstance(k, yaml.ScalarNode) and (text := literal_text(v)) is not None}


def _is_secure(value: Any) -> bool:
    """`{secure: <ciphertext>}`: what `pulumi config set --secret` writes (the CLI's isSecureValue)."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("secure"), str)


def _holds_secure(value: Any) -> bool:
    """A secure value anywhere inside: the engine then marks the whole key secret. (A loop, not
    recursion: a portal request may nest a thousand lists deep.)"""
    pending = [value]
    while pending:
        item = pending.pop()
        if _is_secure(item):
            return True
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def stack_file_from_values(stack: str, config: dict[str, Any], path: Path | None = None) -> StackFile:
    """A stack from an in-memory config map (tests, benchmarks, the portal's requests)."""
    secret_keys = frozenset(k for k, v in config.items() if _holds_secure(v))
    return StackFile(stack, path or PROJECT_DIR / f"Pulumi.{stack}.yaml", dict(config), secret_keys)
