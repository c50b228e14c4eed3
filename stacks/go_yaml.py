"""Stack files read as the Pulumi CLI reads them: go-yaml v3, not PyYAML.

The two disagree on plain scalars, and the offline plan must see what `pulumi preview` hands the
program. PyYAML follows YAML 1.1: `yes`, `on` and `off` are booleans, `1:30` is the base-60
integer 90, `2024-01-01` a date, `1e3` a string; and it raises a bare ValueError (a traceback) on a
date such as `2001-13-45` or an integer of 5,000 digits. go-yaml v3 (resolve.go) takes only
`true`/`false` (three casings) as booleans, reads numbers with Go's strconv (base prefixes,
underscores dropped, int64 then uint64 then float64), keeps dates as text when decoding into an
untyped value (which the CLI does for structured config), and any other plain scalar is text.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

GO_PLAIN_TAG = "tag:llm-platform,2026:go-plain"  # a plain scalar, resolved as go-yaml v3 would
_MERGE_TAG = "tag:yaml.org,2002:merge"

_SPECIAL: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# strconv.ParseInt(s, 0, 64)'s syntax once underscores are gone: a sign, then 0x / 0o / 0b, a
# leading 0 (octal), or decimal
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1
_GO_FLOAT_MAX = 1.7976931348623157e308


def _go_int(text: str) -> int | None:
    match = _GO_INT.fullmatch(text)
    if match is None or len(text) > 4000:  # past 2**64 whatever the base (and int() refuses 4300 digits)
        return None
    sign, digits = match.groups()
    if digits[:2] in ("0x", "0X"):
        value = int(digits[2:], 16)
    elif digits[:2] in ("0o", "0O"):
        value = int(digits[2:], 8)
    elif digits[:2] in ("0b", "0B"):
        value = int(digits[2:], 2)
    elif len(digits) > 1 and digits[0] == "0":
        value = int(digits[1:], 8)
    else:
        value = int(digits)
    if sign == "-":
        value = -value
    if _INT64[0] <= value <= _INT64[1] or (not sign and value <= _UINT64_MAX):
        return value
    return None


def go_plain_scalar(text: str) -> Any:
    """What go-yaml v3 decodes a plain scalar into, for an untyped target."""
    if text in _SPECIAL:
        return _SPECIAL[text]
    if text[:1] == ".":
        try:
            value = float(text)
        except ValueError:
            return text
        return value if math.isfinite(value) else text
    if text[:1] not in "+-0123456789":
        return text  # `yes`, `on`, names: text
    plain = text.replace("_", "")
    integer = _go_int(plain)
    if integer is not None:
        return integer
    if _YAML_STYLE_FLOAT.fullmatch(plain):
        value = float(plain)
        if abs(value) <= _GO_FLOAT_MAX:  # strconv reports overflow as an error: then it is text
            return value
    return text  # dates (kept as text), `1:30`, versions such as 1.2.3


class GoYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with go-yaml v3's reading of plain scalars, sets and ordered maps."""

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return _MERGE_TAG if value == "<<" else GO_PLAIN_TAG
        return super().resolve(kind, value, implicit)


def _construct_plain(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return go_plain_scalar(loader.construct_scalar(node))


def _construct_set(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, None]:
    return {loader.construct_object(key): None for key, _ in node.value}  # go-yaml: a map of nulls


def _construct_pairs(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> list[Any]:
    return [loader.construct_object(item, deep=True) for item in node.value]  # go-yaml: a list of maps


def _construct_binary(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    """go-yaml decodes `!!binary` into a Go string of those bytes (JSON then carries it as text)."""
    return loader.construct_yaml_binary(node).decode("utf-8", errors="replace")


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    """An explicit `!!timestamp`: checked as PyYAML checks it (a bad date is an error), kept as the
    text written, a value the config reads as text (go-yaml's time.Time reaches JSON as text too)."""
    loader.construct_yaml_timestamp(node)
    return str(node.value)


GoYamlLoader.add_constructor(GO_PLAIN_TAG, _construct_plain)
GoYamlLoader.add_constructor("tag:yaml.org,2002:binary", _construct_binary)
GoYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
GoYamlLoader.add_constructor("tag:yaml.org,2002:set", _construct_set)
GoYamlLoader.add_constructor("tag:yaml.org,2002:omap", _construct_pairs)
GoYamlLoader.add_constructor("tag:yaml.org,2002:pairs", _construct_pairs)


def literal_text(node: yaml.Node) -> str | None:
    """A top-level config value as the CLI stores it: a plain scalar's text as written (Pulumi
    decodes each key's value into a Go string first), None for null or anything else."""
    if isinstance(node, yaml.ScalarNode) and node.tag == GO_PLAIN_TAG and go_plain_scalar(node.value) is not None:
        return node.value
    return None
