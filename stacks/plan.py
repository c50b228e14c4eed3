"""The offline plan: what `pulumi preview` would create, as a tree, as JSON, or as rendered objects.

Output contracts (kept stable; reviewers diff them):
- text: a tree of components and resources (type, name), then counts by type, then stack outputs,
  then the `cost` output as a table (per pool and capacity type, at minimum and maximum scale).
- `--json FILE`: {"stack", "project", "preview", "resources": [{"urn", "type", "name", "parent",
  "dependencies", "protect", "custom", "inputs"}], "outputs"}; resources in tree order (depth
  first, siblings by type then name), inputs with wire (camelCase) names, keys sorted.
- `--render DIR`: one YAML file per Kubernetes object, `<Kind>/<namespace>/<name>.yaml`
  (cluster-scoped: `<Kind>/<name>.yaml`); a Helm release as `HelmRelease/<namespace>/<name>.yaml`
  holding its chart, repository, version and values.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

from components.config.errors import ConfigError
from components.planner.cost import PRICE_SOURCE

from .offline import COMPUTED, ProgramRun, RegisteredResource

HELM_RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
JSON_RESOURCE_KEYS = ("urn", "type", "name", "parent", "dependencies", "protect", "custom", "inputs")


def tree_order(run: ProgramRun) -> list[tuple[str, RegisteredResource]]:
    """(tree prefix, resource), depth first from the root stack, siblings sorted by (type, name).
    The prefix ("│  ├─ ") is what the text plan draws; the JSON and render use only the order."""
    children: dict[str, list[RegisteredResource]] = defaultdict(list)
    for res in run.resources:
        children[res.parent].append(res)
    ordered: list[tuple[str, RegisteredResource]] = []

    def visit(parent: str, indent: str, is_root: bool) -> None:
        siblings = sorted(children.get(parent, []), key=lambda r: (r.type, r.name))
        for i, res in enumerate(siblings):
            last = i == len(siblings) - 1
            ordered.append(("" if is_root else indent + ("└─ " if last else "├─ "), res))
            visit(res.urn, "" if is_root else indent + ("   " if last else "│  "), False)

    visit("", "", True)
    return ordered


def render_text(run: ProgramRun) -> str:
    tree = [(prefix + res.type, res) for prefix, res in tree_order(run)]
    lines = [
        f"Offline plan of stack {run.stack!r} (project {run.project}): what `pulumi preview` would create.",
        f"Values that exist only after deploy are shown as {COMPUTED}.",
        "",
    ]
    width = max((len(label) for label, _ in tree), default=0) + 2
    for label, res in tree:
        protect = "  [protected]" if res.protect else ""
        lines.append(f"+ {label.ljust(width)}{res.name}{protect}")
    custom = [r for _, r in tree if r.custom]
    lines += ["", f"Resources: {len(tree)} to create ({len(custom)} resources, {len(tree) - len(custom)} components)"]
    for type_token, count in sorted(Counter(r.type for r in custom).items()):
        lines.append(f"  {count:>4}  {type_token}")
    if run.outputs:
        lines += ["", "Outputs:"]
        for key, value in run.outputs.items():
            shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            lines.append(f"  {key}: {shown}")
    cost = run.outputs.get("cost")
    if isinstance(cost, dict):
        lines += ["", *cost_table(cost, str(run.outputs.get("cloud", "aws")))]
    models = run.outputs.get("models")
    if isinstance(models, list) and any(isinstance(m, dict) and "scaleOut" in m for m in models):
        lines += ["", *scale_out_table(models)]
    return "\n".join(lines) + "\n"


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{value}"


def scale_out_table(models: list[dict[str, Any]]) -> list[str]:
    """Seconds from a traffic spike to one more serving replica: each phase, warm node / cold node."""
    budgets = [
        (m["name"] + (f" ({m['scaleOut']['warmHeadroom']} held)" if m["scaleOut"].get("warmHeadroom") else ""), m["scaleOut"])
        for m in models
        if isinstance(m, dict) and "scaleOut" in m
    ]
    phases = [p["phase"] for p in budgets[0][1]["phases"]]
    for _, budget in budgets[1:]:
        phases += [p["phase"] for p in budget["phases"] if p["phase"] not in phases]
    width = max(len(name) for name, _ in budgets) + 2
    lines = [
        "Scale-out budget, seconds from a traffic spike to one more ready replica (warm node / cold node; '-': no pool adds a node;",
        "'held': warm slots kept by placeholder pods, so that many scale-outs start warm):",
        "  " + "model".ljust(width) + "".join(f"{p:>14}" for p in phases) + f"{'total':>14}",
    ]
    for name, budget in budgets:
        by_phase = {p["phase"]: p for p in budget["phases"]}
        cells = "".join(
            f"{(_seconds(by_phase[p]['warmSeconds']) + ' / ' + _seconds(by_phase[p]['coldSeconds'])) if p in by_phase else '':>14}" for p in phases
        )
        total = f"{budget['warmSeconds']} / {_seconds(budget['coldSeconds'])}"
        lines.append("  " + name.ljust(width) + cells + f"{total:>14}")
    lines.append("  (each phase's source: the models output, scaleOut.phases[].source)")
    return lines


def cost_table(cost: dict[str, Any], cloud: str = "aws") -> list[str]:
    """The `cost` output as a table: per pool and capacity type, at minimum and maximum scale.
    Pool and instance columns widen for long names (Azure's VM sizes, long pool names)."""
    pool_w = max([16] + [len(p["pool"]) + 1 for p in cost["pools"]])
    type_w = max([16] + [len(p["instanceType"]) + 1 for p in cost["pools"]])
    total_w = pool_w + 22 + type_w + 7
    header = f"  {'pool':<{pool_w}}{'kind':<11}{'capacity':<11}{'instance':<{type_w}}{'nodes':>7}{'$/h min':>11}{'$/h max':>11}"
    lines = [
        f"Cost estimate ({cost['currency']}, {PRICE_SOURCE.get(cloud, cloud)} prices as of {cost['pricesAsOf']}, {cost['region']}; "
        f"compute only, not: {', '.join(cost['notIncluded'])}):",
        header,
    ]
    for pool in cost["pools"]:
        nodes = f"{pool['nodes']['min']}-{pool['nodes']['max']}"
        lines.append(
            f"  {pool['pool']:<{pool_w}}{pool['kind']:<11}{pool['capacityType']:<11}{pool['instanceType']:<{type_w}}{nodes:>7}"
            f"{pool['atMinimum']['perHour']:>11,.2f}{pool['atMaximum']['perHour']:>11,.2f}"
        )
    low, high, saving = cost["atMinimum"], cost["atMaximum"], cost["spotSavingAtMaximum"]
    lines.append(f"  {'total per hour':<{total_w}}{low['perHour']:>11,.2f}{high['perHour']:>11,.2f}")
    lines.append(f"  {'total per month (' + str(cost['hoursPerMonth']) + ' h)':<{total_w}}{low['perMonth']:>11,.0f}{high['perMonth']:>11,.0f}")
    lines.append(f"  spot saving at maximum scale: {saving['perHour']:,.2f}/h, {saving['perMonth']:,.0f}/month (vs the same nodes on demand)")
    held = cost.get("warmHeadroom") or {}
    for entry in held.get("models", []):
        lines.append(
            f"  warm headroom for {entry['model']}: {entry['gpus']} GPU(s) held idle on {entry['instanceType']}, "
            f"+{entry['perHour']:,.2f}/h, {entry['perMonth']:,.0f}/month beyond the minimum's nodes"
        )
    lines += [f"  warning: {w}" for w in cost["warnings"]]
    return lines


def plan_document(run: ProgramRun) -> dict[str, Any]:
    resources = []
    for _, res in tree_order(run):
        resources.append({key: getattr(res, key) for key in JSON_RESOURCE_KEYS})
    return {
        "stack": run.stack,
        "project": run.project,
        "preview": run.preview,
        "resources": resources,
        "outputs": run.outputs,
    }


def write_json(run: ProgramRun, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan_document(run), indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_error_json(stack: str, error: ConfigError, path: Path) -> None:
    """The plan document of a stack whose config is invalid: its error lines, no resources."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"stack": stack, "errors": [f"{error.stack_file}: {key}: {message}" for key, message in error.problems]}
    path.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def is_kubernetes_object(res: RegisteredResource) -> bool:
    return res.custom and res.type.startswith("kubernetes:") and res.type != HELM_RELEASE_TYPE


def rendered_objects(run: ProgramRun) -> dict[str, dict[str, Any]]:
    """Relative path -> document, for every Kubernetes object and Helm release the stack creates."""
    documents: dict[str, dict[str, Any]] = {}
    for _, res in tree_order(run):
        if res.type == HELM_RELEASE_TYPE:
            inputs = res.inputs
            doc = {
                "release": inputs.get("name", res.name),
                "namespace": inputs.get("namespace", "default"),
                "chart": inputs.get("chart"),
                "repository": (inputs.get("repositoryOpts") or {}).get("repo"),
                "version": inputs.get("version"),
                "values": inputs.get("values", {}),
            }
            documents[f"HelmRelease/{doc['namespace']}/{doc['release']}.yaml"] = doc
        elif is_kubernetes_object(res):
            doc = dict(res.inputs)  # typed k8s resources send exactly the object's fields
            meta = doc.get("metadata") or {}
            name = meta.get("name") or f"{res.name} (auto-named)"
            namespace = meta.get("namespace")
            kind = doc.get("kind", res.type.rsplit(":", 1)[-1])
            rel = f"{kind}/{namespace}/{name}.yaml" if namespace else f"{kind}/{name}.yaml"
            documents[rel] = doc
    return documents


def write_render(run: ProgramRun, directory: Path) -> list[Path]:
    written = []
    for rel, doc in rendered_objects(run).items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, allow_unicode=True))
        written.append(path)
    return written
