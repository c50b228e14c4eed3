"""What a pull request changes in a stack: two offline plan JSONs (`plan --json`, base and head)
compared resource by resource, model by model (predicted KV-cache tokens and concurrency), and in
the GPU bill (cost at minimum and maximum scale).

A resource is matched by URN. A changed input is a dotted path to the leaf that differs (lists as a
whole). A change is a replacement when the URN changes (type or name: a delete and a create), or
when it touches an input the cloud cannot change in place (`FORCE_NEW`, each rule with its source),
because that is the line a reviewer must not miss: a replaced GPU node pool drains every model on it.

A plan document with `errors` (the stack's config failed validation at that commit) makes the
result red, with the error lines; it is never a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .plan_files import read_plan

# (type token, input path prefix) -> why the cloud replaces the resource when it changes.
FORCE_NEW: dict[tuple[str, str], str] = {
    # terraform-provider-aws internal/service/eks/node_group.go: ForceNew attributes (pulumi-aws bridges them)
    ("aws:eks/nodeGroup:NodeGroup", "instanceTypes"): "EKS node groups cannot change instance types",
    ("aws:eks/nodeGroup:NodeGroup", "amiType"): "EKS node groups cannot change AMI type",
    ("aws:eks/nodeGroup:NodeGroup", "capacityType"): "EKS node groups cannot change capacity type",
    ("aws:eks/nodeGroup:NodeGroup", "diskSize"): "EKS node groups cannot change disk size",
    ("aws:eks/nodeGroup:NodeGroup", "subnetIds"): "EKS node groups cannot change subnets",
    ("aws:eks/nodeGroup:NodeGroup", "nodeRoleArn"): "EKS node groups cannot change node role",
    ("aws:eks/cluster:Cluster", "name"): "an EKS cluster's name is its identity",
    # GKE: guest accelerators cannot be added to a pool (GKE "Run GPUs in Standard node pools"); a
    # changed initialNodeCount or node configuration recreates it (pulumi-gcp container/nodePool docs)
    ("gcp:container/nodePool:NodePool", "nodeConfig.machineType"): "a GKE node pool cannot change machine type",
    ("gcp:container/nodePool:NodePool", "nodeConfig.guestAccelerators"): "GPUs cannot be changed on an existing GKE node pool",
    ("gcp:container/nodePool:NodePool", "nodeConfig.spot"): "a GKE node pool cannot switch spot",
    ("gcp:container/nodePool:NodePool", "nodeConfig.diskSizeGb"): "a GKE node pool cannot change disk size",
    ("gcp:container/nodePool:NodePool", "initialNodeCount"): "changing initialNodeCount recreates a GKE node pool",
    ("gcp:container/nodePool:NodePool", "name"): "a GKE node pool's name is its identity",
    ("gcp:container/cluster:Cluster", "location"): "a GKE cluster cannot move",
    # AKS: VM size and GPU profile replace an agent pool (pulumi-azure-native PR #3655); spot
    # priority and max price are immutable (learn.microsoft.com/azure/aks/spot-node-pool)
    ("azure-native:containerservice:AgentPool", "vmSize"): "an AKS agent pool cannot change VM size",
    ("azure-native:containerservice:AgentPool", "gpuInstanceProfile"): "an AKS agent pool cannot change its MIG profile",
    ("azure-native:containerservice:AgentPool", "scaleSetPriority"): "an AKS agent pool cannot switch spot",
    ("azure-native:containerservice:AgentPool", "spotMaxPrice"): "an AKS spot pool's max price is immutable",
    # Kubernetes API immutable fields (kubernetes.io API reference)
    ("kubernetes:batch/v1:Job", "spec"): "a Job's pod template is immutable",
    ("kubernetes:core/v1:PersistentVolumeClaim", "spec.storageClassName"): "a claim's storage class is immutable",
    ("kubernetes:core/v1:PersistentVolumeClaim", "spec.accessModes"): "a claim's access modes are immutable",
    ("kubernetes:storage.k8s.io/v1:StorageClass", "provisioner"): "a StorageClass is immutable but for its metadata",
    ("kubernetes:storage.k8s.io/v1:StorageClass", "parameters"): "a StorageClass is immutable but for its metadata",
    ("kubernetes:storage.k8s.io/v1:StorageClass", "reclaimPolicy"): "a StorageClass is immutable but for its metadata",
    ("kubernetes:storage.k8s.io/v1:StorageClass", "volumeBindingMode"): "a StorageClass is immutable but for its metadata",
    ("kubernetes:apps/v1:Deployment", "spec.selector"): "a Deployment's selector is immutable",
    ("kubernetes:helm.sh/v3:Release", "name"): "a Helm release's name is its identity",
}

Format = Literal["text", "markdown", "json"]


@dataclass
class ResourceChange:
    urn: str
    type: str
    action: Literal["create", "delete", "update", "replace"]
    keys: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


@dataclass
class StackDiff:
    stack: str
    errors: list[str] = field(default_factory=list)  # config errors at either commit (red)
    changes: list[ResourceChange] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    cost: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def count(self, action: str) -> int:
        return sum(c.action == action for c in self.changes)

    @property
    def ok(self) -> bool:
        return not self.errors


def leaf_paths(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to the leaves of a JSON value; lists are leaves (compared whole)."""
    if isinstance(value, dict) and value:
        paths: dict[str, Any] = {}
        for key in sorted(value):
            paths.update(leaf_paths(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return paths
    return {prefix: value}


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    old, new = leaf_paths(before), leaf_paths(after)
    return sorted(path for path in old.keys() | new.keys() if old.get(path, _MISSING) != new.get(path, _MISSING))


_MISSING = object()


def replacement_reasons(type_token: str, keys: list[str]) -> list[str]:
    reasons = []
    for (token, prefix), why in FORCE_NEW.items():
        if token == type_token and any(k == prefix or k.startswith(prefix + ".") for k in keys):
            reasons.append(f"{prefix}: {why}")
    return reasons


def _resources(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r for r in document.get("resources", [])}


def _model_rows(base: dict[str, Any], head: dict[str, Any]) -> list[dict[str, Any]]:
    def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
        models = (document.get("outputs") or {}).get("models")
        return {m["name"]: m for m in models} if isinstance(models, list) else {}

    old, new = by_name(base), by_name(head)
    rows = []
    for name in sorted(old.keys() | new.keys()):
        row: dict[str, Any] = {"model": name}
        for side, models in (("before", old), ("after", new)):
            model = models.get(name) or {}
            predicted = model.get("predicted") or {}
            scale_out = model.get("scaleOut") or {}
            row[side] = (
                {
                    "kvCacheTokens": predicted.get("kvCacheTokens"),
                    "maxConcurrency": predicted.get("maxConcurrency"),
                    "scaleOut": (scale_out["warmSeconds"], scale_out["coldSeconds"]) if scale_out else None,
                }
                if name in models
                else None
            )
        rows.append(row)
    return rows


def _cost_rows(base: dict[str, Any], head: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    def scale(document: dict[str, Any], key: str) -> float | None:
        cost = (document.get("outputs") or {}).get("cost")
        return cost[key]["perMonth"] if isinstance(cost, dict) else None

    rows: dict[str, dict[str, float | None]] = {}
    for key, label in (("atMinimum", "min"), ("atMaximum", "max")):
        before, after = scale(base, key), scale(head, key)
        delta = round(after - before, 2) if before is not None and after is not None else None
        rows[label] = {"before": before, "after": after, "delta": delta}
    return rows


def diff_documents(base: dict[str, Any] | None, head: dict[str, Any] | None, stack: str | None = None) -> StackDiff:
    """`None` for a side where the stack does not exist (added or removed in the PR)."""
    base, head = base or {}, head or {}
    result = StackDiff(stack or head.get("stack") or base.get("stack") or "?")
    for side, document in (("base", base), ("head", head)):
        result.errors += [f"{side}: {line}" for line in document.get("errors", [])]
    if result.errors:
        return result
    old, new = _resources(base), _resources(head)
    for urn in sorted(new.keys() - old.keys()):
        result.changes.append(ResourceChange(urn, new[urn]["type"], "create"))
    for urn in sorted(old.keys() - new.keys()):
        result.changes.append(ResourceChange(urn, old[urn]["type"], "delete"))
    for urn in sorted(old.keys() & new.keys()):
        keys = changed_keys(old[urn].get("inputs", {}), new[urn].get("inputs", {}))
        if keys:
            reasons = replacement_reasons(new[urn]["type"], keys)
            result.changes.append(ResourceChange(urn, new[urn]["type"], "replace" if reasons else "update", keys, reasons))
    result.models = _model_rows(base, head)
    result.cost = _cost_rows(base, head)
    return result


def load_document(path: Path) -> dict[str, Any] | None:
    return read_plan(path) if path.exists() else None


def diff_paths(base: Path, head: Path) -> list[StackDiff]:
    """Two plan JSONs of one stack, or two directories of `<stack>.json` paired by name."""
    if base.is_dir() or head.is_dir():
        names = sorted({p.stem for d in (base, head) if d.is_dir() for p in d.glob("*.json")})
        return [diff_documents(load_document(base / f"{n}.json"), load_document(head / f"{n}.json"), n) for n in names]
    return [diff_documents(load_document(base), load_document(head))]


def _money(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+,.0f}" if signed else f"{value:,.0f}"


def _model_cell(side: dict[str, Any] | None) -> str:
    if side is None:
        return "none"
    return f"{side['kvCacheTokens']:,} tokens, {side['maxConcurrency']}x" if side.get("kvCacheTokens") is not None else "not predicted"


def _scale_out_cell(side: dict[str, Any] | None) -> str:
    """Seconds to one more replica, warm node / cold node."""
    scale_out = (side or {}).get("scaleOut")
    if not scale_out:
        return "none" if side is None else "not predicted"
    warm, cold = scale_out
    return f"{warm} s / {'no node added' if cold is None else f'{cold} s'}"


def render(diffs: list[StackDiff], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps(
            [
                {
                    "stack": d.stack,
                    "ok": d.ok,
                    "errors": d.errors,
                    "summary": {a: d.count(a) for a in ("create", "update", "replace", "delete")},
                    "changes": [c.__dict__ for c in d.changes],
                    "models": d.models,
                    "cost": d.cost,
                }
                for d in diffs
            ],
            indent=2,
        ) + "\n"
    return "\n".join(_markdown(d) if fmt == "markdown" else _text(d) for d in diffs)


def _summary(d: StackDiff) -> str:
    return f"{d.count('create')} to create, {d.count('update')} to update, {d.count('replace')} to replace, {d.count('delete')} to delete"


def _text(d: StackDiff) -> str:
    if not d.ok:
        return f"stack {d.stack}: INVALID\n" + "".join(f"  error: {e}\n" for e in d.errors)
    lines = [f"stack {d.stack}: {_summary(d)}"]
    for c in d.changes:
        detail = f" ({', '.join(c.keys)})" if c.keys else ""
        lines.append(f"  {c.action:<8} {c.urn}{detail}")
        lines += [f"           replaced because {r}" for r in c.reasons]
    for m in d.models:
        lines.append(f"  model {m['model']}: {_model_cell(m['before'])} -> {_model_cell(m['after'])}")
        lines.append(f"  scale-out {m['model']} (warm / cold node): {_scale_out_cell(m['before'])} -> {_scale_out_cell(m['after'])}")
    for label, row in d.cost.items():
        lines.append(f"  cost at {label} scale, USD/month: {_money(row['before'])} -> {_money(row['after'])} ({_money(row['delta'], True)})")
    return "\n".join(lines) + "\n"


def _markdown(d: StackDiff) -> str:
    if not d.ok:
        errors = "\n".join(f"- `{e}`" for e in d.errors)
        return f"### :x: `{d.stack}`: config errors\n\n{errors}\n"
    cost = d.cost
    summary = _summary(d).replace(f"{d.count('replace')} to replace", f"**{d.count('replace')} to replace**") if d.count("replace") else _summary(d)
    lines = [
        f"### `{d.stack}`: {summary}",
        "",
        "| | before | after | delta |",
        "|---|---:|---:|---:|",
        *[f"| cost at {label} scale (USD/month) | {_money(r['before'])} | {_money(r['after'])} | {_money(r['delta'], True)} |" for label, r in cost.items()],
        *[f"| model `{m['model']}` | {_model_cell(m['before'])} | {_model_cell(m['after'])} | |" for m in d.models],
        *[f"| scale-out `{m['model']}` (warm / cold node) | {_scale_out_cell(m['before'])} | {_scale_out_cell(m['after'])} | |" for m in d.models],
        "",
    ]
    if d.changes:
        lines += ["<details><summary>Resource changes</summary>", "", "| action | resource | inputs | why replaced |", "|---|---|---|---|"]
        for c in d.changes:
            lines.append(f"| {c.action} | `{c.urn.rsplit('::', 1)[-1]}` ({c.type}) | {', '.join(f'`{k}`' for k in c.keys)} | {'; '.join(c.reasons)} |")
        lines += ["", "</details>", ""]
    return "\n".join(lines)
