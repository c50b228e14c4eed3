"""The routing CRDs we install ourselves, as typed resources (see `crds/README.md` for the files).

Typed `CustomResourceDefinition`s rather than a YAML ConfigGroup, so a preview, the policy pack and
the tests see each one. They are cluster-wide and other teams' routes may live on them, so they are
retained when the stack is deleted (deleting a CRD deletes every object of its kind), and applied
with `patchForce`: a cluster that already has the same bundle from someone else's `kubectl apply`
gets ours without a field-manager conflict.

The EPP discovers the `llm-d.ai` kinds once, when it starts (llm-d-router v0.10.0
`pkg/epp/server/controller_config.go`): the CRDs must exist before any picker runs, so every
release that brings a picker depends on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

CRD_DIR = Path(__file__).with_name("crds")
GATEWAY_API_FILES = tuple(
    f"gateway.networking.k8s.io_{kind}.yaml"
    for kind in ("gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants", "backendtlspolicies", "listenersets", "tlsroutes")
)
GATEWAY_API_SAFE_UPGRADES = "gateway.networking.k8s.io_vap_safeupgrades.yaml"
INFERENCE_POOL_FILES = ("inference.networking.k8s.io_inferencepools.yaml",)
LLM_D_FILES = ("llm-d.ai_inferenceobjectives.yaml", "llm-d.ai_inferencemodelrewrites.yaml")


@cache
def documents(file: str) -> tuple[dict[str, Any], ...]:
    text = (CRD_DIR / file).read_text(encoding="utf-8")
    return tuple(doc for doc in yaml.safe_load_all(text) if doc)


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
        if args.gateway_api:
            self._safe_upgrades(name, child)
        self.register_outputs({"crds": [crd.metadata.name for crd in self.ready]})

    def _safe_upgrades(self, name: str, opts: pulumi.ResourceOptions) -> None:
        """The standard bundle's admission policy: refuses experimental or pre-v1.5 Gateway API
        CRDs over these (someone's stray `kubectl apply` of an older bundle)."""
        policy, binding = documents(GATEWAY_API_SAFE_UPGRADES)
        vap = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{name}-gateway-api-safe-upgrades", metadata=_metadata(policy), spec=policy["spec"], opts=opts
        )
        k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{name}-gateway-api-safe-upgrades-binding",
            metadata=_metadata(binding),
            spec=binding["spec"],
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[vap])),
        )
