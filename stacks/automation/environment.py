"""One environment (a Pulumi stack of this project) driven through `pulumi.automation`.

The program is this project's own `__main__.py`, run by the Pulumi CLI from a workspace directory
of symlinks to the project (`prepare_workspace`): the portal, the CLI and CI run one program, and
the portal's `Pulumi.<stack>.yaml` files stay out of the repository's checkout. Every call carries
`--stack`, and no call passes `project_settings` or `stack_settings` (they would overwrite
`Pulumi.yaml`), so concurrent operations on different stacks share the workspace safely.

Secrets go to the CLI as `ConfigValue(secret=True)` and the CLI stores them encrypted. The SDK
passes config values on the CLI's command line, so run the service where other users cannot list
its processes (its own container).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi import automation as auto
from pulumi.automation import errors as auto_errors
from semver import VersionInfo

from components.config.errors import CONFIG_NAMESPACE
from stacks import PROJECT_DIR

from .events import Event, from_engine_event
from .request import EnvironmentRequest, ValidatedRequest
from .results import FailureKind, ModelEndpoint, OperationFailed, OperationResult, masked_outputs

MINIMUM_CLI_VERSION = "3.200.0"  # requirements.txt's SDK floor: a CLI older than the SDK lacks flags it passes
PINNED_CLI_VERSION = (PROJECT_DIR / ".pulumi-version").read_text().strip()  # what CI installs
INSTALL_HINT = (
    f"Install the Pulumi CLI {PINNED_CLI_VERSION} (at least {MINIMUM_CLI_VERSION}): "
    f"`curl -fsSL https://get.pulumi.com | sh -s -- --version {PINNED_CLI_VERSION}` and put ~/.pulumi/bin on PATH "
    "(https://www.pulumi.com/docs/iac/download-install/)."
)
OPERATIONS = ("preview", "up", "refresh", "destroy")
WORKSPACE_ENTRIES = ("Pulumi.yaml", "__main__.py", "components", "stacks", "policy", "venv", "requirements.txt")
LOG_TAIL_LINES = 40

OnEvent = Callable[[Event], None]


def prepare_workspace(directory: Path, project_dir: Path = PROJECT_DIR) -> Path:
    """A directory whose program is the project's (symlinks to `Pulumi.yaml`, `__main__.py`, the
    packages and the virtualenv) and whose stack files are the portal's own."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in WORKSPACE_ENTRIES:
        link, target = directory / name, project_dir / name
        if target.exists() and not link.exists():
            link.symlink_to(target)
    return directory


def pulumi_command() -> auto.PulumiCommand:
    """The `pulumi` on PATH, checked against our minimum; missing or too old is a failure that
    says how to install it."""
    try:
        return auto.PulumiCommand(version=VersionInfo.parse(MINIMUM_CLI_VERSION))
    except FileNotFoundError:
        raise OperationFailed(FailureKind.CLI_MISSING, f"The Pulumi CLI is not installed (no `pulumi` on PATH). {INSTALL_HINT}") from None
    except auto_errors.InvalidVersionError as exc:
        raise OperationFailed(FailureKind.CLI_TOO_OLD, f"{exc} {INSTALL_HINT}") from None
    except (subprocess.CalledProcessError, OSError) as exc:
        raise OperationFailed(FailureKind.CLI_MISSING, f"`pulumi version` failed ({exc}). {INSTALL_HINT}") from None


def engine_value(value: Any) -> str:
    """A config value as the engine stores it: objects and lists as JSON, booleans lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _error_lines(text: str) -> list[str]:
    """The CLI's `error: …` lines (its stderr arrives as ` stderr: error: …` in the SDK's text)."""
    found = (re.search(r"(?:^|\s)error: (.+)$", line) for line in text.splitlines())
    return [m.group(1).strip() for m in found if m]


def failure_from(exc: BaseException, stack: str, log: deque[str]) -> OperationFailed:
    """An SDK exception as a failure a portal can act on, with the tail of the engine's log."""
    tail = list(log)
    if isinstance(exc, OperationFailed):
        return exc
    if isinstance(exc, auto_errors.ConcurrentUpdateError):
        return OperationFailed(FailureKind.BUSY, f"Another update of stack {stack!r} is in progress; retry when it has finished.", tail)
    if isinstance(exc, auto_errors.StackNotFoundError):
        return OperationFailed(FailureKind.NOT_FOUND, f"No stack named {stack!r}: preview or up it first.", tail)
    if isinstance(exc, FileNotFoundError):
        return OperationFailed(FailureKind.CLI_MISSING, f"The Pulumi CLI could not be run ({exc.filename or exc}). {INSTALL_HINT}", tail)
    if isinstance(exc, auto_errors.CommandError):
        result = exc.args[0] if exc.args else ""
        lines = _error_lines(str(result)) or [f"the Pulumi CLI failed ({str(result).strip().splitlines()[0] if str(result).strip() else 'no output'})"]
        return OperationFailed(FailureKind.ENGINE, lines[0], tail or str(result).splitlines()[-LOG_TAIL_LINES:])
    return OperationFailed(FailureKind.ENGINE, f"{type(exc).__name__}: {exc}", tail)


@dataclass
class EnvironmentOptions:
    work_dir: Path
    secrets_provider: str | None = None  # for new stacks; None: the backend's default
    policy_pack: Path | None = None  # a CrossGuard pack every preview and update runs (the project's policy/)


class Environment:
    """One stack: open it, write its config, run an operation, read its outputs."""

    def __init__(self, stack: str, options: EnvironmentOptions, command: auto.PulumiCommand | None = None):
        self.stack_name = stack
        self.options = options
        self.command = command or pulumi_command()
        self.log: deque[str] = deque(maxlen=LOG_TAIL_LINES)

    def _workspace_options(self) -> auto.LocalWorkspaceOptions:
        # a fresh options object per call: the SDK mutates the one it is given
        return auto.LocalWorkspaceOptions(work_dir=str(self.options.work_dir), pulumi_command=self.command, secrets_provider=self.options.secrets_provider)

    def open(self, create: bool) -> auto.Stack:
        if create:
            return auto.create_or_select_stack(self.stack_name, work_dir=str(self.options.work_dir), opts=self._workspace_options())
        return auto.select_stack(self.stack_name, work_dir=str(self.options.work_dir), opts=self._workspace_options())

    @staticmethod
    def write_config(stack: auto.Stack, request: EnvironmentRequest) -> None:
        """The stack's `llm-platform:` config becomes exactly the request: keys it no longer has are
        removed (config of other namespaces is left alone), secrets are written as secrets."""
        wanted = {f"{CONFIG_NAMESPACE}:{k}": auto.ConfigValue(engine_value(v)) for k, v in request.config.items()}
        wanted.update({f"{CONFIG_NAMESPACE}:{k}": auto.ConfigValue(v, secret=True) for k, v in request.secrets.items()})
        stale = [k for k in stack.get_all_config() if k.startswith(f"{CONFIG_NAMESPACE}:") and k not in wanted]
        if stale:
            stack.remove_all_config(stale)
        stack.set_all_config(wanted)

    def run(self, operation: str, request: EnvironmentRequest | None, validated: ValidatedRequest | None, on_event: OnEvent) -> OperationResult:
        """preview or up (which write the request's config first), refresh or destroy. Raises
        OperationFailed, never an SDK exception."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}")
        try:
            return self._run(operation, request, validated, on_event)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a result
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise failure_from(exc, self.stack_name, self.log) from None

    def _run(self, operation: str, request: EnvironmentRequest | None, validated: ValidatedRequest | None, on_event: OnEvent) -> OperationResult:
        stack = self.open(create=operation in ("preview", "up"))
        if request is not None:
            self.write_config(stack, request)

        def engine_event(event: auto.EngineEvent) -> None:
            ours = from_engine_event(event)
            if ours is not None:
                on_event(ours)

        common: dict[str, Any] = {"on_output": self.log.append, "on_event": engine_event, "color": "never"}
        packs = [str(self.options.policy_pack)] if self.options.policy_pack else None
        result = OperationResult(operation, self.stack_name)
        if validated is not None:
            result.models = [ModelEndpoint.from_output(m) for m in validated.models]
            result.cost = validated.cost
        if operation == "preview":
            preview = stack.preview(on_error=self.log.append, policy_packs=packs, **common)
            result.changes = dict(preview.change_summary)
            return result
        if operation == "up":
            up = stack.up(on_error=self.log.append, policy_packs=packs, **common)
            result.changes = dict(up.summary.resource_changes or {})
            self._with_outputs(result, up.outputs)
            return result
        if operation == "refresh":
            refresh = stack.refresh(on_error=self.log.append, **common)
            result.changes = dict(refresh.summary.resource_changes or {})
            self._with_outputs(result, stack.outputs())
            return result
        destroy = stack.destroy(on_error=self.log.append, **common)
        result.changes = dict(destroy.summary.resource_changes or {})
        result.models = []
        return result

    @staticmethod
    def _with_outputs(result: OperationResult, outputs: dict[str, Any]) -> None:
        result.outputs = masked_outputs(outputs)
        models = result.outputs.get("models")
        if isinstance(models, list):
            result.models = [ModelEndpoint.from_output(m) for m in models if isinstance(m, dict)]
        if isinstance(result.outputs.get("cost"), dict):
            result.cost = result.outputs["cost"]

    def outputs(self) -> OperationResult:
        """The stack's outputs (secrets masked) and each model's endpoint."""
        try:
            stack = self.open(create=False)
            result = OperationResult("outputs", self.stack_name)
            self._with_outputs(result, stack.outputs())
            return result
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise failure_from(exc, self.stack_name, self.log) from None

    def cancel(self) -> None:
        """`pulumi cancel`: ends the stack's update in the backend, for an update whose process is
        gone (the SDK calls it dangerous: resources in flight are left as they are). A running
        operation of ours is cancelled by signalling its CLI instead (see the service's manager)."""
        try:
            self.open(create=False).cancel()
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise failure_from(exc, self.stack_name, self.log) from None


