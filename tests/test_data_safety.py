"""Data that survives a mistake (issue 21): in a protected (production) stack the cluster, its
network and keys, and the shared weight store are Pulumi-protected and retained on delete, weight
volumes are Retain; and no change to a model's config replaces its weight volume."""

from __future__ import annotations

import copy

import pytest
from conftest import dev_config_values, stack_from

from components.config.models import ModelConfig
from stacks.offline import run_program
from stacks.stack_files import load_stack_file

NS = "llm-platform"
# What holds state nobody can recreate quickly: the cluster and its network and keys, the weights.
KEPT = {
    "aws": {"aws:eks/cluster:Cluster", "aws:ec2/vpc:Vpc", "aws:kms/key:Key", "aws:efs/fileSystem:FileSystem"},
    "gcp": {"gcp:container/cluster:Cluster", "gcp:compute/network:Network"},
    "azure": {"azure-native:containerservice:ManagedCluster", "azure-native:network:VirtualNetwork", "azure-native:storage:StorageAccount"},
}
WEIGHT_CLASS_PROVISIONERS = {"efs.csi.aws.com", "filestore.csi.storage.gke.io", "file.csi.azure.com"}
BLOCK_CLASS_PROVISIONERS = {"ebs.csi.aws.com", "pd.csi.storage.gke.io", "disk.csi.azure.com"}


def test_a_protected_stack_keeps_what_holds_state(run):
    cfg = load_stack_file(run.stack).validate()
    for token in KEPT[cfg.cloud]:
        resources = run.of_type(token)
        assert resources, (run.stack, token)
        for r in resources:
            assert r.protect == r.retain_on_delete == cfg.cluster.protect, (run.stack, token, r.name)
    (weights,) = [r.inputs for r in run.of_type("kubernetes:storage.k8s.io/v1:StorageClass") if r.inputs["provisioner"] in WEIGHT_CLASS_PROVISIONERS]
    assert weights["reclaimPolicy"] == ("Retain" if cfg.cluster.protect else "Delete")


def test_a_protected_stack_keeps_prometheus_series(run):
    """The operator's StatefulSets own Prometheus' claims, so no Pulumi resource can protect them:
    what would delete them (the release, its namespace) is protected, and their StorageClass
    retains the disk of a claim deleted anyway."""
    cfg = load_stack_file(run.stack).validate()
    assert cfg.addons.prometheus.enabled, run.stack
    (release,) = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "kube-prometheus-stack"]
    (namespace,) = [r for r in run.of_type("kubernetes:core/v1:Namespace") if r.inputs["metadata"]["name"] == release.inputs["namespace"]]
    assert release.protect is namespace.protect is cfg.cluster.protect, run.stack
    volume = release.inputs["values"]["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]
    (block,) = [
        r.inputs
        for r in run.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
        if r.inputs["metadata"]["name"] == volume["storageClassName"]
    ]
    assert block["provisioner"] in BLOCK_CLASS_PROVISIONERS, run.stack
    assert block["reclaimPolicy"] == ("Retain" if cfg.cluster.protect else "Delete"), run.stack


def test_every_production_stack_is_protected():
    for stack in ("prod", "prod-gke", "prod-aks"):
        assert load_stack_file(stack).validate().cluster.protect is True, stack


# Another valid value for each model field (dev's model), all of which keep the model's identity.
CHANGES = {
    "model": "Qwen/Qwen3-8B", "revision": "a" * 40, "servedModelName": "qwen-other", "image": "vllm/vllm-openai:v0.33.1",
    "maxModelLen": 8192, "gpuMemoryUtilization": 0.85, "maxNumSeqs": 16, "dtype": "bfloat16",
    "kvCacheDtype": "fp8", "capacity": "spot-allowed", "minReplicas": 2, "maxReplicas": 3, "drainSeconds": 90,
    "extraArgs": ["--enable-chunked-prefill"], "downloadTimeout": "2h", "loadTimeout": "30m", "quantization": "fp8",
    "weightLoader": "safetensors", "warmHeadroom": 1, "prefixCaching": False, "gated": False, "fitCheck": False,
    "scaling": {"waitingRequestsPerReplica": 8}, "access": {"allowedNamespaces": ["other-apps"]},
    "resources": {"cpu": "3", "memory": "14Gi"}, "gpusPerReplica": 2, "gpuType": "l40s",
}
# The model's identity (its claim is named after it), a field that needs another (architecture: a
# model outside the catalog), and one that needs routing, which dev does not turn on.
NOT_CHANGED = {"name", "namespace", "architecture", "priority"}


def _base() -> dict:
    """dev, plus a 4-GPU L4 pool and an L40S pool, so GPU type and count can change validly."""
    values = dev_config_values()
    pools = values[f"{NS}:gpuPools"]
    pools.append({**pools[0], "name": "l4-quad", "gpusPerNode": 4, "instanceTypes": ["g6.12xlarge"]})
    pools.append({**pools[0], "name": "l40s-spot", "gpuType": "l40s", "instanceTypes": ["g6e.xlarge"]})
    return values


def _weights(values) -> tuple[str, dict]:
    run = run_program(stack_from(values), preview=False)
    assert run.error is None, run.error
    (claim,) = run.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    return claim.urn, claim.inputs


def test_every_model_field_is_changed_below_or_named_as_identity():
    fields = {f.alias or n for n, f in ModelConfig.model_fields.items()}
    assert set(CHANGES) | NOT_CHANGED == fields and not set(CHANGES) & NOT_CHANGED


@pytest.mark.parametrize("key", sorted(CHANGES))
def test_changing_a_model_field_never_replaces_its_weight_volume(key):
    base = _base()
    changed = copy.deepcopy(base)
    model = changed[f"{NS}:models"][0]
    assert model.get(key) != CHANGES[key], key
    model[key] = CHANGES[key]
    if key == "gpusPerReplica":  # TP 2 on the 4-GPU pool only
        model["gpuType"] = "l4"
    assert _weights(changed) == _weights(base), key


def test_replacing_a_storage_class_never_replaces_a_claim(run):
    """A StorageClass is immutable, so a changed reclaim policy (turning `cluster.protect` on)
    replaces it, delete before replace (its name is fixed). Pulumi replaces the dependents of such a
    replace only through property dependencies (the engine's calculateDependentReplacements), so
    the claims name their class as a literal and only wait for it: the claims, and the weights and
    series on their volumes, stay."""
    assert any(r.property_dependencies for r in run.resources)  # recorded at all
    classes = {r.urn for r in run.of_type("kubernetes:storage.k8s.io/v1:StorageClass")}
    claims = run.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    assert classes and claims, run.stack
    for claim in claims:
        from_outputs = {urn for urns in claim.property_dependencies.values() for urn in urns}
        assert not from_outputs & classes, claim.urn
        assert claim.inputs["spec"]["storageClassName"] in {r.inputs["metadata"]["name"] for r in run.of_type("kubernetes:storage.k8s.io/v1:StorageClass")}
        assert set(claim.dependencies) & classes, claim.urn  # still created after its class
