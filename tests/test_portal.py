"""The portal service over HTTP: the real `pulumi.automation` SDK against a stand-in `pulumi`
(tests/standin/pulumi_cli.py) whose preview and up run this project's program under the offline
runner. Operations run in real worker processes, as in production."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

import math

from bad_input import DEVELOPER_WORDING, applied, mutations, related
from conftest import PROJECT_DIR
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stacks.stack_files import load_stack_file

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note about httpx
    from fastapi.testclient import TestClient

from stacks.automation.environment import INSTALL_HINT
from stacks.service.app import create_app
from stacks.service.manager import ServiceSettings

TOKEN = "portal-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET_VALUE = "hf_portal_secret_value_9f8e7d"
STANDIN = PROJECT_DIR / "tests" / "standin" / "pulumi_cli.py"


class Standin:
    def __init__(self, state: Path):
        self.state = state

    def mode(self, **mode: Any) -> None:
        (self.state / "mode.json").write_text(json.dumps(mode))

    def calls(self) -> list[list[str]]:
        path = self.state / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def standin(tmp_path, monkeypatch) -> Standin:
    bin_dir, state = tmp_path / "bin", tmp_path / "standin-state"
    bin_dir.mkdir()
    state.mkdir()
    pulumi = bin_dir / "pulumi"
    pulumi.write_text(f'#!/bin/sh\nPYTHONPATH="{PROJECT_DIR}" exec "{sys.executable}" "{STANDIN}" "$@"\n')
    pulumi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_STATE", str(state))
    monkeypatch.delenv("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", raising=False)
    return Standin(state)


@pytest.fixture
def service(tmp_path, standin):
    """A client factory: each call is a service (a restart when given the same data directory)."""
    apps = []

    def start(data_dir: Path = tmp_path / "data", workers: int = 2, policy_pack: Path | None = None) -> TestClient:
        app = create_app(ServiceSettings(data_dir, workers=workers, cancel_grace_seconds=30, policy_pack=policy_pack), TOKEN)
        apps.append(app)
        return TestClient(app)

    yield start
    for app in apps:
        app.state.manager.shutdown(wait_seconds=20)


def dev_config() -> dict[str, Any]:
    return load_stack_file("dev").namespace_values()


def wait(client: TestClient, op_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/operations/{op_id}", headers=AUTH).json()
        if body["state"] not in ("queued", "running"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"operation {op_id} still {body['state']} after {timeout} s")


def wait_for_event(client: TestClient, op_id: str, kind: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e["kind"] == kind for e in events(client, op_id, wait_end=False)):
            return
        time.sleep(0.2)
    raise AssertionError(f"no {kind} event for {op_id}")


def events(client: TestClient, op_id: str, last_event_id: int | None = None, wait_end: bool = True) -> list[dict[str, Any]]:
    """The operation's Server-Sent Events as (id, event, data) dicts; reads to the stream's end."""
    if not wait_end:
        store = client.app.state.store
        return [data for _, data in store.events_after(op_id, 0)]
    headers = {**AUTH, **({"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {})}
    out, current = [], {}
    with client.stream("GET", f"/v1/operations/{op_id}/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and current:
                out.append({**current["data"], "_id": current["id"], "_event": current["event"]})
                current = {}
    return out


# --- auth and the documents -------------------------------------------------------------------------


def test_every_route_but_healthz_needs_the_token(service):
    client = service()
    assert client.get("/healthz").json() == {"status": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    op = "0" * 32
    for path, methods in paths.items():
        for method in methods:
            url = path.replace("{name}", "team-a").replace("{op_id}", op)
            for headers in ({}, {"Authorization": "Bearer wrong-token-of-some-length"}, {"Authorization": f"Basic {TOKEN}"}):
                response = client.request(method.upper(), url, headers=headers)
                if path == "/healthz":
                    assert response.status_code == 200
                else:
                    assert response.status_code == 401, (method, path, headers, response.text)
                    assert response.headers["www-authenticate"] == "Bearer"
                    assert response.json()["error"]["kind"] == "unauthorized"


def test_schema_is_the_stack_config_schema(service):
    from components.config.stack import stack_config_json_schema

    assert service().get("/v1/schema", headers=AUTH).json() == stack_config_json_schema()


# --- validation -----------------------------------------------------------------------------------


def test_validate_answers_with_predicted_capacity_and_cost(service):
    body = service().post("/v1/validate", headers=AUTH, json={"stack": "team-a", "config": dev_config()}).json()
    assert body["valid"] is True and body["stack"] == "team-a"
    (model,) = body["models"]
    assert model["name"] == "qwen3-4b" and model["predicted"]["kvCacheTokens"] > 0
    assert body["cost"]["atMaximum"]["perMonth"] > body["cost"]["atMinimum"]["perMonth"] > 0


def test_invalid_config_is_the_cli_messages_at_json_pointers(service, tmp_path):
    config = dev_config()
    config["gpuPools"][0]["maxSize"] = -1
    config["gpuPool"] = []  # a typo: the CLI suggests the key
    response = service().post("/v1/validate", headers=AUTH, json={"stack": "team-a", "config": config})
    assert response.status_code == 422
    errors = response.json()["error"]["errors"]
    by_pointer = {e["pointer"]: e for e in errors}
    assert set(by_pointer) == {"/config/gpuPools/0/maxSize", "/config/gpuPool"}
    assert "gpuPools" in by_pointer["/config/gpuPool"]["message"]
    # the same lines `python -m stacks validate` prints for the same stack file
    (tmp_path / "Pulumi.team-a.yaml").write_text(yaml.safe_dump({"config": {f"llm-platform:{k}": v for k, v in config.items()}}))
    cli = subprocess.run([sys.executable, "-m", "stacks", "validate", "team-a", "--stack-dir", str(tmp_path)], capture_output=True, text=True, cwd=PROJECT_DIR)
    assert cli.returncode == 2
    cli_lines = [line for line in cli.stderr.splitlines() if line.startswith("Pulumi.team-a.yaml: ")]
    assert cli_lines and sorted(cli_lines) == sorted(e["text"] for e in errors)


def test_generated_invalid_requests_are_refused_at_their_json_pointers(service):
    """The schema-driven mistakes of tests/bad_input.py as portal requests: 422, each at a JSON
    Pointer into the request and the key it names, in the CLI's words; never a 5xx."""
    client = service()
    config = dev_config()
    sendable = [m for m in mutations(config) if not (isinstance(m.value, float) and math.isnan(m.value))]  # JSON has no NaN

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(mutation=st.sampled_from(sendable))
    def check(mutation):
        response = client.post("/v1/validate", headers=AUTH, json={"stack": "team-a", "config": applied(config, mutation)})
        assert response.status_code == 422, (mutation, response.text)
        errors = response.json()["error"]["errors"]
        assert errors and all(e["pointer"].startswith("/config") for e in errors), errors
        assert any(related(e["key"], mutation) for e in errors), (mutation, errors)
        assert not any(words in e["message"] for e in errors for words in DEVELOPER_WORDING), errors

    check()


def test_key_paths_become_json_pointers():
    from stacks.automation.request import EnvironmentRequest, request_pointer

    request = EnvironmentRequest(config={"tags": {}}, secrets={"hfToken": "x"})
    assert request_pointer("llm-platform:tags['team.example.com/owner~1']", request) == "/config/tags/team.example.com~1owner~01"
    assert request_pointer("llm-platform:models[2].scaling.activeHours.end", request) == "/config/models/2/scaling/activeHours/end"
    assert request_pointer("llm-platform:hfToken", request) == "/secrets/hfToken"
    assert request_pointer("llm-platform", request) == "/config"


def test_a_credential_in_config_is_refused_in_secrets_accepted(service):
    client = service()
    config = dev_config()
    config["models"][0]["gated"] = True
    refused = client.post("/v1/validate", headers=AUTH, json={"config": {**config, "hfToken": SECRET_VALUE}})
    assert refused.status_code == 422
    (problem,) = refused.json()["error"]["errors"]
    assert problem["pointer"] == "/config/hfToken" and "--secret" in problem["message"]
    assert SECRET_VALUE not in refused.text
    missing = client.post("/v1/validate", headers=AUTH, json={"config": config})
    assert missing.status_code == 422 and "hfToken" in missing.text
    accepted = client.post("/v1/validate", headers=AUTH, json={"config": config, "secrets": {"hfToken": SECRET_VALUE}})
    assert accepted.status_code == 200, accepted.text
    assert SECRET_VALUE not in accepted.text


def test_malformed_bodies_are_422_with_pointers(service):
    client = service()
    for body, pointer in (({"config": 5}, "/config"), ({}, "/config"), ({"config": {}, "extra": 1}, "/extra"), ({"config": {}, "secrets": {"hfToken": 3}}, "/secrets/hfToken")):
        response = client.post("/v1/validate", headers=AUTH, json=body)
        assert response.status_code == 422, body
        assert pointer in [e["pointer"] for e in response.json()["error"]["errors"]], (body, response.text)
    assert client.post("/v1/environments/not a stack!/preview", headers=AUTH, json={"config": {}}).status_code in (404, 422)


def test_bodies_python_would_misread_are_refused_in_the_apis_shape(service):
    """A key given twice (json keeps the last), nesting deep enough to break a recursive reader,
    bytes that are not JSON, a route that does not exist: each answers {"error": ...}, never a 500."""
    client = service()
    json_headers = {**AUTH, "Content-Type": "application/json"}
    twice = '{"config": {"cloud": "aws", "systemPool": {"minSize": 1, "maxSize": 3, "maxSize": 300}}}'
    response = client.post("/v1/validate", headers=json_headers, content=twice)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["errors"] == [
        {"pointer": "/config/systemPool/maxSize", "key": "llm-platform:systemPool.maxSize", "message": "given twice in one object; JSON would keep only the last", "text": "/config/systemPool/maxSize: given twice in one object; JSON would keep only the last"}
    ]
    config = dev_config()
    for depth, status in ((900, 422), (100_000, 400)):  # a config error at its key; beyond json's own limit, unreadable
        body = json.dumps({"config": {**config, "tags": "DEEP"}}).replace('"DEEP"', "[" * depth + "]" * depth)
        response = client.post("/v1/validate", headers=json_headers, content=body)
        assert response.status_code == status, (depth, response.text[:300])
        error = response.json()["error"]
        assert error["kind"] == "invalid"
        if status == 422:
            assert [e["pointer"] for e in error["errors"]] == ["/config/tags"]
    for raw in (b"\xff\xfe{", b'{"config": '):
        response = client.post("/v1/validate", headers=json_headers, content=raw)
        assert response.status_code in (400, 422) and "error" in response.json(), response.text
    huge = json.dumps({"config": {**config, "tags": {f"k{i}": "v" * 100 for i in range(20_000)}}})
    response = client.post("/v1/validate", headers=json_headers, content=huge)
    assert response.status_code == 413 and response.json()["error"]["kind"] == "too-large"
    missing = client.get("/v1/no-such-route", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"]["kind"] == "not-found"


def test_only_credentials_may_be_sent_as_secrets(service):
    config = dev_config()
    region = config.pop("region")
    response = service().post("/v1/validate", headers=AUTH, json={"config": config, "secrets": {"region": region}})
    assert response.status_code == 422
    (problem,) = response.json()["error"]["errors"]
    assert problem["pointer"] == "/secrets/region" and "not a credential (only hfToken is)" in problem["message"]


@pytest.mark.parametrize(("token", "words"), [("", "is empty"), ("   ", "is empty"), ("hf_abc\n", "newline"), ("hf_a b", "space"), ("hf_" + "x" * 300, "characters long")])
def test_an_unusable_token_is_refused_without_showing_it(service, token, words):
    """The stack file the request becomes holds placeholders, so the values are checked as sent;
    the answer names the key and never echoes the value."""
    response = service().post("/v1/validate", headers=AUTH, json={"config": dev_config(), "secrets": {"hfToken": token}})
    assert response.status_code == 422, response.text
    (problem,) = response.json()["error"]["errors"]
    assert problem["pointer"] == "/secrets/hfToken" and problem["key"] == "llm-platform:hfToken" and words in problem["message"]
    assert token.strip() == "" or token.strip() not in response.text


def test_repository_stacks_are_not_the_portals(service):
    response = service().post("/v1/environments/prod/up", headers=AUTH, json={"config": dev_config()})
    assert response.status_code == 409 and response.json()["error"]["kind"] == "repository-stack"


# --- operations -------------------------------------------------------------------------------------


def test_preview_runs_the_program_and_reports_its_events(service, standin):
    client = service(policy_pack=PROJECT_DIR / "policy")
    response = client.post("/v1/environments/team-a/preview", headers=AUTH, json={"config": dev_config()})
    assert response.status_code == 202, response.text
    op = response.json()
    assert response.headers["location"] == f"/v1/operations/{op['id']}" and op["state"] in ("queued", "running")
    done = wait(client, op["id"])
    assert done["state"] == "succeeded", done["failure"]
    result = done["result"]
    assert result["changes"]["create"] > 100 and done["summary"] == result["changes"]
    assert result["models"][0]["predicted"]["kvCacheTokens"] > 0 and result["cost"]["atMaximum"]["perMonth"] > 0
    stream = events(client, op["id"])
    kinds = [e["kind"] for e in stream]
    assert kinds[:2] == ["state", "state"] and kinds[-1] == "state" and stream[-1]["state"] == "succeeded"
    started = [e for e in stream if e["kind"] == "resource-started"]
    assert {e["op"] for e in started} == {"create"} and all(e["planning"] for e in started)
    assert any(e["type"] == "aws:eks/cluster:Cluster" for e in started)  # the real program's resources
    assert sum(1 for e in stream if e["kind"] == "resource-done") == len(started) == result["changes"]["create"]
    (summary,) = [e for e in stream if e["kind"] == "summary"]
    assert summary["changes"] == result["changes"]
    assert [e["_id"] for e in stream] == list(range(1, len(stream) + 1))
    # resume: after event 10, exactly the rest
    assert [e["_id"] for e in events(client, op["id"], last_event_id=10)] == list(range(11, len(stream) + 1))
    argv = [c for c in standin.calls() if "preview" in c][0]
    assert "--event-log" in argv and argv[argv.index("--event-log") + 1].startswith("tcp://")  # gRPC above 3.205.0
    assert argv[argv.index("--policy-pack") + 1] == str(PROJECT_DIR / "policy")  # the guardrails run for the portal too


def test_file_event_log_for_an_older_cli(service, standin):
    standin.mode(version="3.205.0")
    client = service()
    op = client.post("/v1/environments/team-b/preview", headers=AUTH, json={"config": dev_config()}).json()
    done = wait(client, op["id"])
    assert done["state"] == "succeeded", done["failure"]
    assert any(e["kind"] == "summary" for e in events(client, op["id"]))
    argv = [c for c in standin.calls() if "preview" in c][0]
    assert not argv[argv.index("--event-log") + 1].startswith("tcp://")


def test_up_then_outputs_with_secrets_never_exposed(service, standin, tmp_path):
    client = service()
    config = dev_config()
    config["models"][0]["gated"] = True
    op = client.post("/v1/environments/team-c/up", headers=AUTH, json={"config": config, "secrets": {"hfToken": SECRET_VALUE}}).json()
    done = wait(client, op["id"])
    assert done["state"] == "succeeded", done["failure"]
    assert done["result"]["outputs"]["kubeconfig"] == "[secret]"
    assert done["result"]["models"][0]["endpoint"].startswith("http://qwen3-4b.")
    environment = client.get("/v1/environments/team-c", headers=AUTH).json()
    assert environment["outputs"]["kubeconfig"] == "[secret]" and environment["models"][0]["endpoint"]
    assert [o["id"] for o in environment["operations"]] == [op["id"]]
    # the secret went to the CLI as a secret ...
    config_set = next(c for c in standin.calls() if c[1:3] == ["config", "set-all"] or c[:2] == ["config", "set-all"])
    assert f"llm-platform:hfToken={SECRET_VALUE}" == config_set[config_set.index("--secret") + 1]
    # ... and is nowhere in what the service wrote or answered
    everything = json.dumps([done, environment, events(client, op["id"])])
    assert SECRET_VALUE not in everything and "standin-secret-" not in everything
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET_VALUE.encode() not in path.read_bytes(), path
    stored = client.app.state.store.get(op["id"]).request
    assert stored["secretKeys"] == ["hfToken"] and "hfToken" not in stored["config"]
    # a second up writes the config again: a key the request no longer has is removed
    config.pop("tags", None)
    config["models"][0]["gated"] = False
    second = wait(client, client.post("/v1/environments/team-c/up", headers=AUTH, json={"config": config}).json()["id"])
    assert second["state"] == "succeeded"
    assert any(c[:2] == ["config", "rm-all"] and "llm-platform:hfToken" in c for c in [x[1:] if x[0] == "--non-interactive" else x for x in standin.calls()])


def test_unknown_environment_is_404(service):
    response = service().get("/v1/environments/never-made", headers=AUTH)
    assert response.status_code == 404 and response.json()["error"]["kind"] == "not-found"


def test_one_operation_per_stack(service, standin):
    standin.mode(slow=0.05)
    client = service()
    first = client.post("/v1/environments/team-d/up", headers=AUTH, json={"config": dev_config()})
    second = client.post("/v1/environments/team-d/up", headers=AUTH, json={"config": dev_config()})
    assert first.status_code == 202
    assert second.status_code == 409
    error = second.json()["error"]
    assert error["kind"] == "busy" and error["retryable"] is True and error["operationId"] == first.json()["id"]
    other = client.post("/v1/environments/team-e/preview", headers=AUTH, json={"config": dev_config()})
    assert other.status_code == 202  # another stack is not blocked
    client.post(f"/v1/operations/{first.json()['id']}/cancel", headers=AUTH)
    client.post(f"/v1/operations/{other.json()['id']}/cancel", headers=AUTH)
    wait(client, first.json()["id"])
    assert client.post("/v1/environments/team-d/refresh", headers=AUTH).status_code == 202  # free again


def test_cancel_interrupts_the_cli_gracefully(service, standin):
    standin.mode(slow=0.1)
    client = service()
    op = client.post("/v1/environments/team-f/up", headers=AUTH, json={"config": dev_config()}).json()
    wait_for_event(client, op["id"], "resource-done")
    cancel = client.post(f"/v1/operations/{op['id']}/cancel", headers=AUTH)
    assert cancel.status_code == 202 and cancel.json()["cancelRequested"] is True
    done = wait(client, op["id"], timeout=60)
    assert done["state"] == "cancelled"
    assert done["failure"]["kind"] == "cancelled" and done["failure"]["retryable"] is False
    stream = events(client, op["id"])
    assert stream[-1] == {**stream[-1], "kind": "state", "state": "cancelled"}
    steps = sum(1 for e in stream if e["kind"] == "resource-done")
    assert 0 < steps < 100  # it stopped early, after its in-flight step
    again = client.post(f"/v1/operations/{op['id']}/cancel", headers=AUTH)
    assert again.status_code == 409 and again.json()["error"]["kind"] == "finished"


def test_a_queued_operation_waits_for_a_worker_and_cancelled_never_starts(service, standin):
    standin.mode(slow=0.1)
    client = service(workers=1)
    running = client.post("/v1/environments/team-l/up", headers=AUTH, json={"config": dev_config()}).json()
    queued = client.post("/v1/environments/team-m/preview", headers=AUTH, json={"config": dev_config()}).json()
    wait_for_event(client, running["id"], "resource-done")
    assert client.get(f"/v1/operations/{queued['id']}", headers=AUTH).json()["state"] == "queued"  # the one slot is taken
    cancel = client.post(f"/v1/operations/{queued['id']}/cancel", headers=AUTH)
    assert cancel.status_code == 202 and cancel.json()["state"] == "cancelled"
    client.post(f"/v1/operations/{running['id']}/cancel", headers=AUTH)
    assert wait(client, running["id"])["state"] == "cancelled"
    time.sleep(2)
    assert [e.get("state") for e in events(client, queued["id"])] == ["queued", "cancelled"]
    assert not any("team-m" in c for c in standin.calls())  # its CLI never ran


def test_a_restart_marks_what_a_dead_service_left_running_interrupted(service, tmp_path):
    from stacks.service.store import Store

    store = Store(tmp_path / "data" / "operations.sqlite")
    op = store.create("team-g", "up", {"config": {}, "secretKeys": []})
    store.mark_running(op.id, pid=2**22 + 12345)
    store.append_event(op.id, {"kind": "resource-started", "urn": "urn:x", "type": "t", "op": "create", "planning": False})
    queued = store.create("team-h", "preview", None)
    store.close()
    client = service(tmp_path / "data")
    for op_id in (op.id, queued.id):
        record = client.get(f"/v1/operations/{op_id}", headers=AUTH).json()
        assert record["state"] == "interrupted" and record["failure"]["retryable"] is True
    stream = events(client, op.id)
    assert [e["kind"] for e in stream] == ["state", "state", "resource-started", "state"]
    assert stream[-1]["state"] == "interrupted"


def test_a_finished_operation_takes_no_more_events(tmp_path):
    """An orphaned worker still reporting its CLI's last steps after the restart marked the
    operation interrupted: those events are dropped, so the terminal state stays the last word."""
    from stacks.service.store import Store

    store = Store(tmp_path / "operations.sqlite")
    op = store.create("team-g", "up", None)
    store.mark_running(op.id, pid=2**22 + 12345)
    assert store.append_event(op.id, {"kind": "resource-done", "urn": "urn:a"}) is not None
    assert store.finish(op.id, "interrupted", failure={"kind": "interrupted"})
    assert store.append_event(op.id, {"kind": "resource-done", "urn": "urn:b"}) is None
    assert not store.finish(op.id, "succeeded")  # the late worker's own end changes nothing either
    stream = [e for _, e in store.events_after(op.id, 0)]
    store.close()
    assert [e.get("state") or e.get("urn") for e in stream] == ["queued", "running", "urn:a", "interrupted"]


def _serve(tmp_path: Path, port: int, log: Any = subprocess.PIPE) -> subprocess.Popen:
    """The service as an operator starts it; `log` a file where the test makes more requests than
    a pipe nobody reads can hold the access log of."""
    (tmp_path / "token").write_text(TOKEN + "\n")
    return subprocess.Popen(
        [sys.executable, "-m", "stacks", "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "data"), "--token-file", str(tmp_path / "token")],
        cwd=PROJECT_DIR, stdout=log, stderr=subprocess.STDOUT, text=True,
    )


def _wait_healthy(base: str) -> None:
    import httpx

    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the service did not start")


def test_a_killed_service_loses_no_history_and_leaves_nothing_running(service, standin, tmp_path):
    """SIGKILL of the service mid-update: its worker stops the CLI gracefully and records the end;
    the next service has the whole history."""
    import httpx

    standin.mode(slow=0.1)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(tmp_path, port)
    try:
        _wait_healthy(base)
        op = httpx.post(f"{base}/v1/environments/team-g/up", headers=AUTH, json={"config": dev_config()}, timeout=120).json()
        from stacks.service.store import Store

        store = Store(tmp_path / "data" / "operations.sqlite")  # the service's own file, read beside it
        for _ in range(600):
            if any(e["kind"] == "resource-done" for _, e in store.events_after(op["id"], 0)):
                break
            time.sleep(0.1)
        store.close()
    finally:
        proc.kill()
        # The service itself is gone at once; its CLI child may still hold the shared stdout pipe
        # while it winds down, so wait for the process, not for the pipe's end.
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()
    client = service(tmp_path / "data")
    done = wait(client, op["id"], timeout=60)
    assert done["state"] == "interrupted", done
    stream = events(client, op["id"])
    assert any(e["kind"] == "resource-done" for e in stream) and stream[-1]["state"] == "interrupted"
    time.sleep(1)
    assert client.get(f"/v1/operations/{op['id']}", headers=AUTH).json()["state"] == "interrupted"


def test_a_graceful_shutdown_interrupts_running_operations(service, standin):
    standin.mode(slow=0.1)
    client = service()
    op = client.post("/v1/environments/team-h/up", headers=AUTH, json={"config": dev_config()}).json()
    wait_for_event(client, op["id"], "resource-done")
    client.app.state.manager.shutdown(wait_seconds=30)
    record = client.app.state.store.get(op["id"])
    assert record.state == "interrupted" and record.failure["kind"] == "interrupted"


@pytest.mark.parametrize(
    ("mode", "kind", "retryable", "text"),
    [
        ({"locked": True}, "busy", True, "in progress"),
        ({"fail": "the cloud said no: quota exceeded"}, "engine-failed", False, "quota exceeded"),
        ({"version": "3.100.0"}, "cli-too-old", False, "3.200.0"),
    ],
    ids=["update-in-progress", "engine-failure", "cli-too-old"],
)
def test_failures_are_results(service, standin, mode, kind, retryable, text):
    standin.mode(**mode)
    client = service()
    op = client.post("/v1/environments/team-i/refresh" if kind != "engine-failed" else "/v1/environments/team-i/preview", headers=AUTH, json=None if kind != "engine-failed" else {"config": dev_config()})
    if kind == "busy":  # refresh of a stack that does not exist yet would be not-found: make it first
        assert op.status_code == 202
        wait(client, op.json()["id"])
        standin.mode()
        wait(client, client.post("/v1/environments/team-i/preview", headers=AUTH, json={"config": dev_config()}).json()["id"])
        standin.mode(**mode)
        op = client.post("/v1/environments/team-i/refresh", headers=AUTH)
    done = wait(client, op.json()["id"])
    assert done["state"] == "failed"
    failure = done["failure"]
    assert failure["kind"] == kind and failure["retryable"] is retryable and text in failure["message"]
    assert "Traceback" not in json.dumps(done)
    if kind == "engine-failed":
        assert failure["logTail"]
    if kind == "cli-too-old":
        assert INSTALL_HINT in failure["message"]


def test_cli_missing_says_how_to_install_it(service, standin, monkeypatch):
    client = service()
    monkeypatch.setenv("PATH", "/nonexistent")
    response = client.get("/v1/environments/team-j", headers=AUTH)
    assert response.status_code == 503
    assert response.json()["error"]["kind"] == "cli-missing" and "get.pulumi.com" in response.json()["error"]["message"]
    done = wait(client, client.post("/v1/environments/team-j/refresh", headers=AUTH).json()["id"])
    assert done["failure"]["kind"] == "cli-missing" and INSTALL_HINT in done["failure"]["message"]


def test_refresh_and_destroy_of_a_stack_never_made(service):
    client = service()
    done = wait(client, client.post("/v1/environments/team-k/destroy", headers=AUTH).json()["id"])
    assert done["state"] == "failed" and done["failure"]["kind"] == "not-found"


# --- the real server, and the OpenAPI document under fuzzing ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_on_a_loopback_port(tmp_path, standin):
    import httpx

    port = _free_port()
    proc = _serve(tmp_path, port)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base)
        assert httpx.get(f"{base}/v1/schema", timeout=5).status_code == 401
        response = httpx.post(f"{base}/v1/validate", headers=AUTH, json={"config": dev_config(), "secrets": {"hfToken": SECRET_VALUE}}, timeout=120)
        assert response.status_code == 200 and response.json()["valid"] is True
        assert SECRET_VALUE not in response.text
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught (exit status -15)
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert TOKEN not in output and SECRET_VALUE not in output  # the service's log


def test_serve_refuses_to_start_without_a_token(tmp_path, monkeypatch):
    monkeypatch.delenv("LLM_PLATFORM_API_TOKEN", raising=False)
    result = subprocess.run([sys.executable, "-m", "stacks", "serve", "--data-dir", str(tmp_path)], capture_output=True, text=True, cwd=PROJECT_DIR)
    assert result.returncode == 2 and "LLM_PLATFORM_API_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_st_run_over_the_served_api_finds_nothing(tmp_path, standin):
    """What a reviewer's scanner does: `st run` from the repository (so with its
    `schemathesis.toml`) against the real server, every phase and every check."""
    port, log_path = _free_port(), tmp_path / "service.log"
    with log_path.open("w") as log:
        proc = _serve(tmp_path, port, log)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base)
        scan = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "--no-color", "run", f"{base}/openapi.json", "-H", f"Authorization: Bearer {TOKEN}", "--max-examples", "25"],
            cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    output = log_path.read_text()
    assert scan.returncode == 0, scan.stdout[-6000:] + scan.stderr[-2000:]
    assert "Traceback" not in output, output[-6000:]
    assert " passed" in scan.stdout and "failed" not in scan.stdout.split("SUMMARY")[-1]


def test_schemathesis_with_every_check_finds_nothing(service, standin):
    """Generated requests, schema-valid and not, over every operation of the OpenAPI document,
    under every schemathesis check and the repository's own `schemathesis.toml` (what `st run`
    reads there): no 5xx, no status the document does not list, bodies as documented, a valid
    body not refused but for the config rules JSON Schema cannot say (the file explains), an
    invalid one not accepted, the token never ignored."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.config import SchemathesisConfig

    client = service(workers=1)
    config = SchemathesisConfig.from_path(str(PROJECT_DIR / "schemathesis.toml"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app, config=config)

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=st.one_of(*(schema.as_strategy(generation_mode=mode) for mode in GenerationMode)))
    def check(case):
        case.call_and_validate(headers=AUTH)

    check()


def test_the_openapi_document_says_what_a_valid_body_is(service, standin):
    """`config` is the stack config's own JSON Schema (credentials excepted), `secrets` lists the
    credentials, the refusals of a body (400, 413) are documented, and a started operation links
    to where it is followed."""
    document = service().get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for name in ("EnvironmentRequest", "ValidateRequest"):
        body = schemas[name]["properties"]
        assert body["config"]["$ref"] == "#/components/schemas/StackConfigRequest"
        assert body["secrets"]["properties"].keys() == {"hfToken"} and body["secrets"]["additionalProperties"] is False
    config = schemas["StackConfigRequest"]
    assert config["additionalProperties"] is False and {"cloud", "region", "cluster"} <= set(config["required"])
    assert "hfToken" not in config["properties"] and schemas["GpuPoolConfig"]["properties"]["name"]
    for path in ("/v1/validate", "/v1/environments/{name}/preview", "/v1/environments/{name}/up"):
        assert {"400", "413", "422"} <= set(document["paths"][path]["post"]["responses"])
    links = document["paths"]["/v1/environments/{name}/up"]["post"]["responses"]["202"]["links"]
    assert links["operation"] == {"operationId": document["paths"]["/v1/operations/{op_id}"]["get"]["operationId"], "parameters": {"op_id": "$response.body#/id"}}
