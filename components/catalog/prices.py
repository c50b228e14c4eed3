"""Instance prices: the dated tables in `data/<cloud>_prices.yaml`, with the stack's overrides on top.

A price we do not know is `None`, never 0: the cost estimate then warns and names the type,
because a silent zero makes a GPU pool look free.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

_DATA_DIR = Path(__file__).parent / "data"
PRICED_CLOUDS = ("aws", "gcp", "azure")

Capacity = Literal["on-demand", "spot"]


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    sources: dict[str, str]
    regions: dict[str, dict[str, dict[str, float]]]  # region -> instance type -> {onDemand, spot}


@cache
def price_table(cloud: str = "aws") -> PriceTable:
    raw = yaml.safe_load((_DATA_DIR / f"{cloud}_prices.yaml").read_text())
    return PriceTable(as_of=str(raw["as_of"]), sources=dict(raw["sources"]), regions=raw["regions"])


_KEY = {"on-demand": "onDemand", "spot": "spot"}


def hourly_price(
    region: str,
    instance_type: str,
    capacity: Capacity,
    overrides: dict[str, dict[str, float]] | None = None,
    cloud: str = "aws",
) -> float | None:
    """USD per instance-hour, or None when neither the stack's overrides nor the table know it."""
    key = _KEY[capacity]
    override = (overrides or {}).get(instance_type, {})
    if key in override:
        return override[key]
    return price_table(cloud).regions.get(region, {}).get(instance_type, {}).get(key)
