"""Run the real `__main__.py` under Pulumi mocks and record every resource it registers.

This is what `plan`, the tests and the benchmark share. Preview mode behaves like `pulumi preview`:
the mocks echo inputs back and invent nothing, so every output only a cloud could know stays
unknown and prints as `<computed>`. Update mode (tests only) returns stand-in outputs so that
`apply` callbacks run too.
"""

from __future__ import annotations

import base64
import runpy
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.settings import get_root_resource, set_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from . import PROJECT_DIR, PROJECT_NAME
from .stack_files import StackFile

COMPUTED = "<computed>"
SECRET = "[secret]"


@dataclass(frozen=True)
class RegisteredResource:
    urn: str
    type: str
    name: str
    parent: str
    dependencies: list[str]
    protect: bool
    custom: bool
    provider: str
    inputs: dict[str, Any]
    ignore_changes: tuple[str, ...] = ()
    retain_on_delete: bool = False
    aliases: tuple[dict[str, Any], ...] = ()  # as sent: {"urn": ...} or {"spec": {"name", "type", "parentUrn", "noParent", ...}}
    # input name -> URNs its value came from (Outputs of those resources): what makes Pulumi replace
    # this resource when one of them is replaced delete-before-replace; `dependsOn` alone does not
    property_dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class ProgramRun:
    stack: str
    project: str
    preview: bool
    resources: list[RegisteredResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_token]


def plain_wire_value(value: Any) -> Any:
    """Wire form -> plain JSON: unknowns as <computed>, secrets masked, resource refs as their URN."""
    if isinstance(value, str):
        return COMPUTED if value == rpc.UNKNOWN else value
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf Struct carries every number as a double
    if isinstance(value, list):
        return [plain_wire_value(v) for v in value]
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            return SECRET
        if sig == rpc._special_resource_sig:
            return value.get("urn", COMPUTED)
        if sig == rpc._special_output_value_sig:
            if value.get("secret"):
                return SECRET
            return plain_wire_value(value["value"]) if "value" in value else COMPUTED
        return {k: plain_wire_value(v) for k, v in value.items()}
    return value


class OfflineInvokeError(Exception):
    pass


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that also keeps what `get_registered_resources` drops: parent, dependencies,
    protect, provider, and the inputs exactly as sent (camelCase wire names)."""

    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self.registrations: list[RegisteredResource] = []

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        self.registrations.append(
            RegisteredResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                dependencies=sorted(set(request.dependencies)),
                protect=bool(request.protect),
                custom=bool(request.custom),
                provider=request.provider,
                inputs=plain_wire_value(json_format.MessageToDict(request.object)),
                ignore_changes=tuple(request.ignoreChanges),
                retain_on_delete=bool(request.retainOnDelete),
                aliases=tuple(json_format.MessageToDict(a) for a in request.aliases) + tuple({"urn": u} for u in request.aliasURNs),
                property_dependencies={key: tuple(sorted(deps.urns)) for key, deps in request.propertyDependencies.items() if deps.urns},
            )
        )
        return response


def _stand_in_outputs(type_token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Update-mode outputs for the few attributes later resources read. Tests only; never printed."""
    outputs: dict[str, Any] = {"arn": f"arn:aws:mock::000000000000:{name}", "name": inputs.get("name", name)}
    if type_token == "aws:eks/cluster:Cluster":
        outputs.update(
            endpoint=f"https://{name}.eks.mock",
            certificateAuthority={"data": "bW9jay1jYQ=="},
            identities=[{"oidcs": [{"issuer": f"https://oidc.eks.mock/id/{name}"}]}],
            vpcConfig={**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{name}"},
        )
    if type_token == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        outputs["url"] = inputs.get("url")
    if type_token == "gcp:container/cluster:Cluster":
        outputs.update(endpoint="203.0.113.10", masterAuth={"clusterCaCertificate": "bW9jay1jYQ=="})
    if type_token == "gcp:serviceaccount/account:Account":
        outputs["email"] = f"{inputs.get('accountId', name)}@{inputs.get('project', 'mock')}.iam.gserviceaccount.com"
    if type_token.startswith("azure-native:"):
        outputs["id"] = f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/mock/providers/mock/{name}"
        # azure-native takes each resource's name under its own key.
        named = next((inputs[k] for k in ("resourceName", "accountName", "virtualNetworkName", "resourceGroupName") if k in inputs), None)
        if type_token != "azure-native:containerservice:AgentPool" and named:
            outputs["name"] = named
    if type_token == "azure-native:containerservice:ManagedCluster":
        outputs.update(identity={"type": "SystemAssigned", "principalId": "00000000-0000-0000-0000-00000000c1a5"}, fqdn=f"{name}.hcp.mock")
    if type_token.startswith("gcp:compute/"):
        outputs["selfLink"] = f"https://www.googleapis.com/compute/v1/mock/{name}"
    return outputs


AKS_CREDENTIALS_TOKEN = "azure-native:containerservice:listManagedClusterUserCredentials"
_STAND_IN_AKS_KUBECONFIG = base64.b64encode(
    b"apiVersion: v1\nkind: Config\nclusters: [{name: mock, cluster: {server: 'https://mock.hcp.mock:443'}}]\n"
    b"users: [{name: mock, user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: kubelogin, "
    b"args: [get-token, --login, devicecode, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]}}}]\n"
).decode()


class OfflineMocks(pulumi_mocks.Mocks):
    def __init__(self, preview: bool):
        self.preview = preview

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        if self.preview:
            return None, dict(args.inputs)  # no id, no outputs beyond the inputs: like a preview
        outputs = _stand_in_outputs(args.typ, args.name, args.inputs)
        return outputs.get("id", f"{args.name}-id"), {**args.inputs, **outputs}

    def call(self, args: pulumi_mocks.MockCallArgs):
        # The program needs no invokes offline (zones and partitions come from config) except AKS's
        # user credentials, read only once the cluster exists: a preview never asks (its inputs
        # wait on the cluster's id), update mode gets a stand-in. Any other invoke is a new cloud
        # lookup the offline plan would have to invent.
        if args.token == AKS_CREDENTIALS_TOKEN and not self.preview:
            return {"kubeconfigs": [{"name": "clusterUser", "value": _STAND_IN_AKS_KUBECONFIG}]}
        raise OfflineInvokeError(f"offline plan cannot answer invoke {args.token}")


async def _resolve_output(value: Any) -> Any:
    output = pulumi.Output.from_input(value)
    if await output.is_secret():
        return SECRET
    if not await output.is_known():
        return COMPUTED
    return _plain_output_value(await output.future(with_unknowns=True))


def _plain_output_value(value: Any) -> Any:
    if isinstance(value, pulumi.output.Unknown):
        return COMPUTED
    if isinstance(value, dict):
        return {k: _plain_output_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_output_value(v) for v in value]
    return value


def run_program(stack_file: StackFile, preview: bool = True) -> ProgramRun:
    """Run `__main__.py` for one stack under mocks. Errors are returned in `.error`, not raised,
    so callers can also check what was (or was not) registered before the failure."""
    mocks = OfflineMocks(preview)
    monitor = RecordingMonitor(mocks)
    set_root_resource(None)  # a fresh root Stack per run, so runs in one process do not mix
    pulumi.runtime.set_all_config(stack_file.engine_config(), list(stack_file.secret_keys))
    pulumi.runtime.set_mocks(mocks, project=PROJECT_NAME, stack=stack_file.name, preview=preview, monitor=monitor)
    run = ProgramRun(stack=stack_file.name, project=PROJECT_NAME, preview=preview)

    async def program() -> None:
        runpy.run_path(str(PROJECT_DIR / "__main__.py"), run_name="__main__")
        root = get_root_resource()
        for key, value in sorted(root.outputs.items()):
            run.outputs[key] = await _resolve_output(value)

    try:
        _sync_await(run_pulumi_func(program))
    except BaseException as exc:  # noqa: BLE001 - reported to the caller with what was registered
        run.error = exc
    run.resources = list(monitor.registrations)
    return run
