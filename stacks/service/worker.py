"""One operation, in its own process: the Automation API call blocks and has no cancel handle, so
the service cancels an operation by signalling this process group (the Pulumi CLI stops after its
in-flight steps, leaving the stack's state consistent), and a dead service takes its workers down
the same graceful way.

The request's secrets reach this process through the pipe that starts it, never through a file.
"""

from __future__ import annotations

import ctypes
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.automation.environment import Environment, EnvironmentOptions
from stacks.automation.request import EnvironmentRequest, ValidatedRequest
from stacks.automation.results import FailureKind, OperationFailed

from .store import Store

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerJob:
    db_path: Path
    operation_id: str
    stack: str
    operation: str
    request: dict[str, Any] | None  # EnvironmentRequest as a dict, secrets included (in memory only)
    validated: ValidatedRequest | None
    options: EnvironmentOptions


def _die_with_parent() -> None:
    """SIGTERM when the service's thread that started us dies (Linux), which the handler turns
    into a graceful stop of the CLI."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (AttributeError, OSError):  # not Linux: the restart still marks us interrupted
        pass


def run(job: WorkerJob) -> None:
    os.setsid()  # our own process group: a signal to it reaches the Pulumi CLI too
    _die_with_parent()
    flags = {"cancelled": False, "orphaned": False}

    def on_interrupt(*_: Any) -> None:
        flags["cancelled"] = True

    def on_terminate(*_: Any) -> None:
        flags["orphaned"] = True
        try:
            os.killpg(0, signal.SIGINT)
        except OSError:
            pass

    signal.signal(signal.SIGINT, on_interrupt)
    signal.signal(signal.SIGTERM, on_terminate)
    store = Store(job.db_path)
    if not store.mark_running(job.operation_id, os.getpid()):
        return  # cancelled while it waited for a worker slot
    request = EnvironmentRequest.model_validate(job.request) if job.request is not None else None
    try:
        environment = Environment(job.stack, job.options)
        result = environment.run(job.operation, request, job.validated, lambda event: store.append_event(job.operation_id, event.to_dict()))
        store.finish(job.operation_id, "succeeded", result=result.to_dict())
    except OperationFailed as failure:
        if flags["orphaned"]:
            failure = OperationFailed(FailureKind.INTERRUPTED, "the service stopped during the operation; the CLI was stopped after its in-flight steps", failure.log_tail)
            store.finish(job.operation_id, "interrupted", failure=failure.to_dict())
        elif flags["cancelled"] or store.get(job.operation_id).cancel_requested:
            failure = OperationFailed(FailureKind.CANCELLED, "cancelled: the CLI stopped after its in-flight steps", failure.log_tail)
            store.finish(job.operation_id, "cancelled", failure=failure.to_dict())
        else:
            store.finish(job.operation_id, "failed", failure=failure.to_dict())
    except Exception as exc:  # noqa: BLE001 - a bug of ours still ends as a result, not a hung record
        failure = OperationFailed(FailureKind.ENGINE, f"internal error: {type(exc).__name__}: {exc}")
        store.finish(job.operation_id, "failed", failure=failure.to_dict())
    finally:
        store.close()
