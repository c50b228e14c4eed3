"""Which zones offer each GKE accelerator type, so a pool in a zone without its GPU fails at
preview instead of half-way through `pulumi up` (GKE refuses such a node pool).

The facts live in `data/gcp_gpu_zones.yaml` (with their source) for the regions listed there; for
another region we know nothing and check nothing (`None`), rather than refuse a zone that may
well offer the GPU.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

_DATA = Path(__file__).parent / "data" / "gcp_gpu_zones.yaml"


@cache
def _zones() -> dict[str, dict[str, frozenset[str]]]:
    raw = yaml.safe_load(_DATA.read_text())
    return {
        region: {accelerator: frozenset(zones) for accelerator, zones in accelerators.items()}
        for region, accelerators in raw["regions"].items()
    }


def zone_table_regions() -> list[str]:
    return sorted(_zones())


def accelerator_zones(accelerator: str | None, region: str) -> frozenset[str] | None:
    """Zones of `region` that offer `accelerator`; None when the table does not cover the region."""
    table = _zones().get(region)
    if table is None or accelerator is None:
        return None
    return table.get(accelerator, frozenset())
