"""Runs operations: at most one per stack (a second gets the running one's id), a bounded pool of
worker processes, cancel by signal, and a start-up that marks what a dead service left running as
interrupted."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.automation.environment import EnvironmentOptions, prepare_workspace
from stacks.automation.request import EnvironmentRequest, ValidatedRequest
from stacks.automation.results import FailureKind, OperationFailed

from . import worker
from .store import Operation, Store

INTERRUPTED_AT_START = (
    "the service stopped while this operation was queued or running; if the stack stays busy, "
    "its update may still hold the backend's lock (`pulumi cancel` releases it)"
)


@dataclass
class ServiceSettings:
    data_dir: Path
    workers: int = 2
    cancel_grace_seconds: float = 900.0  # after the interrupt, how long the CLI may take to stop before it is killed
    secrets_provider: str | None = None
    policy_pack: Path | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "operations.sqlite"

    @property
    def workspace_dir(self) -> Path:
        return self.data_dir / "workspace"

    def environment_options(self) -> EnvironmentOptions:
        return EnvironmentOptions(self.workspace_dir, self.secrets_provider, self.policy_pack)


class StackBusy(Exception):
    def __init__(self, stack: str, operation_id: str):
        self.stack, self.operation_id = stack, operation_id
        super().__init__(f"stack {stack!r} has operation {operation_id} queued or running")


@dataclass
class _Running:
    stack: str
    process: Any = None
    escalation: threading.Timer | None = field(default=None)


class OperationManager:
    def __init__(self, settings: ServiceSettings, store: Store):
        self.settings, self.store = settings, store
        self.interrupted_at_start = store.mark_interrupted(INTERRUPTED_AT_START)
        prepare_workspace(settings.workspace_dir)
        self._slots = threading.BoundedSemaphore(settings.workers)
        self._lock = threading.Lock()
        self._by_stack: dict[str, str] = {}
        self._running: dict[str, _Running] = {}
        self._context = multiprocessing.get_context("spawn")
        self._closed = False

    def submit(self, stack: str, operation: str, request: EnvironmentRequest | None, validated: ValidatedRequest | None) -> Operation:
        record = None if request is None else {"config": request.config, "secretKeys": sorted(request.secrets)}
        with self._lock:
            if self._closed:
                raise OperationFailed(FailureKind.INTERRUPTED, "the service is shutting down")
            busy = self._busy(stack)
            if busy is not None:
                raise StackBusy(stack, busy)
            op = self.store.create(stack, operation, record)
            self._by_stack[stack] = op.id
            self._running[op.id] = _Running(stack)
        job = worker.WorkerJob(
            self.settings.db_path, op.id, stack, operation, request.model_dump() if request is not None else None, validated, self.settings.environment_options()
        )
        threading.Thread(target=self._supervise, args=(job,), name=f"operation-{op.id}", daemon=True).start()
        return op

    def _supervise(self, job: worker.WorkerJob) -> None:
        try:
            with self._slots:
                op = self.store.get(job.operation_id)
                if op is None or op.state != "queued":
                    return
                process = self._context.Process(target=worker.run, args=(job,), name=f"llm-platform-operation-{job.operation_id}")
                with self._lock:
                    self._running[job.operation_id].process = process
                    process.start()
                process.join()
                op = self.store.get(job.operation_id)
                if op is not None and op.active:  # it died without recording its end (killed, or crashed)
                    kind = FailureKind.CANCELLED if op.cancel_requested else FailureKind.ENGINE
                    failure = OperationFailed(kind, f"the operation's process ended (exit code {process.exitcode}) before it recorded a result")
                    self.store.finish(job.operation_id, "cancelled" if op.cancel_requested else "failed", failure=failure.to_dict())
        finally:
            with self._lock:
                running = self._running.pop(job.operation_id, None)
                if running is not None and running.escalation is not None:
                    running.escalation.cancel()
                if self._by_stack.get(job.stack) == job.operation_id:
                    del self._by_stack[job.stack]

    def _busy(self, stack: str) -> str | None:
        """The stack's operation, if it has not ended (a worker records its end just before its
        process exits, a moment before the supervisor forgets it)."""
        op_id = self._by_stack.get(stack)
        if op_id is None:
            return None
        op = self.store.get(op_id)
        return op_id if op is not None and op.active else None

    def active_operation(self, stack: str) -> str | None:
        with self._lock:
            return self._busy(stack)

    def cancel(self, op_id: str) -> Operation | None:
        """Queued: it never starts. Running: the worker's process group gets SIGINT (the CLI's
        graceful cancel); if it has not stopped after the grace period, SIGKILL."""
        op = self.store.get(op_id)
        if op is None or not op.active:
            return op
        self.store.request_cancel(op_id)
        with self._lock:
            running = self._running.get(op_id)
            process = running.process if running is not None else None
            if process is None or process.pid is None:
                cancelled = OperationFailed(FailureKind.CANCELLED, "cancelled before it started")
                self.store.finish(op_id, "cancelled", failure=cancelled.to_dict())
                return self.store.get(op_id)
            _signal_group(process.pid, signal.SIGINT)
            if running.escalation is None:
                running.escalation = threading.Timer(self.settings.cancel_grace_seconds, _signal_group, args=(process.pid, signal.SIGKILL))
                running.escalation.daemon = True
                running.escalation.start()
        return self.store.get(op_id)

    def shutdown(self, wait_seconds: float = 60.0) -> None:
        """Stop taking operations; running ones stop their CLI gracefully and end "interrupted",
        queued ones end "interrupted" without starting."""
        with self._lock:
            self._closed = True
            running = dict(self._running)
        for op_id, entry in running.items():
            if entry.process is not None and entry.process.pid is not None:
                try:
                    os.kill(entry.process.pid, signal.SIGTERM)  # the worker stops its CLI and records "interrupted"
                except ProcessLookupError:
                    pass
            else:
                stopped = OperationFailed(FailureKind.INTERRUPTED, "the service stopped before the operation started")
                self.store.finish(op_id, "interrupted", failure=stopped.to_dict())
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    return
            time.sleep(0.1)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the worker leads its own group (setsid)
    except ProcessLookupError:
        try:
            os.kill(pid, sig)  # not yet its own group: the worker itself
        except ProcessLookupError:
            pass
