"""Least privilege in what we deploy for models (issue 21): every pod in a model namespace passes
Pod Security `restricted` as the API server checks it, the namespaces enforce it (or warn on it
where a third-party chart cannot comply), and the vLLM server writes only where we gave it room."""

from __future__ import annotations

from typing import Any

from conftest import inputs_of

from stacks.stack_files import load_stack_file

from components.serving.pod import MODEL_UID, SERVER_HOME, WRITABLE_DIRS
from stacks.offline import COMPUTED, SECRET

WORKLOADS = {
    "kubernetes:apps/v1:Deployment": lambda spec: spec["template"]["spec"],
    "kubernetes:apps/v1:DaemonSet": lambda spec: spec["template"]["spec"],
    "kubernetes:batch/v1:Job": lambda spec: spec["template"]["spec"],
}
# Pod Security Standards, `restricted` (kubernetes.io/docs/concepts/security/pod-security-standards,
# as of v1.35): the volume types it allows.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}


def _namespaces(run) -> dict[str, dict[str, str]]:
    return {ns["metadata"]["name"]: ns["metadata"].get("labels", {}) for ns in inputs_of(run, "kubernetes:core/v1:Namespace")}


def _pods(run) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, workload name, pod spec) of every typed workload the program registers."""
    out = []
    for token, pod_of in WORKLOADS.items():
        for workload in inputs_of(run, token):
            out.append((workload["metadata"].get("namespace", "default"), workload["metadata"]["name"], pod_of(workload["spec"])))
    return out


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What the `restricted` profile refuses in a pod spec (the checks of the admission plugin)."""
    found = []
    pod_sc = pod.get("securityContext", {})
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        found.append("host namespaces")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']}: {kinds - RESTRICTED_VOLUMES}")
    for container in pod.get("initContainers", []) + pod["containers"]:
        sc = container.get("securityContext", {})
        name = container["name"]
        if sc.get("privileged"):
            found.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation not false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            found.append(f"{name}: capabilities not dropped")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds {caps['add']}")
        if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
            found.append(f"{name}: runAsNonRoot unset")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            found.append(f"{name}: runs as UID 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccomp {seccomp}")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            found.append(f"{name}: hostPort")
    return found


def test_a_restricted_checker_that_can_fail():
    pod = {"containers": [{"name": "c", "securityContext": {"capabilities": {"add": ["NET_RAW"]}}}], "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}
    assert restricted_violations(pod) == [
        "volume h: {'hostPath'}", "c: allowPrivilegeEscalation not false", "c: capabilities not dropped", "c: adds ['NET_RAW']",
        "c: runAsNonRoot unset", "c: seccomp None",
    ]


def test_model_namespaces_enforce_restricted_and_every_pod_in_them_passes(run):
    cfg = load_stack_file(run.stack).validate()
    routed = {m.namespace_name for m in cfg.routed_models}
    namespaces = _namespaces(run)
    model_namespaces = {m.namespace_name for m in cfg.models}
    assert model_namespaces and model_namespaces <= set(namespaces)
    for ns in model_namespaces:
        labels = namespaces[ns]
        assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted", ns
        # the llm-d endpoint picker's chart (v0.10.0) sets no securityContext: baseline where it runs
        assert labels["pod-security.kubernetes.io/enforce"] == ("baseline" if ns in routed else "restricted"), ns
    pods = [(ns, name, pod) for ns, name, pod in _pods(run) if ns in model_namespaces]
    assert {name for _, name, _ in pods} >= {m.name for m in cfg.models}
    for ns, name, pod in pods:
        assert restricted_violations(pod) == [], (ns, name)


def test_every_restricted_namespace_holds_only_pods_that_pass(run):
    namespaces = _namespaces(run)
    for ns, name, pod in _pods(run):
        if namespaces.get(ns, {}).get("pod-security.kubernetes.io/enforce") == "restricted":
            assert restricted_violations(pod) == [], (ns, name)


def test_the_server_runs_as_our_user_on_a_read_only_root_and_writes_only_to_its_empty_dirs(run):
    cfg = load_stack_file(run.stack).validate()
    servers = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in inputs_of(run, "kubernetes:apps/v1:Deployment")
               if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") == "vllm"}
    assert set(servers) == {m.name for m in cfg.models}
    for model in cfg.models:
        pod = servers[model.name]
        assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["runAsGroup"] == MODEL_UID >= 10000
        _assert_fs_group_only_where_the_root_is_roots(cfg, pod)
        (server,) = pod["containers"]
        assert server["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
        env = {e["name"]: e.get("value") for e in server["env"]}
        assert env["HOME"] == SERVER_HOME and env["USER"] and env["HF_HUB_OFFLINE"] == "1"
        volumes = {v["name"]: v for v in pod["volumes"]}
        writable = {m["mountPath"]: m["name"] for m in server["volumeMounts"] if not m.get("readOnly")}
        for path, volume in writable.items():
            kind = "persistentVolumeClaim" if volume == "compile-cache" else "emptyDir"
            assert kind in volumes[volume], (model.name, path)
        assert {path for path, _ in WRITABLE_DIRS.values()} | {"/dev/shm"} <= set(writable)
        assert all(volumes[name]["emptyDir"].get("sizeLimit") for name in WRITABLE_DIRS)
        if model.compile_cache:
            # the init container creates the cache's directory as our user before the kubelet would, as root
            (init,) = pod["initContainers"]
            assert init["command"][-1].startswith('mkdir -p "/weights-volume/.vllm-cache/')


def _assert_fs_group_only_where_the_root_is_roots(cfg, pod: dict[str, Any]) -> None:
    """A Filestore share's root is root's, 755, and the driver leaves it so: the pods that write it
    ask the kubelet for the model group (once: OnRootMismatch, never a walk of the weights). EFS
    access points and the Azure Files driver hand the root over themselves: no fsGroup there."""
    security = pod["securityContext"]
    if cfg.cloud == "gcp":
        assert security["fsGroup"] == MODEL_UID and security["fsGroupChangePolicy"] == "OnRootMismatch"
    else:
        assert "fsGroup" not in security and "fsGroupChangePolicy" not in security


def test_the_download_job_runs_as_the_servers_user_and_writes_only_the_volume_and_its_scratch(run):
    cfg = load_stack_file(run.stack).validate()
    jobs = inputs_of(run, "kubernetes:batch/v1:Job")
    assert len(jobs) == len([m for m in cfg.models if not m.is_local_path])
    for job in jobs:
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == MODEL_UID
        _assert_fs_group_only_where_the_root_is_roots(cfg, pod)
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert {m["name"] for m in container["volumeMounts"]} == {"weights", "tmp"} and "emptyDir" in volumes["tmp"]


def _is_vllm_server(pod: dict[str, Any], container: dict[str, Any]) -> bool:
    return container["name"] == "vllm" and container.get("command") == ["vllm", "serve"]


def test_every_container_but_the_server_has_a_cpu_limit(run):
    """The one exception .checkov.yaml makes for CKV_K8S_11: the vLLM server (a CFS quota stalls the
    loop that feeds the GPU). Everything else we write is bounded."""
    servers = 0
    for ns, name, pod in _pods(run):
        for container in pod.get("initContainers", []) + pod["containers"]:
            if _is_vllm_server(pod, container):
                servers += 1
                assert "cpu" not in container["resources"].get("limits", {}), (ns, name)
            else:
                assert container["resources"]["limits"].get("cpu"), (ns, name, container["name"])
    assert servers == len(load_stack_file(run.stack).validate().models)


def test_every_server_has_its_probes(run):
    """The one exception .checkov.yaml makes for CKV_K8S_8/9 covers what serves nothing; every
    container that serves (vLLM, the gateway's not-found nginx) is probed both ways."""
    serving = [(ns, name, c) for ns, name, pod in _pods(run) for c in pod["containers"] if c.get("ports")]
    assert serving
    for ns, name, container in serving:
        assert container.get("livenessProbe") and container.get("readinessProbe"), (ns, name, container["name"])
    unprobed = {c["name"] for _, _, pod in _pods(run) for c in pod["containers"] if not c.get("readinessProbe")}
    assert unprobed <= {"placeholder", "hold", "download"}, unprobed  # a Job runs to completion: nothing to probe


def test_each_model_has_its_own_api_key_kept_secret_and_off_the_command_line(run):
    cfg = load_stack_file(run.stack).validate()
    keyed = [m for m in cfg.models if m.access.api_key]
    assert keyed, "the stacks as shipped keep the API key on"
    passwords = {r.name: r for r in run.of_type("random:index/randomPassword:RandomPassword")}
    secrets = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in inputs_of(run, "kubernetes:core/v1:Secret")}
    servers = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in inputs_of(run, "kubernetes:apps/v1:Deployment")
               if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") == "vllm"}
    for model in keyed:
        (password,) = [p for name, p in passwords.items() if name.endswith(f"-{model.name}-api-key")]
        assert password.inputs["length"] >= 32 and password.inputs["special"] is False and password.provider.split("::")[-2].endswith("-models-random")
        secret = secrets[(model.namespace_name, f"{model.name}-api-key")]
        data = secret["stringData"]  # the whole map is secret once one value is
        assert data == SECRET or data["api-key"] in (SECRET, COMPUTED), data
        (server,) = servers[model.name]["containers"]
        (env,) = [e for e in server["env"] if e["name"] == "VLLM_API_KEY"]
        assert env["valueFrom"]["secretKeyRef"] == {"name": f"{model.name}-api-key", "key": "api-key"}
        assert not any("api-key" in a for a in server["args"])
    assert run.outputs["modelApiKeys"] == SECRET


def test_turning_the_api_key_off_removes_it_everywhere():
    from conftest import dev_config_values, stack_from

    from stacks.offline import run_program

    values = dev_config_values()
    values["llm-platform:models"][0]["access"]["apiKey"] = False
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    assert not run.of_type("random:index/randomPassword:RandomPassword") or all("api-key" not in r.name for r in run.of_type("random:index/randomPassword:RandomPassword"))
    assert "modelApiKeys" not in run.outputs
    (server,) = [d for d in inputs_of(run, "kubernetes:apps/v1:Deployment") if d["metadata"]["name"] == "qwen3-4b"]
    assert "VLLM_API_KEY" not in {e["name"] for e in server["spec"]["template"]["spec"]["containers"][0]["env"]}
