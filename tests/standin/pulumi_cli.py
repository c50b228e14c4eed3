"""A stand-in for the `pulumi` CLI, answering what `pulumi.automation` invokes as the real CLI does
(`../shared/notes/pulumi-workflows-facts.md` §3 lists the calls, argv and answers): version, stack
select/init, config set-all/rm-all/--json, preview/up/refresh/destroy with the engine event log
(gRPC above 3.205.0, a file at or below it), stack output, stack history, cancel.

preview and up run this project's own program under the offline runner, so the events and outputs
the service reports come from the real program. State lives in $STANDIN_STATE; `mode.json` there
makes it fail as the CLI fails: {"version": "3.100.0"}, {"locked": true} (another update in
progress), {"fail": "message"} (exit 1), {"slow": seconds} (between resource steps, for cancel).
Every invocation's argv is appended to calls.jsonl.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

STATE = Path(os.environ["STANDIN_STATE"])
NAMESPACE = "llm-platform"


def mode() -> dict:
    path = STATE / "mode.json"
    return json.loads(path.read_text()) if path.exists() else {}


def stack_path(stack: str) -> Path:
    return STATE / "stacks" / f"{stack}.json"


def load(stack: str) -> dict:
    return json.loads(stack_path(stack).read_text())


def save(stack: str, data: dict) -> None:
    stack_path(stack).write_text(json.dumps(data, indent=1))


def seal(value: str) -> str:
    """The stand-in's 'encryption': what lands on disk is never the plain text."""
    return "v1:" + base64.b64encode(bytes(b ^ 0x5A for b in value.encode())).decode()


def fail(message: str, code: int = 255) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def write_stack_file(stack: str, data: dict) -> None:
    """Pulumi.<stack>.yaml in the working directory, as the real CLI keeps it: secrets sealed."""
    lines = ["config:"]
    for key, entry in sorted(data["config"].items()):
        value = {"secure": entry["sealed"]} if entry["secret"] else entry["value"]
        lines.append(f"  {key}: {json.dumps(value)}")
    Path(f"Pulumi.{stack}.yaml").write_text("\n".join(lines) + "\n")


class EventLog:
    """The engine event log: a gRPC stream to the SDK's server, or JSON lines in a file."""

    def __init__(self, target: str | None):
        self.target, self.sequence = target, 0
        self.queue: queue.Queue = queue.Queue()
        self.thread = None
        if target and target.startswith("tcp://"):
            import grpc
            from pulumi.runtime.proto import events_pb2, events_pb2_grpc

            stub = events_pb2_grpc.EventsStub(grpc.insecure_channel(target.removeprefix("tcp://")))

            def requests():
                while (item := self.queue.get()) is not None:
                    yield events_pb2.EventRequest(event=item)

            self.thread = threading.Thread(target=lambda: stub.StreamEvents(requests()), daemon=True)
            self.thread.start()

    def emit(self, **payload) -> None:
        if not self.target:
            return
        line = json.dumps({"sequence": self.sequence, "timestamp": int(time.time()), **payload})
        self.sequence += 1
        if self.thread is not None:
            self.queue.put(line)
        else:
            with open(self.target, "a") as f:
                f.write(line + "\n")

    def close(self) -> None:
        self.emit(cancelEvent={})
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join(10)


def step(log: EventLog, op: str, urn: str, type_: str, planning: bool, slow: float) -> None:
    metadata = {"op": op, "urn": urn, "type": type_, "provider": ""}
    log.emit(resourcePreEvent={"metadata": metadata, "planning": planning})
    if slow:
        time.sleep(slow)
    log.emit(resOutputsEvent={"metadata": metadata, "planning": planning})


def run_program(stack: str, data: dict, preview: bool):
    sys.path.insert(0, os.getcwd())
    from stacks.offline import run_program as offline_run
    from stacks.stack_files import stack_file_from_values

    values = {k: ({"secure": "x"} if e["secret"] else e["value"]) for k, e in data["config"].items()}
    return offline_run(stack_file_from_values(stack, values), preview=preview)


def operate(command: str, stack: str, log: EventLog) -> None:
    m = mode()
    if m.get("locked"):
        fail("[409] Conflict: Another update is currently in progress.")
    data = load(stack)
    cancelled = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: cancelled.set())
    log.emit(preludeEvent={"config": {k: ("[secret]" if e["secret"] else e["value"]) for k, e in data["config"].items()}})
    started = time.time()
    counts: dict[str, int] = {}
    resources = data.setdefault("resources", {})
    planning = command == "preview"
    slow = float(m.get("slow", 0))
    seen: dict[str, dict] = {}
    error = None
    if command in ("preview", "up"):
        run = run_program(stack, data, preview=planning)
        error = run.error
        for res in run.resources:
            if cancelled.is_set():
                break
            digest = hashlib.sha256(json.dumps(res.inputs, sort_keys=True, default=str).encode()).hexdigest()
            old = resources.get(res.urn)
            op = "create" if old is None else "same" if old["digest"] == digest else "update"
            counts[op] = counts.get(op, 0) + 1
            seen[res.urn] = {"type": res.type, "digest": digest}
            step(log, op, res.urn, res.type, planning, slow)
        if error is None and not cancelled.is_set():
            for urn, old in resources.items():
                if urn not in seen:
                    counts["delete"] = counts.get("delete", 0) + 1
                    step(log, "delete", urn, old["type"], planning, slow)
    else:
        for urn, old in list(resources.items()):
            if cancelled.is_set():
                break
            op = "refresh" if command == "refresh" else "delete"
            counts["same" if op == "refresh" else "delete"] = counts.get("same" if op == "refresh" else "delete", 0) + 1
            step(log, op, urn, old["type"], False, slow)
    if error is not None:
        log.emit(diagnosticEvent={"message": f"{error}\n", "color": "never", "severity": "error", "urn": f"urn:pulumi:{stack}::llm-platform::pulumi:pulumi:Stack::llm-platform-{stack}"})
    if m.get("fail"):
        log.emit(diagnosticEvent={"message": m["fail"] + "\n", "color": "never", "severity": "error"})
    log.emit(summaryEvent={"maybeCorrupt": False, "durationSeconds": int(time.time() - started), "resourceChanges": counts, "PolicyPacks": {}})
    log.close()
    print(f"Resources: {', '.join(f'{n} {op}' for op, n in sorted(counts.items()))}")
    if cancelled.is_set():
        fail("update canceled", 8)
    if m.get("fail"):
        fail(m["fail"], 1)
    if error is not None:
        print(f"    error: {error}")
        fail(f"{command} failed", 255)
    if command == "up":
        data["resources"] = seen
        data["outputs"] = run.outputs
    elif command == "destroy":
        data["resources"], data["outputs"] = {}, {}
    if command != "preview":
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        data.setdefault("history", []).insert(0, {"kind": "update" if command == "up" else command, "startTime": now, "endTime": now,
                                                  "message": "", "environment": {}, "config": {}, "result": "succeeded",
                                                  "version": len(data.get("history", [])) + 1, "resourceChanges": counts})
    save(stack, data)


def main(argv: list[str]) -> None:
    (STATE / "stacks").mkdir(parents=True, exist_ok=True)
    with open(STATE / "calls.jsonl", "a") as f:
        f.write(json.dumps(argv) + "\n")
    args = [a for a in argv if a != "--non-interactive"]
    stack = args[args.index("--stack") + 1] if "--stack" in args else None
    event_log = args[args.index("--event-log") + 1] if "--event-log" in args else None
    words = [a for a in args if not a.startswith("-")][:2]
    if words[:1] == ["version"]:
        print(f"v{mode().get('version', '3.272.0')}")
        return
    if words == ["stack", "select"]:
        if not stack_path(stack).exists():
            fail(f"no stack named '{stack}' found", 6)
        return
    if words == ["stack", "init"]:
        name = args[args.index("init") + 1]
        if stack_path(name).exists():
            fail(f"stack '{name}' already exists")
        save(name, {"config": {}, "resources": {}, "outputs": {}, "history": []})
        return
    if words == ["config", "set-all"]:
        data = load(stack)
        for flag, pair in zip(args, args[1:], strict=False):
            if flag in ("--plaintext", "--secret"):
                key, _, value = pair.partition("=")
                secret = flag == "--secret"
                data["config"][key] = {"secret": True, "sealed": seal(value)} if secret else {"secret": False, "value": value}
        save(stack, data)
        write_stack_file(stack, data)
        return
    if words == ["config", "rm-all"]:
        data = load(stack)
        for key in args[args.index("rm-all") + 1:]:
            if not key.startswith("-") and key != stack:
                data["config"].pop(key, None)
        save(stack, data)
        write_stack_file(stack, data)
        return
    if words[:1] == ["config"] and "--json" in args:
        data = load(stack)
        print(json.dumps({k: {"value": "[secret]" if e["secret"] and "--show-secrets" not in args else e.get("value", "decrypted"), "secret": e["secret"]} for k, e in data["config"].items()}))
        return
    if words == ["stack", "output"]:
        outputs = load(stack).get("outputs", {})
        show = "--show-secrets" in args
        print(json.dumps({k: (f"standin-secret-{k}" if show else "[secret]") if v == "[secret]" else v for k, v in outputs.items()}))
        return
    if words == ["stack", "history"]:
        history = load(stack).get("history", [])
        print(json.dumps(history[:1] if "--page-size" in args else history))
        return
    if words[:1] == ["cancel"]:
        return
    if words[:1] and words[0] in ("preview", "up", "refresh", "destroy"):
        if not stack_path(stack).exists():
            fail(f"no stack named '{stack}' found", 6)
        log = EventLog(event_log)
        operate(words[0], stack, log)
        return
    fail(f"stand-in: unsupported command {argv}", 2)


if __name__ == "__main__":
    main(sys.argv[1:])
