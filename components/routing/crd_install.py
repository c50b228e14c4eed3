"""The routing CRDs we install ourselves, as typed resources.

Typed `CustomResourceDefinition`s rather than a YAML ConfigGroup, so a preview, the policy pack and
the tests see each one. They are cluster-wide and other teams' routes may live on them, so they are
retained when the stack is deleted (deleting a CRD deletes every object of its kind), and applied
with `patchForce`: a cluster that already has the same bundle from someone else's `kubectl apply`
gets ours without a field-manager conflict.

The files are the upstream ones at their pinned commits (`crd_sources.yaml`: URL and SHA-256),
not copies in this repository: the program reads them from `LLM_PLATFORM_CRD_DIR` when set (the
tests point it at `../shared/upstream/routing/crds`), else from its download cache, else downloads
them once; a file whose hash differs is refused either way.

The Gateway API kinds are the four the routing layer and Istio use (GatewayClass, Gateway,
HTTPRoute, ReferenceGrant): istiod 1.30 watches the other standard kinds through delayed
informers (`pilot/pkg/config/kube/gateway/controller.go`), so their absence costs nothing.

The EPP discovers the `llm-d.ai` kinds once, when it starts (llm-d-router v0.10.0
`pkg/epp/server/controller_config.go`): the CRDs must exist before any picker runs, so every
release that brings a picker depends on them.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

SOURCES_FILE = Path(__file__).with_name("crd_sources.yaml")
CRD_DIR_ENV = "LLM_PLATFORM_CRD_DIR"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llm-platform" / "crds"
GATEWAY_API_FILES = tuple(f"gateway.networking.k8s.io_{kind}.yaml" for kind in ("gatewayclasses", "gateways", "httproutes", "referencegrants"))
INFERENCE_POOL_FILES = ("inference.networking.k8s.io_inferencepools.yaml",)
LLM_D_FILES = ("llm-d.ai_inferenceobjectives.yaml", "llm-d.ai_inferencemodelrewrites.yaml")


class CrdUnavailable(pulumi.RunError):
    """One clear line, not a traceback, when a pinned CRD can be neither found nor downloaded."""


@cache
def sources() -> dict[str, dict[str, str]]:
    return {entry["file"]: entry for entry in yaml.safe_load(SOURCES_FILE.read_text())["files"]}


def _matches(data: bytes, sha256: str) -> bool:
    return hashlib.sha256(data).hexdigest() == sha256


def _local(file: str) -> Path | None:
    directory = os.environ.get(CRD_DIR_ENV)
    candidates = sorted(Path(directory).rglob(file)) if directory else []
    return next(iter(candidates), None) if candidates else (CACHE_DIR / file if (CACHE_DIR / file).is_file() else None)


@cache
def crd_text(file: str) -> str:
    source = sources()[file]
    local = _local(file)
    if local is not None:
        data = local.read_bytes()
        if not _matches(data, source["sha256"]):
            raise CrdUnavailable(f"{local}: not the pinned {file} (SHA-256 differs from crd_sources.yaml)")
        return data.decode("utf-8")
    try:
        with urllib.request.urlopen(source["url"], timeout=60) as response:  # noqa: S310 (a pinned https URL)
            data = response.read()
    except OSError as exc:
        raise CrdUnavailable(
            f"cannot download the pinned CRD {file} from {source['url']} ({exc}); set {CRD_DIR_ENV} to a directory holding it"
        ) from exc
    if not _matches(data, source["sha256"]):
        raise CrdUnavailable(f"{source['url']}: SHA-256 differs from crd_sources.yaml; refusing it")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    (CACHE_DIR / file).write_bytes(data)
    return data.decode("utf-8")


def documents(file: str) -> tuple[dict[str, Any], ...]:
    return tuple(doc for doc in yaml.safe_load_all(crd_text(file)) if doc)


def _metadata(doc: dict[str, Any]) -> k8s.meta.v1.ObjectMetaArgs:
    meta = doc["metadata"]
    annotations = {**meta.get("annotations", {}), "pulumi.com/patchForce": "true"}
    return k8s.meta.v1.ObjectMetaArgs(name=meta["name"], annotations=annotations, labels=meta.get("labels"))


def _short(name: str) -> str:
    """`httproutes.gateway.networking.k8s.io` → `httproutes-gateway`: a resource name that says which."""
    plural, group = name.split(".", 1)
    return f"{plural}-{group.split('.')[0]}"


@dataclass(frozen=True)
class RoutingCrdsArgs:
    provider: k8s.Provider
    gateway_api: bool  # the Gateway API and InferencePool: False where the cloud installs them


class RoutingCrds(pulumi.ComponentResource):
    """Depend on `ready` before any Gateway, HTTPRoute, InferencePool or picker."""

    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: RoutingCrdsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:routing:RoutingCrds", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider, retain_on_delete=True)
        files = (*GATEWAY_API_FILES, *INFERENCE_POOL_FILES, *LLM_D_FILES) if args.gateway_api else LLM_D_FILES
        self.ready = []
        for file in files:
            for doc in documents(file):
                self.ready.append(
                    k8s.apiextensions.v1.CustomResourceDefinition(
                        f"{name}-{_short(doc['metadata']['name'])}", metadata=_metadata(doc), spec=doc["spec"], opts=child
                    )
                )
        self.register_outputs({"crds": [crd.metadata.name for crd in self.ready]})
