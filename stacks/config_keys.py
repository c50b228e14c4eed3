"""The keys of a stack's `config:` map, as the Pulumi CLI reads them.

The CLI parses every key as `<namespace>:<name>` (or the legacy `<namespace>:config:<name>`) and
refuses the whole file otherwise (`config.ParseKey`: "could not parse region as a configuration
key"), so the offline plan refuses the same files. A key in another package's namespace
(`aws:region`, `gcp:project`, `kubernetes:context`) configures only that package's *default*
provider, which the engine builds from stack config; this program creates every provider
explicitly from `llm-platform:` keys (and its stacks disable the defaults), so such a key changes
nothing: a warning, since the operator who set `aws:region: us-east-1` expects it to matter.
"""

from __future__ import annotations

from collections.abc import Iterable

from components.config.stack import CONFIG_NAMESPACE

ENGINE_NAMESPACE = "pulumi"  # the engine's own keys: disable-default-providers, tags, template


class ConfigKeyError(ValueError):
    """A key the Pulumi CLI cannot parse: it refuses the stack file."""


def parse_config_key(key: object) -> tuple[str, str]:
    """(namespace, name) of a stack-file key, as the CLI reads it; raises ConfigKeyError."""
    if not isinstance(key, str):
        raise ConfigKeyError(f"{key!r} is not a config key: keys are text, `<namespace>:<name>`")
    parts = key.split(":")
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    if len(parts) == 3 and parts[1] == "config" and parts[0] and parts[2]:
        return parts[0], parts[2]  # the legacy `<namespace>:config:<name>` form
    if len(parts) == 1:
        hint = f"; did you mean {CONFIG_NAMESPACE}:{key}?" if key else ""
        raise ConfigKeyError(f"{key!r} has no namespace: Pulumi reads only `<namespace>:<name>` keys and refuses the file{hint}")
    raise ConfigKeyError(f"{key!r} is not a config key: Pulumi reads only `<namespace>:<name>` and refuses the file")


def normalised_config(config: dict[object, object]) -> dict[str, object]:
    """Keys as `<namespace>:<name>` (the engine's form); raises ConfigKeyError on the first the CLI
    would refuse, or on two spellings of one key (the CLI's map would keep one of them)."""
    out: dict[str, object] = {}
    for key, value in config.items():
        namespace, name = parse_config_key(key)
        normal = f"{namespace}:{name}"
        if normal in out:
            raise ConfigKeyError(f"{key!r} is {normal} given a second time")
        out[normal] = value
    return out


def foreign_key_warnings(keys: Iterable[str]) -> list[tuple[str, str]]:
    """(key, why) for each key that configures a default provider this program never uses."""
    warnings = []
    for key in sorted(keys):
        namespace = key.split(":", 1)[0]
        if namespace not in (CONFIG_NAMESPACE, ENGINE_NAMESPACE):
            warnings.append(
                (
                    key,
                    f"ignored: this program reads only {CONFIG_NAMESPACE}: keys (and the engine's pulumi: ones); a package's key "
                    f"such as aws:region configures only its default provider, and every provider here is explicit, "
                    f"made from {CONFIG_NAMESPACE}: keys (cloud, region, gcp, azure): set what you meant there",
                )
            )
    return warnings
