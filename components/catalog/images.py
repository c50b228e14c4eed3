"""The images the program puts in pods itself, as data (`data/images.yaml`): each by tag and, once
resolved, by digest, so a moved tag cannot put two builds behind one name on two nodes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

DATA = Path(__file__).parent / "data" / "images.yaml"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class CatalogImage:
    key: str
    name: str  # as a pod names it: no host means Docker Hub
    tag: str
    digest: str | None  # None: not resolved yet (see data/images.yaml)
    used_by: str
    source: str

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    @property
    def reference(self) -> str:
        """`name:tag@digest` once resolved: the tag stays for people, the digest is what is pulled."""
        return f"{self.name}:{self.helm_tag}"

    @property
    def helm_tag(self) -> str:
        """The tag as charts that write `registry/repository:tag` take it, digest and all."""
        return f"{self.tag}@{self.digest}" if self.digest else self.tag

    @property
    def registry(self) -> str:
        first, _, rest = self.name.partition("/")
        return first if rest and ("." in first or ":" in first or first == "localhost") else DOCKER_HUB

    @property
    def repository(self) -> str:
        """The path inside the registry (Docker Hub's official images live under `library/`)."""
        path = self.name.removeprefix(f"{self.registry}/") if self.name.startswith(f"{self.registry}/") else self.name
        return f"library/{path}" if self.registry == DOCKER_HUB and "/" not in path else path

    def chart_values(self, pull_policy: str = "IfNotPresent") -> dict[str, str]:
        """`{registry, repository, tag, pullPolicy}`, the image block of the llm-d and
        gateway-api-inference-extension charts (their templates join the first three as
        `registry/repository:tag`)."""
        registry, _, repository = self.name.rpartition("/")
        return {"registry": registry, "repository": repository, "tag": self.helm_tag, "pullPolicy": pull_policy}


def _entry(path: Path, key: str, raw: dict) -> CatalogImage:
    digest = raw.get("digest")
    if digest is not None and not DIGEST.fullmatch(str(digest)):
        raise ValueError(f"{path}: images.{key}.digest: {digest!r} is not sha256:<64 hex digits>")
    return CatalogImage(key, str(raw["name"]), str(raw["tag"]), digest, str(raw["used_by"]), str(raw["source"]))


def load_images(path: Path) -> dict[str, CatalogImage]:
    return {key: _entry(path, key, raw) for key, raw in yaml.safe_load(path.read_text())["images"].items()}


@cache
def catalog_images() -> dict[str, CatalogImage]:
    return load_images(DATA)


def catalog_image(key: str) -> CatalogImage:
    return catalog_images()[key]
