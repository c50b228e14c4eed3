"""The API key guard vLLM loads with --middleware: every path but the health and metrics ones needs
the key (vLLM 0.33 checks only /v1, /v2, /inference and /cohere itself), and the pods load it."""

from __future__ import annotations

import ast
import asyncio
import sys

import pytest
from conftest import dev_config_values, load_stack_file, program_run, stack_from

from components.serving.pod import API_GUARD_MOUNT
from components.serving.service import API_GUARD_SHA256, API_GUARD_SOURCE
from components.vllm import api_guard
from components.vllm.api_guard import RequireApiKey
from stacks.offline import run_program

KEY = "k" * 48


def _call(guard: RequireApiKey, path: str, headers: dict[str, str] | None = None, kind: str = "http", method: str = "POST", root: str = "") -> tuple[list[dict], bool]:
    """What the guard sent, and whether it called vLLM's app."""
    reached: list[bool] = []
    sent: list[dict] = []

    async def app(scope, receive, send):
        reached.append(True)

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    guard.app = app  # vLLM's app, behind the guard
    scope = {"type": kind, "path": path, "method": method, "root_path": root, "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    loop = asyncio.new_event_loop()  # not asyncio.run: it unsets the thread's loop the Pulumi runs use
    try:
        loop.run_until_complete(guard(scope, receive, send))
    finally:
        loop.close()
    return sent, bool(reached)


@pytest.fixture
def guard(monkeypatch) -> RequireApiKey:
    monkeypatch.setenv("VLLM_API_KEY", KEY)

    async def app(scope, receive, send):  # _call puts its own app behind the guard
        raise AssertionError("not replaced")

    return RequireApiKey(app)


# Outside vLLM's own GUARDED_PREFIX in 0.33.0, and able to generate, change the engine or read it.
UNGUARDED_BY_VLLM = ("/invocations", "/tokenize", "/detokenize", "/scale_elastic_ep", "/generative_scoring", "/pooling", "/score", "/rerank", "/classify", "/docs", "/openapi.json")


@pytest.mark.parametrize("path", [*UNGUARDED_BY_VLLM, "/v1/chat/completions", "/v1/models"])
def test_a_request_without_the_right_key_is_refused(guard, path):
    for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY}):
        sent, reached = _call(guard, path, headers)
        assert not reached, (path, headers)
        assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 401
        assert sent[1]["body"] == b'{"error": "Unauthorized"}'


@pytest.mark.parametrize("path", UNGUARDED_BY_VLLM)
def test_the_key_lets_a_request_through(guard, path):
    for scheme in ("Bearer", "bearer"):
        sent, reached = _call(guard, path, {"Authorization": f"{scheme} {KEY}"})
        assert reached and not sent


@pytest.mark.parametrize("path", ["/health", "/ping", "/version", "/metrics", "/metrics/"])
def test_probes_and_scrapes_need_no_key(guard, path):
    sent, reached = _call(guard, path, method="GET")
    assert reached and not sent


def test_look_alikes_of_open_paths_are_not_open(guard):
    for path in ("/healthz", "/health/../invocations", "/metricsx", "/pingx", "/version/"):
        assert not _call(guard, path)[1], path


def test_a_websocket_without_the_key_is_closed(guard):
    sent, reached = _call(guard, "/v1/realtime", kind="websocket")
    assert not reached and sent == [{"type": "websocket.close", "code": 1008}]


def test_preflight_and_lifespan_pass(guard):
    assert _call(guard, "/invocations", method="OPTIONS")[1]
    assert _call(guard, "", kind="lifespan")[1]


def test_the_root_path_is_stripped_as_vllm_does(guard):
    assert _call(guard, "/llm/health", method="GET", root="/llm")[1]
    assert not _call(guard, "/llm/invocations", root="/llm")[1]


def test_without_a_key_the_server_does_not_start(monkeypatch):
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="VLLM_API_KEY is not set"):
        RequireApiKey(lambda *a: None)


def test_the_guard_imports_only_the_standard_library():
    """It runs in the vLLM image's Python, beside nothing of ours."""
    tree = ast.parse(open(api_guard.__file__).read())
    modules = {n.names[0].name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert modules <= sys.stdlib_module_names | {"__future__"}, modules


def _server(run, name: str) -> tuple[dict, dict]:
    (deployment,) = [r.inputs for r in run.of_type("kubernetes:apps/v1:Deployment") if r.inputs["metadata"]["name"] == name]
    pod = deployment["spec"]["template"]
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "vllm"]
    return pod, container


@pytest.mark.parametrize("stack", ["dev", "prod-gke", "prod-aks"])
def test_every_keyed_server_loads_the_guard_from_its_config_map(stack):
    run = program_run(stack, "update")
    maps = {(r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.inputs for r in run.of_type("kubernetes:core/v1:ConfigMap")}
    cfg = load_stack_file(stack).validate()
    for model in cfg.models:
        assert model.access.api_key, (stack, model.name)
        pod, container = _server(run, model.name)
        args = container["args"]
        assert args[args.index("--middleware") + 1] == "llm_platform_api_guard.RequireApiKey"
        env = {e["name"]: e for e in container["env"]}
        assert env["PYTHONPATH"]["value"] == API_GUARD_MOUNT and "secretKeyRef" in env["VLLM_API_KEY"]["valueFrom"]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "api-guard"]
        assert mount == {"name": "api-guard", "mountPath": API_GUARD_MOUNT, "readOnly": True}
        (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "api-guard"]
        data = maps[(model.namespace_name, volume["configMap"]["name"])]["data"]
        assert data == {"llm_platform_api_guard.py": API_GUARD_SOURCE}
        assert pod["metadata"]["annotations"]["llm-platform.io/api-guard-sha256"] == API_GUARD_SHA256


def test_without_a_key_there_is_no_guard():
    values = dev_config_values()
    values["llm-platform:models"][0]["access"] = {"apiKey": False}
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    pod, container = _server(run, values["llm-platform:models"][0]["name"])
    assert "--middleware" not in container["args"] and "PYTHONPATH" not in {e["name"] for e in container["env"]}
    assert not [v for v in pod["spec"]["volumes"] if v["name"] == "api-guard"] and not pod["metadata"].get("annotations")
