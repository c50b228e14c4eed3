"""Operations and their events, durably, in SQLite in the service's data directory.

The service and its worker processes each open their own connection (WAL mode: readers never
wait for the writer). A request's secrets are never written here: an operation record keeps the
request's config and only the *names* of its secrets.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACTIVE_STATES = ("queued", "running")
TERMINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    stack TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    pid INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    request TEXT,
    summary TEXT,
    result TEXT,
    failure TEXT
);
CREATE INDEX IF NOT EXISTS operations_by_stack ON operations (stack, created_at);
CREATE TABLE IF NOT EXISTS events (
    operation_id TEXT NOT NULL REFERENCES operations (id),
    seq INTEGER NOT NULL,
    created_at REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (operation_id, seq)
);
"""


@dataclass(frozen=True)
class Operation:
    id: str
    stack: str
    kind: str
    state: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    pid: int | None
    cancel_requested: bool
    request: dict[str, Any] | None
    summary: dict[str, int] | None
    result: dict[str, Any] | None
    failure: dict[str, Any] | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stack": self.stack,
            "operation": self.kind,
            "state": self.state,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "cancelRequested": self.cancel_requested,
            "summary": self.summary,
            "result": self.result,
            "failure": self.failure,
        }


def _loads(text: str | None) -> Any:
    return json.loads(text) if text is not None else None


class Store:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _row(self, row: sqlite3.Row | None) -> Operation | None:
        if row is None:
            return None
        return Operation(
            row["id"], row["stack"], row["kind"], row["state"], row["created_at"], row["started_at"], row["finished_at"], row["pid"],
            bool(row["cancel_requested"]), _loads(row["request"]), _loads(row["summary"]), _loads(row["result"]), _loads(row["failure"]),
        )

    def create(self, stack: str, kind: str, request: dict[str, Any] | None) -> Operation:
        op_id = uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT INTO operations (id, stack, kind, state, created_at, request) VALUES (?, ?, ?, 'queued', ?, ?)",
                (op_id, stack, kind, time.time(), json.dumps(request) if request is not None else None),
            )
        self.append_event(op_id, {"kind": "state", "state": "queued"})
        return self.get(op_id)

    def get(self, op_id: str) -> Operation | None:
        with self._lock:
            return self._row(self._db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone())

    def for_stack(self, stack: str, limit: int = 20) -> list[Operation]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM operations WHERE stack = ? ORDER BY created_at DESC LIMIT ?", (stack, limit)).fetchall()
        return [self._row(r) for r in rows]

    def active(self) -> list[Operation]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM operations WHERE state IN ('queued', 'running') ORDER BY created_at").fetchall()
        return [self._row(r) for r in rows]

    def mark_running(self, op_id: str, pid: int) -> bool:
        with self._lock:
            changed = self._db.execute(
                "UPDATE operations SET state = 'running', started_at = ?, pid = ? WHERE id = ? AND state = 'queued'", (time.time(), pid, op_id)
            ).rowcount
        if changed:
            self.append_event(op_id, {"kind": "state", "state": "running"})
        return bool(changed)

    def request_cancel(self, op_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE operations SET cancel_requested = 1 WHERE id = ?", (op_id,))

    def finish(self, op_id: str, state: str, *, result: dict[str, Any] | None = None, failure: dict[str, Any] | None = None) -> bool:
        """Move an active operation to its terminal state; a finished one is never changed again
        (so a late worker and the restart's 'interrupted' can not overwrite each other). The state
        change and its event are one transaction, so the terminal event is always the stream's last."""
        assert state in TERMINAL_STATES, state
        summary = (result or {}).get("changes")
        event = {"kind": "state", "state": state, **({"failure": failure} if failure else {})}
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                changed = self._db.execute(
                    "UPDATE operations SET state = ?, finished_at = ?, summary = ?, result = ?, failure = ? WHERE id = ? AND state IN ('queued', 'running')",
                    (state, time.time(), json.dumps(summary) if summary is not None else None, json.dumps(result) if result is not None else None,
                     json.dumps(failure) if failure is not None else None, op_id),
                ).rowcount
                if changed:
                    self._insert_event(op_id, event)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return bool(changed)

    def mark_interrupted(self, reason: str) -> list[str]:
        """At start-up: every operation still queued or running belonged to a service that died."""
        ids = [op.id for op in self.active()]
        for op_id in ids:
            self.finish(op_id, "interrupted", failure={"kind": "interrupted", "message": reason, "retryable": True, "logTail": [], "errors": []})
        return ids

    def append_event(self, op_id: str, data: dict[str, Any]) -> int | None:
        """Add an event to an operation still queued or running. A finished operation's stream is
        closed: a worker orphaned by a dead service may still report its CLI's last steps after the
        restart marked the operation interrupted, and those events are dropped (None)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT state FROM operations WHERE id = ?", (op_id,)).fetchone()
                seq = None if row is not None and row["state"] in TERMINAL_STATES else self._insert_event(op_id, data)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return seq

    def _insert_event(self, op_id: str, data: dict[str, Any]) -> int:
        """Inside a caller's transaction, holding the lock."""
        seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE operation_id = ?", (op_id,)).fetchone()[0]
        self._db.execute("INSERT INTO events (operation_id, seq, created_at, data) VALUES (?, ?, ?, ?)", (op_id, seq, time.time(), json.dumps(data)))
        return seq

    def events_after(self, op_id: str, seq: int, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, data FROM events WHERE operation_id = ? AND seq > ? ORDER BY seq LIMIT ?", (op_id, seq, limit)
            ).fetchall()
        return [(r["seq"], json.loads(r["data"])) for r in rows]
