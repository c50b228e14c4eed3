"""Kubernetes releases as data (`data/kubernetes_releases.yaml`): the newest minor released upstream."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

_DATA = Path(__file__).parent / "data" / "kubernetes_releases.yaml"


@dataclass(frozen=True)
class NewestRelease:
    minor: int  # the y of 1.y
    released: str
    source: str

    @property
    def next_minor(self) -> int:
        """The minor that may have come out since the data was written."""
        return self.minor + 1


@cache
def newest_release() -> NewestRelease:
    newest = yaml.safe_load(_DATA.read_text())["newest"]
    major, minor = str(newest["minor"]).split(".")
    assert major == "1", newest
    return NewestRelease(int(minor), str(newest["released"]), str(newest["source"]))
