"""The model architecture catalog (`data/model_architectures.yaml`): the config.json keys the
capacity planner reads, for the models we size without a user's file, each with the published copy
it was taken from. Facts only: the planner turns an entry into a shape."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

CATALOG_FILE = Path(__file__).parent / "data" / "model_architectures.yaml"


@cache
def _catalog_raw() -> dict[str, Any]:
    return yaml.safe_load(CATALOG_FILE.read_text())["models"]


def catalog_names() -> list[str]:
    return sorted(_catalog_raw())


def catalog_entry(name: str) -> dict[str, Any] | None:
    """The catalog's record for an HF id (case-insensitive): config keys, source, parameter count."""
    raw = _catalog_raw()
    key = next((k for k in raw if k.lower() == name.lower()), None)
    return raw[key] if key else None
