"""Bad stack config fails with the stack file and key path, in the program itself, before any
resource is registered; and the CLI reports it in one message without a traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from conftest import PROJECT_DIR, dev_config_values, load_stack_file, stack_from

from components.config.stack import ConfigError
from stacks.offline import run_program

NS = "llm-platform"
CUSTOM_CONFIG = "tests/fixtures/model_configs/acme-support-8b/config.json"  # Qwen3-8B's keys under another name
HYBRID_CONFIG = "tests/fixtures/model_configs/hybrid-linear-attention"  # a directory holding config.json


def _pool(values: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return values[f"{NS}:gpuPools"][i]


def _add_pool(values: dict[str, Any], **overrides: Any) -> None:
    values[f"{NS}:gpuPools"].append({**_pool(values), **overrides})


def _net(values: dict[str, Any]) -> dict[str, Any]:
    return values[f"{NS}:cluster"]["network"]


Mutation = Callable[[dict[str, Any]], None]

CASES: list[tuple[str, Mutation, str, str]] = [
    ("max below min", lambda v: _pool(v).update(minSize=2, maxSize=1), "gpuPools[0].maxSize", "must be ≥ minSize (2)"),
    ("desired outside bounds", lambda v: _pool(v).update(desiredSize=9), "gpuPools[0].desiredSize", "between minSize (0) and maxSize (3)"),
    ("second pool max below min", lambda v: _add_pool(v, name="b", minSize=3, maxSize=2), "gpuPools[1].maxSize", "must be ≥ minSize (3)"),
    ("duplicate pool names", lambda v: _add_pool(v), "gpuPools[1].name", "duplicate name 'l4-spot'"),
    ("misspelt top-level key", lambda v: v.update({f"{NS}:gpuPool": []}), "llm-platform:gpuPool", "unknown key (did you mean gpuPools?)"),
    ("misspelt nested key", lambda v: _pool(v).update(maxsize=3), "gpuPools[0].maxsize", "unknown key (did you mean maxSize?)"),
    ("instance type with another GPU", lambda v: _pool(v).update(instanceTypes=["g5.xlarge"]), "gpuPools[0].instanceTypes[0]", "carries a10g, not gpuType l4"),
    ("instance type with more GPUs", lambda v: _pool(v).update(instanceTypes=["g6.xlarge", "g6.12xlarge"]), "gpuPools[0].instanceTypes[1]", "4 GPU(s) per node, not gpusPerNode 1"),
    ("unknown instance type", lambda v: _pool(v).update(instanceTypes=["g6.xlarg"]), "gpuPools[0].instanceTypes[0]", "did you mean g6.xlarge"),
    ("unknown GPU type", lambda v: _pool(v).update(gpuType="l5"), "gpuPools[0].gpuType", "unknown GPU type 'l5'"),
    ("bad capacity type", lambda v: _pool(v).update(capacityType="preemptible"), "gpuPools[0].capacityType", "must be 'on-demand' or 'spot'"),
    ("reserved taint key", lambda v: _pool(v).update(taints=[{"key": "nvidia.com/gpu", "value": "x"}]), "gpuPools[0].taints[0].key", "set by the platform"),
    ("reserved label prefix", lambda v: _pool(v).update(labels={"llm-platform.io/pool": "x"}), "gpuPools[0].labels['llm-platform.io/pool']", "set by the platform"),
    ("no GPU pools", lambda v: v.update({f"{NS}:gpuPools": []}), "llm-platform:gpuPools", "at least 1 item"),
    ("GPU type in system pool", lambda v: v[f"{NS}:systemPool"].update(instanceTypes=["g6.xlarge"]), "systemPool.instanceTypes[0]", "CPU-only"),
    ("mixed architectures", lambda v: v[f"{NS}:systemPool"].update(instanceTypes=["m7i.large", "m7g.large"]), "systemPool.instanceTypes[1]", "one AMI architecture"),
    ("one zone", lambda v: _net(v).update(availabilityZones=["us-west-2a"]), "cluster.network.availabilityZones", "at least 2 zones"),
    ("zone of another region", lambda v: _net(v).update(availabilityZones=["us-west-2a", "us-east-1b"]), "cluster.network.availabilityZones[1]", "not in region us-west-2"),
    ("VPC too small", lambda v: _net(v).update(vpcCidr="10.0.0.0/24"), "cluster.network.vpcCidr", "must be /16 to /20"),
    ("existing VPC without subnets", lambda v: _net(v).update(vpcId="vpc-0123456789abcdef0"), "cluster.network.privateSubnets", "required with vpcId"),
    ("old Kubernetes", lambda v: v[f"{NS}:cluster"].update(kubernetesVersion="1.29"), "cluster.kubernetesVersion", "1.30 or newer"),
    ("Kubernetes not yet released", lambda v: v[f"{NS}:cluster"].update(kubernetesVersion="1.99"), "cluster.kubernetesVersion",
     "1.99 is not a Kubernetes release: the newest is 1.37"),
    ("missing cluster", lambda v: v.pop(f"{NS}:cluster"), "llm-platform:cluster", "required"),
    ("unsupported cloud", lambda v: v.update({f"{NS}:cloud": "oracle"}), "llm-platform:cloud", "must be 'aws', 'gcp' or 'azure'"),
    ("gcp section on an aws stack", lambda v: v.update({f"{NS}:gcp": {"project": "my-project-1", "zones": ["us-west1-a"], "network": {"network": "n", "subnetwork": "s", "podsRangeName": "p", "servicesRangeName": "v"}}}),
     "llm-platform:gcp", "only with cloud: gcp"),
    ("aws stack switched to gcp", lambda v: v.update({f"{NS}:cloud": "gcp", f"{NS}:region": "us-central1"}), "llm-platform:gcp", "required with cloud: gcp"),
    ("GCP region on aws", lambda v: v.update({f"{NS}:region": "us-central1"}), "llm-platform:region", "is not an AWS region"),
    ("GCP machine type on aws", lambda v: _pool(v).update(instanceTypes=["g2-standard-8"]), "gpuPools[0].instanceTypes[0]", "is not an AWS instance type (gcp names it)"),
    ("reserved tag", lambda v: v[f"{NS}:tags"].update({"aws:owner": "x"}), "tags['aws:owner']", "does not start with aws:"),
    ("tag Karpenter sets", lambda v: v[f"{NS}:tags"].update({"karpenter.sh/nodepool": "x"}), "tags['karpenter.sh/nodepool']", "set by EKS and Karpenter"),
    ("node group name too long", lambda v: (v[f"{NS}:cluster"].update(name="llm-" + "x" * 36), _pool(v).update(name="l4-spot-burst")),
     "gpuPools[0].name", "would be 66 characters, EKS allows 63"),
    ("model with an unknown GPU type", lambda v: v.update({f"{NS}:models": [{"name": "m", "model": "org/m", "gpuType": "h1000"}]}),
     "models[0].gpuType", "unknown GPU type 'h1000'"),
    ("model on a GPU no pool has", lambda v: v.update({f"{NS}:models": [{"name": "m", "model": "org/m", "gpuType": "h100"}]}), "models[0].gpuType", "no GPU pool provides h100"),
    ("model wider than a node", lambda v: v.update({f"{NS}:models": [{"name": "m", "model": "org/m", "gpuType": "l4", "gpusPerReplica": 2}]}), "models[0].gpusPerReplica", "at most 1 per node"),
    ("karpenter pool with another GPU", lambda v: _kpool(v).update(instanceTypes=["g5.xlarge"]),
     "addons.karpenter.nodePools[0].instanceTypes[0]", "carries a10g, not gpuType l4"),
    ("karpenter GPU limit below one node", lambda v: _kpool(v).update(maxGpus=0), "addons.karpenter.nodePools[0].maxGpus", "greater than or equal to 1"),
    ("karpenter limit below a node's GPUs", lambda v: _kpool(v).update(gpuType="l40s", gpusPerNode=4, instanceTypes=["g6e.12xlarge"], maxGpus=2),
     "addons.karpenter.nodePools[0].maxGpus", "must be ≥ gpusPerNode (4)"),
    ("karpenter bad duration", lambda v: _kpool(v).update(consolidateAfter="5 minutes"), "addons.karpenter.nodePools[0].consolidateAfter", "is not a duration such as 30s, 10m"),
    ("karpenter bad capacity", lambda v: _kpool(v).update(capacity="preemptible"), "addons.karpenter.nodePools[0].capacity", "spot-with-on-demand-fallback"),
    ("karpenter pool named like a managed pool", lambda v: _kpool(v).update(name="l4-spot"), "addons.karpenter.nodePools[0].name", "also a gpuPools name"),
    ("karpenter pools without karpenter", lambda v: _addons(v)["karpenter"].update(enabled=False), "addons.karpenter.nodePools", "karpenter is disabled"),
    ("bad AMI alias", lambda v: _addons(v)["karpenter"].update(amiAlias="al2@latest"), "addons.karpenter.amiAlias", "is not al2023@latest or al2023@vYYYYMMDD"),
    ("adapter without prometheus", lambda v: _addons(v).update(prometheus={"enabled": False}, prometheusAdapter={"enabled": True}),
     "addons.prometheusAdapter.enabled", "needs prometheus"),
    ("more prometheus replicas than zones", lambda v: _addons(v)["prometheus"].update(replicas=3), "addons.prometheus.replicas", "3 replicas but 2 zones"),
    ("bad retention", lambda v: _addons(v)["prometheus"].update(retention="2 days"), "addons.prometheus.retention", "is not a Prometheus duration"),
    ("misspelt add-on", lambda v: _addons(v).update(kedaa={"enabled": True}), "addons.kedaa", "did you mean keda?"),
    ("model max below min", lambda v: _model(v).update(minReplicas=3, maxReplicas=2), "models[0].maxReplicas", "must be ≥ minReplicas (3)"),
    ("TP not dividing a node's GPUs", lambda v: (_add_pool(v, name="l40s", gpuType="l40s", gpusPerNode=4, instanceTypes=["g6e.12xlarge"]),
                                                 _model(v).update(gpuType="l40s", gpusPerReplica=3)),
     "models[0].gpusPerReplica", "does not divide the GPUs per node of any l40s pool (l40s: 4)"),
    ("removed vLLM flag", lambda v: _model(v).update(extraArgs=["--swap-space", "4"]), "models[0].extraArgs[0]", "--swap-space was removed from vLLM before 0.33.0"),
    ("unknown vLLM flag", lambda v: _model(v).update(extraArgs=["--max-num-seq", "64"]), "models[0].extraArgs[0]", "--max-num-seq is not a vLLM 0.33.0 flag"),
    ("vLLM flag the platform sets", lambda v: _model(v).update(extraArgs=["--tensor-parallel-size=2"]), "models[0].extraArgs[0]", "set by the platform from gpusPerReplica"),
    ("model whose context does not fit its GPU", lambda v: _model(v).update(maxModelLen=262144),
     "models[0].maxModelLen", "needs"),
    ("model too big for its GPU", lambda v: _model(v).update(model="Qwen/Qwen3-32B", maxModelLen=8192),
     "models[0].maxModelLen", "Qwen/Qwen3-32B does not fit: no memory left for the KV cache"),
    ("model outside the planner's catalog", lambda v: _model(v).update(model="acme/support-8b"),
     "models[0].architecture", "acme/support-8b is not in the capacity planner's catalog"),
    ("local model path without its architecture", lambda v: _model(v).update(model="/custom/support-8b"),
     "models[0].architecture", "set architecture to its config.json"),
    ("architecture file that is not there", lambda v: _model(v).update(model="acme/support-8b", architecture="tests/fixtures/model_configs/missing"),
     "models[0].architecture", "cannot read"),
    ("architecture outside the project", lambda v: _model(v).update(model="acme/support-8b", architecture="/etc/config.json"),
     "models[0].architecture", "a path inside the project"),
    ("architecture the planner cannot model", lambda v: _model(v).update(model="acme/hybrid-3b", architecture=HYBRID_CONFIG),
     "models[0].architecture", "hybrid recurrent/linear-attention models keep a per-request state"),
    ("architecture with the check off", lambda v: _model(v).update(model="acme/support-8b", architecture=CUSTOM_CONFIG, fitCheck=False),
     "models[0].architecture", "unused with fitCheck: false"),
    ("custom architecture too big for its GPU", lambda v: _model(v).update(model="acme/support-8b", architecture=CUSTOM_CONFIG, maxModelLen=40960),
     "models[0].maxModelLen", "acme/support-8b does not fit: one request of max-model-len 40960 needs"),
    ("KV reservation vLLM cannot parse", lambda v: _model(v).update(extraArgs=["--kv-cache-memory-bytes", "8GiB"]),
     "models[0].extraArgs[0]", "--kv-cache-memory-bytes needs a whole number of bytes"),
    ("KV reservation the GPU cannot hold", lambda v: _model(v).update(extraArgs=["--kv-cache-memory-bytes=20G"]),
     "models[0].maxModelLen", "--kv-cache-memory-bytes asks for 20.00 GiB per GPU"),
    ("too big, with a flag the planner leaves out", lambda v: _model(v).update(model="Qwen/Qwen3-32B", extraArgs=["--enable-lora"]),
     "models[0].maxModelLen", "the prediction leaves out --enable-lora: LoRA adapter slots"),
    ("vLLM short flag the platform sets", lambda v: _model(v).update(extraArgs=["-tp", "2"]), "models[0].extraArgs[0]", "-tp (= --tensor-parallel-size)"),
    ("scale-to-zero where the stack forbids it", lambda v: v.update({f"{NS}:modelPolicy": {"allowScaleToZero": False}}),
     "models[0].scaling.scaleToZero", "this stack does not allow scale-to-zero"),
    ("scale-to-zero with nothing to wake it", lambda v: _model(v)["scaling"].pop("activeHours"), "models[0].scaling.activeHours", "required with scaleToZero"),
    ("gated model without HF token", lambda v: _model(v).update(gated=True), "models[0].gated", "needs llm-platform:hfToken"),
    # What an operator would refuse (the preflight), each at the key that produced it.
    ("active hours that end when they start", lambda v: _hours(v).update(end=_hours(v)["start"]), "models[0].scaling.activeHours.end",
     "start and end can not have exactly same time input (KEDA v2.20.2 cron scaler"),
    ("a cron KEDA cannot parse", lambda v: _hours(v).update(start="99 99 * * *"), "models[0].scaling.activeHours.start",
     "'99 99 * * *' is not a schedule KEDA's cron trigger reads (minute: end of range (99) above maximum (59)"),
    ("Sunday as 7, which KEDA's cron refuses", lambda v: _hours(v).update(end="0 19 * * 1-7"), "models[0].scaling.activeHours.end",
     "(day of week: end of range (7) above maximum (6)"),
    ("a time zone that does not exist", lambda v: _hours(v).update(timezone="Mars/Olympus"), "models[0].scaling.activeHours.timezone",
     "'Mars/Olympus' is not an IANA time zone"),
    ("polling interval above zero replicas", lambda v: _model(v).update(scaling={"pollingInterval": "30s"}), "models[0].scaling.pollingInterval",
     "only with scaleToZero"),
    ("Karpenter label on a NodePool", lambda v: _kpool(v).update(labels={"karpenter.sh/team": "ml"}),
     "addons.karpenter.nodePools[0].labels['karpenter.sh/team']", "set by Karpenter (its NodePool CRD refuses them)"),
    ("node label under karpenter.k8s.aws", lambda v: _pool(v).update(labels={"team.karpenter.k8s.aws/x": "ml"}),
     "gpuPools[0].labels['team.karpenter.k8s.aws/x']", "set by Karpenter"),
    ("tag Karpenter's EC2NodeClass refuses", lambda v: v[f"{NS}:tags"].update({"kubernetes.io/clustername": "x"}),
     "tags['kubernetes.io/clustername']", "set by EKS and Karpenter"),
    ("on-demand model, spot-only pools", lambda v: _model(v).update(capacity="on-demand"), "models[0].capacity", "is spot-only (l4-spot, l4-burst)"),
    ("model in a platform namespace", lambda v: _model(v).update(namespace="monitoring"), "models[0].namespace", "belongs to the platform"),
    ("models without KEDA", lambda v: _addons(v)["keda"].update(enabled=False), "addons.keda.enabled", "must be true when models are set"),
    ("models without shared storage", lambda v: _addons(v)["efsCsi"].update(enabled=False), "addons.efsCsi.enabled", "must be true when models are set"),
    ("image of another vLLM", lambda v: _model(v).update(image="vllm/vllm-openai:v0.10.1"), "models[0].image", "tag v0.10.1 is not vLLM 0.33.x"),
    # what containerd refuses as InvalidImageName on the GPU node, after it is billed
    ("image with an upper-case path", lambda v: _model(v).update(image="VLLM/vllm-openai:v0.33.0"), "models[0].image", "is not an image reference"),
    ("image with an empty tag", lambda v: _model(v).update(image="vllm/vllm-openai:"), "models[0].image", "is not an image reference"),
    ("image with two colons", lambda v: _model(v).update(image="vllm/vllm-openai::v0.33.0"), "models[0].image", "is not an image reference"),
    ("image tag past 128 characters", lambda v: _model(v).update(image="vllm/vllm-openai:" + "v" * 129), "models[0].image", "is not an image reference"),
    ("image name past 255 characters", lambda v: _model(v).update(image="r.example.com/" + "a" * 250 + ":v0.33.0"), "models[0].image",
     "registries take at most 255"),
    ("image without a tag", lambda v: _model(v).update(image="vllm/vllm-openai"), "models[0].image", "no tag means latest, which moves"),
    ("image at latest", lambda v: _model(v).update(image="docker.io/vllm/vllm-openai:latest"), "models[0].image", "latest, which moves"),
    ("/dev/shm as large as the pod", lambda v: _model(v).update(resources={"memory": "4Gi", "shmSize": "4Gi"}), "models[0].resources.shmSize",
     "must be less than the pod memory (4Gi)"),
    ("model that is neither id nor path", lambda v: _model(v).update(model="llama"), "models[0].model", "is not a Hugging Face id"),
    ("bad scaling target", lambda v: _model(v)["scaling"].update(kvCacheUsage=1.5), "models[0].scaling.kvCacheUsage", "less than or equal to 0.95"),
    ("MIG on a GPU without MIG", lambda v: _pool(v).update(migProfile="all-1g.10gb"), "gpuPools[0].migProfile", "l4 does not support MIG"),
    ("unknown MIG profile", lambda v: _pool(v).update(migProfile="half"), "gpuPools[0].migProfile", "is not a MIG profile such as all-1g.10gb"),
    # Hardening (issue 21): what a careful reviewer tried, each refused at its key in plain words.
    ("a deadline beyond int32 seconds", lambda v: _model(v).update(loadTimeout="9999999999h"), "models[0].loadTimeout",
     "longer than Kubernetes can store"),
    ("a zero download deadline", lambda v: _model(v).update(downloadTimeout="0s"), "models[0].downloadTimeout", "must be longer than 0s"),
    ("words for a cron", lambda v: _hours(v).update(start="not a cron at all"), "models[0].scaling.activeHours.start",
     "is not a schedule KEDA's cron trigger reads"),
    ("another script's digit in a region", lambda v: v.update({f"{NS}:region": "us-west-\u0662"}), "llm-platform:region", "is not a cloud region"),
    ("another script's digits in a Kubernetes version", lambda v: v[f"{NS}:cluster"].update(kubernetesVersion="1.\u0663\u0665"),
     "cluster.kubernetesVersion", "is not a Kubernetes minor version"),
    ("another script's digit in a duration", lambda v: _model(v)["scaling"].update(idleBeforeScaleToZero="1\u0665m"),
     "models[0].scaling.idleBeforeScaleToZero", "is not a duration"),
    ("another script's digit in a retention", lambda v: _addons(v)["prometheus"].update(retention="1\u0665d"),
     "addons.prometheus.retention", "is not a Prometheus duration"),
    ("Kubernetes version read as a number", lambda v: v[f"{NS}:cluster"].update(kubernetesVersion=1.3),
     "cluster.kubernetesVersion", "put it in quotes (YAML read it as the number 1.3)"),
    ("label name longer than 63", lambda v: _pool(v).update(labels={"team/" + "a" * 64: "x"}),
     "gpuPools[0].labels['team/" + "a" * 64 + "']", "the name part of a label key is at most 63 characters"),
    ("label prefix longer than 253", lambda v: _pool(v).update(labels={"a" * 250 + ".com/x": "x"}),
     "gpuPools[0].labels['" + "a" * 250 + ".com/x']", "the prefix of a label key is at most 253 characters"),
    ("label value longer than 63", lambda v: _pool(v).update(labels={"team": "a" * 64}),
     "gpuPools[0].labels.team", "too long (64 characters, at most 63)"),
    ("true for a count", lambda v: _pool(v).update(maxSize=True), "gpuPools[0].maxSize", "must be a number, not true"),
    ("infinity for a fraction", lambda v: _model(v)["scaling"].update(kvCacheUsage=float("inf")), "models[0].scaling.kvCacheUsage", "must be a finite number"),
    ("a value for a yes/no vLLM flag", lambda v: _model(v).update(extraArgs=["--enforce-eager=maybe"]), "models[0].extraArgs[0]",
     "--enforce-eager is a yes/no switch and takes no value (got 'maybe')"),
    ("a word after a yes/no vLLM flag", lambda v: _model(v).update(extraArgs=["--enforce-eager", "true"]), "models[0].extraArgs[1]",
     "'true' follows --enforce-eager, a yes/no switch"),
    ("a vLLM flag missing its value", lambda v: _model(v).update(extraArgs=["--max-num-batched-tokens", "--enforce-eager"]), "models[0].extraArgs[0]",
     "--max-num-batched-tokens needs a value"),
    ("pool name too long, in words", lambda v: _pool(v).update(name="a" * 40), "gpuPools[0].name", "too long (40 characters, at most 30): expected a pool name"),
    ("a pool that is not a map", lambda v: v[f"{NS}:gpuPools"].__setitem__(0, "l4"), "llm-platform:gpuPools[0]", "must be a map with keys such as"),
    ("more replicas than the pools hold", lambda v: _model(v).update(maxReplicas=8), "models[0].maxReplicas",
     "8 replicas of 1 l4 GPU(s) need 8 GPUs, but the pools this model may use hold at most 7 (l4-spot: 3, l4-burst: 4)"),
    ("warm slots count against the pools", lambda v: _model(v).update(maxReplicas=7, warmHeadroom=1), "models[0].maxReplicas",
     "7 replicas plus 1 warm slot(s) of 1 l4 GPU(s) need 8 GPUs"),
    ("a scale-down window shorter than a start from zero", lambda v: _model(v)["scaling"].update(scaleDownStabilization="1m"),
     "models[0].scaling.scaleDownStabilization", "1m (the HPA's scale-down window) is shorter than this model's start from zero in the scale-out budget"),
    ("a cooldown shorter than a start from zero", lambda v: _model(v)["scaling"].update(idleBeforeScaleToZero="2m"),
     "models[0].scaling.idleBeforeScaleToZero", "2m (KEDA's cooldown) is shorter than this model's start from zero"),
    ("a duration or Never, neither", lambda v: _addons(v)["karpenter"]["nodePools"][0].update(expireAfter="forever"),
     "addons.karpenter.nodePools[0].expireAfter", "is not a duration such as 30s, 10m, 720h or 1h30m; or must be 'Never'"),
]


def _addons(values: dict[str, Any]) -> dict[str, Any]:
    return values[f"{NS}:addons"]


def _model(values: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return values[f"{NS}:models"][i]


def _hours(values: dict[str, Any]) -> dict[str, Any]:
    return _model(values)["scaling"]["activeHours"]


def _kpool(values: dict[str, Any]) -> dict[str, Any]:
    return _addons(values)["karpenter"]["nodePools"][0]


@pytest.mark.parametrize("mutate, path, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_config_fails_in_the_program_with_key_path_and_registers_nothing(mutate, path, message):
    values = dev_config_values()
    mutate(values)
    run = run_program(stack_from(values), preview=True)
    assert isinstance(run.error, ConfigError), run.error
    matching = [line for line in str(run.error).splitlines() if line.startswith("Pulumi.dev.yaml: ") and path in line]
    assert matching, str(run.error)
    assert any(message in line for line in matching), str(run.error)
    assert [r.type for r in run.resources] == ["pulumi:pulumi:Stack"]


def _gke_values() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_DIR / "Pulumi.dev-gke.yaml").read_text())["config"]


def _gcp(values: dict[str, Any]) -> dict[str, Any]:
    return values[f"{NS}:gcp"]


# The same mistakes and the GCP-only ones, on dev-gke's config.
GCP_CASES: list[tuple[str, Mutation, str, str]] = [
    ("AWS instance type on gcp", lambda v: _pool(v).update(instanceTypes=["g6.xlarge"]), "gpuPools[0].instanceTypes[0]", "is not a GCP machine type (aws names it)"),
    ("GPU GCP does not offer", lambda v: _pool(v).update(gpuType="l40s", instanceTypes=["g6e.xlarge"]), "gpuPools[0].gpuType", "GKE offers no l40s machine type"),
    ("machine type with another GPU", lambda v: _pool(v).update(instanceTypes=["a2-highgpu-1g"]), "gpuPools[0].instanceTypes[0]", "carries a100-40gb, not gpuType l4"),
    ("machine type with more GPUs", lambda v: _pool(v).update(instanceTypes=["g2-standard-24"]), "gpuPools[0].instanceTypes[0]", "2 GPU(s) per node, not gpusPerNode 1"),
    ("unknown machine type", lambda v: _pool(v).update(instanceTypes=["g2-standard-6"]), "gpuPools[0].instanceTypes[0]", "not a known GPU instance type"),
    ("two machine types in a pool", lambda v: _pool(v).update(instanceTypes=["g2-standard-8", "g2-standard-16"]), "gpuPools[0].instanceTypes", "exactly one machine type"),
    ("zone without the GPU", lambda v: _gcp(v).update(zones=["us-central1-f"]), "gcp.zones[0]", "nvidia-l4 is not offered in us-central1-f"),
    ("pool zone without the GPU", lambda v: _pool(v).update(zones=["us-central1-a", "us-central1-f"]), "gpuPools[0].zones[1]", "nvidia-l4 is not offered in us-central1-f"),
    ("zone of another region", lambda v: _gcp(v).update(zones=["us-east4-a"]), "gcp.zones[0]", "not in region us-central1"),
    ("bad zone", lambda v: _gcp(v).update(zones=["us-central1a"]), "gcp.zones[0]", "is not a GCP zone"),
    ("AWS region on gcp", lambda v: v.update({f"{NS}:region": "us-west-2"}), "llm-platform:region", "is not a GCP region"),
    ("missing gcp section", lambda v: v.pop(f"{NS}:gcp"), "llm-platform:gcp", "required with cloud: gcp"),
    ("missing project", lambda v: _gcp(v).pop("project"), "gcp.project", "required"),
    ("bad project id", lambda v: _gcp(v).update(project="My_Project"), "gcp.project", "is not a GCP project id"),
    ("AWS network on gcp", lambda v: v[f"{NS}:cluster"].update(network={"vpcCidr": "10.0.0.0/16", "availabilityZones": ["us-west-2a", "us-west-2b"]}),
     "cluster.network", "a GKE stack sets llm-platform:gcp.network"),
    ("overlapping ranges", lambda v: _gcp(v)["network"].update(podsCidr="10.60.0.0/14"), "gcp.network.podsCidr", "overlaps subnetCidr"),
    ("missing pods range", lambda v: _gcp(v)["network"].pop("podsCidr"), "gcp.network.podsCidr", "required for a new VPC"),
    ("existing network without ranges", lambda v: _gcp(v).update(network={"network": "shared-vpc"}), "gcp.network.subnetwork", "required with network"),
    ("Filestore below the tier minimum", lambda v: _gcp(v)["filestore"].update(tier="basic-ssd", capacityGib=1024), "gcp.filestore.capacityGib", "at least 2560 GiB"),
    ("Filestore off with models", lambda v: _gcp(v)["filestore"].update(enabled=False), "gcp.filestore.enabled", "must be true when models are set"),
    ("bad Filestore tier", lambda v: _gcp(v)["filestore"].update(tier="premium"), "gcp.filestore.tier", "'zonal'"),
    ("Karpenter on GKE", lambda v: v[f"{NS}:addons"].update(karpenter={"replicas": 1}), "addons.karpenter.enabled", "Karpenter runs on EKS only"),
    ("EFS on GKE", lambda v: v[f"{NS}:addons"].update(efsCsi={"enabled": True}), "addons.efsCsi.enabled", "on GKE model weights live on Filestore"),
    ("GPU Operator on GKE", lambda v: v[f"{NS}:addons"].update(gpuOperator={"enabled": True}), "addons.gpuOperator.enabled", "its own device plugin"),
    ("MIG on GKE", lambda v: _pool(v).update(gpuType="a100-80gb", instanceTypes=["a2-ultragpu-1g"], migProfile="all-1g.10gb"), "gpuPools[0].migProfile", "not on GKE yet"),
    ("AWS admins on GKE", lambda v: v[f"{NS}:cluster"].update(adminPrincipalArns=["arn:aws:iam::123456789012:role/admins"]), "cluster.adminPrincipalArns", "AWS IAM principals"),
    ("tag that is no GCP label", lambda v: v[f"{NS}:tags"].update({"Cost-Center": "ML"}), "tags['Cost-Center']", "a GCP label key starts with a lower-case letter"),
    ("AWS system machine type on gcp", lambda v: v[f"{NS}:systemPool"].update(instanceTypes=["m7i.large"]), "systemPool.instanceTypes[0]", "is not a GCP machine type"),
    ("NAP GPU limit of an unknown GPU", lambda v: _gcp(v).update(nodeAutoProvisioning={"maxCpu": 8, "maxMemoryGib": 32, "maxGpus": {"l5": 1}}),
     "gcp.nodeAutoProvisioning.maxGpus.l5", "unknown GPU type 'l5'"),
    ("more Prometheus replicas than zones", lambda v: v[f"{NS}:addons"]["prometheus"].update(replicas=2), "addons.prometheus.replicas", "2 replicas but 1 zones"),
]


@pytest.mark.parametrize("mutate, path, message", [c[1:] for c in GCP_CASES], ids=[c[0] for c in GCP_CASES])
def test_invalid_gke_config_fails_in_the_program_with_key_path_and_registers_nothing(mutate, path, message):
    values = _gke_values()
    mutate(values)
    run = run_program(stack_from(values, "dev-gke"), preview=True)
    assert isinstance(run.error, ConfigError), run.error
    matching = [line for line in str(run.error).splitlines() if line.startswith("Pulumi.dev-gke.yaml: ") and path in line]
    assert matching, str(run.error)
    assert any(message in line for line in matching), str(run.error)
    assert [r.type for r in run.resources] == ["pulumi:pulumi:Stack"]


def _aks_values() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_DIR / "Pulumi.dev-aks.yaml").read_text())["config"]


def _azure(values: dict[str, Any]) -> dict[str, Any]:
    return values[f"{NS}:azure"]


AZURE_CASES: list[tuple[str, Mutation, str, str]] = [
    ("GCP machine type on azure", lambda v: _pool(v).update(instanceTypes=["g2-standard-8"], gpuType="l4"), "gpuPools[0].gpuType", "Azure offers no l4 VM size"),
    ("size with another GPU", lambda v: _pool(v).update(instanceTypes=["Standard_NC24ads_A100_v4"]), "gpuPools[0].instanceTypes[0]", "carries a100-80gb, not gpuType t4"),
    ("size with more GPUs", lambda v: _pool(v).update(instanceTypes=["Standard_NC64as_T4_v3"]), "gpuPools[0].instanceTypes[0]", "4 GPU(s) per node, not gpusPerNode 1"),
    ("unknown size", lambda v: _pool(v).update(instanceTypes=["Standard_NC4as_T4_v9"]), "gpuPools[0].instanceTypes[0]", "did you mean Standard_NC4as_T4_v3"),
    ("two sizes in a pool", lambda v: _pool(v).update(instanceTypes=["Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3"]), "gpuPools[0].instanceTypes", "exactly one VM size"),
    ("GPU Azure does not offer", lambda v: _pool(v).update(gpuType="l40s", instanceTypes=["g6e.xlarge"]), "gpuPools[0].gpuType", "Azure offers no l40s VM size"),
    ("agent pool names collide", lambda v: _add_pool(v, name="t4spot"), "gpuPools[1].name", "its AKS agent pool name would be 't4spot'"),
    ("agent pool named like the system pool", lambda v: _pool(v).update(name="sys-tem"), "gpuPools[0].name", "as the system pool's"),
    ("AWS region on azure", lambda v: v.update({f"{NS}:region": "us-east-1"}), "llm-platform:region", "is not an Azure region"),
    ("missing azure section", lambda v: v.pop(f"{NS}:azure"), "llm-platform:azure", "required with cloud: azure"),
    ("gcp section on azure", lambda v: v.update({f"{NS}:gcp": {"project": "my-project-1", "zones": ["us-central1-a"], "network": {"network": "n", "subnetwork": "s", "podsRangeName": "p", "servicesRangeName": "v"}}}),
     "llm-platform:gcp", "only with cloud: gcp"),
    ("bad zone", lambda v: _azure(v).update(zones=["4"]), "azure.zones[0]", "must be '1', '2' or '3'"),
    ("subnet outside the VNet", lambda v: _azure(v)["network"].update(nodeSubnetCidr="10.81.0.0/20"), "azure.network.nodeSubnetCidr", "must lie inside vnetCidr"),
    ("pod range overlapping the VNet", lambda v: _azure(v)["network"].update(podCidr="10.80.0.0/14"), "azure.network.podCidr", "overlaps vnetCidr"),
    ("existing subnet that is no resource id", lambda v: _azure(v).update(network={"subnetId": "aks-subnet"}), "azure.network.subnetId", "is not a subnet resource id"),
    ("share below the premium minimum", lambda v: _azure(v)["files"].update(shareGib=50), "azure.files.shareGib", "greater than or equal to 100"),
    ("Azure Files off with models", lambda v: _azure(v)["files"].update(enabled=False), "azure.files.enabled", "must be true when models are set"),
    ("Karpenter on AKS", lambda v: v[f"{NS}:addons"].update(karpenter={"replicas": 1}), "addons.karpenter.enabled", "our Karpenter is EKS's"),
    ("EFS on AKS", lambda v: v[f"{NS}:addons"].update(efsCsi={"enabled": True}), "addons.efsCsi.enabled", "on AKS model weights live on Azure Files NFS"),
    ("MIG on AKS", lambda v: _pool(v).update(gpuType="a100-80gb", instanceTypes=["Standard_NC24ads_A100_v4"], migProfile="all-1g.10gb"), "gpuPools[0].migProfile", "not on AKS yet"),
    ("GKE pool zones on AKS", lambda v: _pool(v).update(zones=["us-central1-a"]), "gpuPools[0].zones", "GKE only"),
    ("AWS system size on azure", lambda v: v[f"{NS}:systemPool"].update(instanceTypes=["m7i.large"]), "systemPool.instanceTypes[0]", "is not an Azure VM size"),
    ("tag with a slash", lambda v: v[f"{NS}:tags"].update({"team/owner": "ml"}), "tags['team/owner']", "without < > % &"),
]


@pytest.mark.parametrize("mutate, path, message", [c[1:] for c in AZURE_CASES], ids=[c[0] for c in AZURE_CASES])
def test_invalid_aks_config_fails_in_the_program_with_key_path_and_registers_nothing(mutate, path, message):
    values = _aks_values()
    mutate(values)
    run = run_program(stack_from(values, "dev-aks"), preview=True)
    assert isinstance(run.error, ConfigError), run.error
    matching = [line for line in str(run.error).splitlines() if line.startswith("Pulumi.dev-aks.yaml: ") and path in line]
    assert matching, str(run.error)
    assert any(message in line for line in matching), str(run.error)
    assert [r.type for r in run.resources] == ["pulumi:pulumi:Stack"]


def test_gke_defaults_turn_the_aws_only_add_ons_off():
    cfg = stack_from(_gke_values(), "dev-gke").validate()
    assert not cfg.addons.karpenter.enabled and not cfg.addons.efs_csi.enabled and not cfg.addons.gpu_operator.enabled
    values = _gke_values()
    del values[f"{NS}:systemPool"]
    assert stack_from(values, "dev-gke").validate().system_pool.instance_types == ["e2-standard-4"]


def test_every_problem_is_listed_in_one_error():
    values = dev_config_values()
    _pool(values).update(minSize=2, maxSize=1)
    _net(values).update(availabilityZones=["us-west-2a"])
    values[f"{NS}:systemPool"].update(diskSizeGib=5)
    run = run_program(stack_from(values), preview=True)
    assert isinstance(run.error, ConfigError)
    paths = [path for path, _ in run.error.problems]
    assert paths == [
        "llm-platform:cluster.network.availabilityZones",
        "llm-platform:systemPool.diskSizeGib",
        "llm-platform:gpuPools[0].maxSize",
    ]


def test_valid_variants_are_accepted():
    values = dev_config_values()
    _net(values).clear()
    _net(values).update(
        vpcId="vpc-0123456789abcdef0",
        privateSubnets=[{"id": "subnet-0123456789abcdef0", "zone": "us-west-2a"}, {"id": "subnet-0123456789abcdef1", "zone": "us-west-2b"}],
    )
    values[f"{NS}:models"] = [{"name": "llama", "model": "meta-llama/Llama-3.1-8B-Instruct", "gpuType": "l4", "capacity": "spot-allowed", "maxModelLen": 8192}]
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    assert not run.of_type("llm-platform:network:AwsVpc")
    (cluster,) = run.of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["subnetIds"] == ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]


def test_the_kubernetes_minor_after_the_newest_known_is_accepted():
    """It may be out by now (one every four months); the one after it cannot be."""
    from components.catalog.kubernetes import newest_release

    newest = newest_release()
    for stack in ("dev", "prod", "dev-gke", "prod-gke", "dev-aks", "prod-aks"):
        assert int(load_stack_file(stack).validate().cluster.kubernetes_version.split(".")[1]) <= newest.minor, stack
    values = dev_config_values()
    values[f"{NS}:cluster"]["kubernetesVersion"] = f"1.{newest.next_minor}"
    assert run_program(stack_from(values), preview=True).error is None
    values[f"{NS}:cluster"]["kubernetesVersion"] = f"1.{newest.next_minor + 1}"
    assert isinstance(run_program(stack_from(values), preview=True).error, ConfigError)


def test_credentials_must_be_stored_encrypted():
    values = dev_config_values()
    values[f"{NS}:hfToken"] = "hf_plaintext_token"
    run = run_program(stack_from(values), preview=True)
    assert isinstance(run.error, ConfigError)
    assert "Pulumi.dev.yaml: llm-platform:hfToken: a credential: store it with `pulumi config set --secret`" in str(run.error)
    assert "hf_plaintext_token" not in str(run.error)
    assert [r.type for r in run.resources] == ["pulumi:pulumi:Stack"]


def test_encrypted_credential_is_accepted_and_never_printed():
    values = dev_config_values()
    values[f"{NS}:hfToken"] = {"secure": "v1:AAAAencryptedblob"}
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    assert "offline-placeholder-secret" not in repr(run.resources) + repr(run.outputs)


def test_encrypted_credential_passes_the_cli_validation_too():
    """`stacks validate` and `plan` check the config before the program runs: an encrypted
    `{secure: …}` value is the string the engine would decrypt, not a map."""
    values = dev_config_values()
    values[f"{NS}:hfToken"] = {"secure": "v1:AAAAencryptedblob"}
    values[f"{NS}:models"][0]["gated"] = True
    cfg, _ = stack_from(values).check()
    assert cfg.models[0].gated


@pytest.mark.parametrize(("token", "words"), [("", "is empty"), ("hf_abc\n", "newline"), ("hf_" + "x" * 300, "characters long")])
def test_a_decrypted_token_that_cannot_work_is_a_config_error(token, words):
    """What the engine hands the program is the decrypted value: an empty or pasted-with-a-newline
    token is refused at preview, by key, without the value, before any GPU node downloads."""
    from components.config.stack import parse_stack_config

    raw = {k.removeprefix(f"{NS}:"): v for k, v in dev_config_values().items() if k.startswith(f"{NS}:")}
    raw["hfToken"] = token
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(raw, "Pulumi.dev.yaml", secret_keys={"hfToken"})
    ((key, message),) = raised.value.problems
    assert key == f"{NS}:hfToken" and words in message and (not token.strip() or token.strip() not in str(raised.value))


def test_admin_principals_get_access_entries_with_cluster_admin():
    values = dev_config_values()
    arns = ["arn:aws:iam::123456789012:role/platform-admins", "arn:aws:iam::123456789012:role/oncall"]
    values[f"{NS}:cluster"]["adminPrincipalArns"] = arns
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    entries = {r.inputs["principalArn"]: r for r in run.of_type("aws:eks/accessEntry:AccessEntry") if r.inputs["type"] == "STANDARD"}
    associations = {r.inputs["principalArn"]: r for r in run.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")}
    assert set(entries) == set(associations) == set(arns)
    for arn in arns:
        assert associations[arn].inputs["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        assert associations[arn].inputs["accessScope"] == {"type": "cluster"}
        assert entries[arn].urn in associations[arn].dependencies
    # names come from the ARN, not the list position: reordering replaces nothing
    values[f"{NS}:cluster"]["adminPrincipalArns"] = list(reversed(arns))
    reordered = run_program(stack_from(values), preview=True)
    assert {r.urn for r in reordered.resources} == {r.urn for r in run.resources}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stacks", *args], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)


def test_cli_reports_bad_config_in_one_message_without_traceback(tmp_path):
    values = dev_config_values()
    _pool(values).update(minSize=2, maxSize=1)
    (tmp_path / "Pulumi.broken.yaml").write_text(yaml.safe_dump({"config": values}))
    result = _cli("plan", "broken", "--stack-dir", str(tmp_path))
    assert result.returncode == 2
    assert "Pulumi.broken.yaml: llm-platform:gpuPools[0].maxSize: must be ≥ minSize (2)" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_cli_unknown_stack_lists_the_available_ones():
    result = _cli("plan", "staging")
    assert result.returncode == 2
    assert "no stack named 'staging'" in result.stderr and "available stacks: dev, dev-aks, dev-gke, prod, prod-aks, prod-gke" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_rejects_unreadable_yaml(tmp_path):
    (tmp_path / "Pulumi.bad.yaml").write_text("config: [unclosed\n")
    result = _cli("validate", "bad", "--stack-dir", str(tmp_path))
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "Traceback" not in result.stderr


def test_cli_rejects_a_stack_file_that_is_not_utf8(tmp_path):
    (tmp_path / "Pulumi.latin.yaml").write_bytes("config:\n  llm-platform:region: us-west-2\n  # caf\xe9\n".encode("latin-1"))
    result = _cli("validate", "latin", "--stack-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "error: Pulumi.latin.yaml: not UTF-8 text (byte 0xe9 at offset 48): Pulumi reads stack files as UTF-8; save it so"
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_rejects_a_key_given_twice_at_its_key_path(tmp_path):
    text = yaml.safe_dump({"config": dev_config_values()}, sort_keys=False)
    text = text.replace("    maxSize: 3\n", "    maxSize: 3\n    maxSize: 300\n", 1)
    (tmp_path / "Pulumi.twice.yaml").write_text(text)
    result = _cli("plan", "twice", "--stack-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    line = text.splitlines().index("    maxSize: 300") + 1
    assert result.stderr.strip().splitlines() == [
        f"error: Pulumi.twice.yaml: llm-platform:systemPool.maxSize: given twice in one map (lines {line - 1} and {line}); YAML would keep only the last"
    ]


def test_a_stack_that_pins_revisions_refuses_a_branch():
    values = dev_config_values()
    values[f"{NS}:modelPolicy"]["requirePinnedRevisions"] = True
    with pytest.raises(ConfigError) as refused:
        stack_from(values).validate()
    assert refused.value.problems == [(
        f"{NS}:models[0].revision",
        "'main' is not a commit sha, and this stack pins them (llm-platform:modelPolicy.requirePinnedRevisions): "
        "take the 40-character sha of the commit to serve from huggingface.co/Qwen/Qwen3-4B-Instruct-2507/commits/main",
    )]
    _model(values)["revision"] = "a" * 40
    assert stack_from(values).validate().models[0].revision == "a" * 40


def test_a_stack_that_pins_images_refuses_a_tag():
    values = dev_config_values()
    values[f"{NS}:modelPolicy"]["requirePinnedImages"] = True
    image = _model(values)["image"] = "vllm/vllm-openai:v0.33.0"
    with pytest.raises(ConfigError) as refused:
        stack_from(values).validate()
    assert refused.value.problems == [(
        f"{NS}:models[0].image",
        f"{image!r} names no digest, and this stack pins images (llm-platform:modelPolicy.requirePinnedImages): "
        f"give it as {image}@sha256:<digest> (`crane digest {image}` prints it)",
    )]
    _model(values)["image"] = f"{image}@sha256:{'0' * 64}"
    assert stack_from(values).validate().models[0].image.endswith("@sha256:" + "0" * 64)


@pytest.mark.parametrize("stack", [s for s in sorted(p.name[7:-5] for p in PROJECT_DIR.glob("Pulumi.prod*.yaml"))])
def test_production_stacks_serve_pinned_weights(stack):
    """CI deploys every prod* stack in the production environment: their weights are commits."""
    config = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert config[f"{NS}:modelPolicy"]["requirePinnedRevisions"] is True
    assert all(len(m["revision"]) == 40 for m in config[f"{NS}:models"])


@pytest.mark.parametrize("image", [
    "vllm/vllm-openai:v0.33.0",
    "docker.io/vllm/vllm-openai:v0.33.0-cu129",
    "us-central1-docker.pkg.dev/my-project/docker-hub/vllm/vllm-openai:v0.33.0",
    "registry.internal:5000/ml/vllm-openai:v0.33.0@sha256:" + "a" * 64,
    "localhost:5000/vllm-openai:v0.33.0",
    "vllm/vllm-openai@sha256:" + "b" * 64,  # a digest alone names the bytes: no tag needed
])
def test_image_references_containerd_accepts_are_accepted(image):
    values = dev_config_values()
    _model(values)["image"] = image
    assert stack_from(values).validate().models[0].image == image


def test_a_publicly_routable_network_range_is_a_warning_not_an_error():
    """A typo such as 8.8.0.0/16 for 10.8.0.0/16 would hide those public hosts from the cluster,
    but organisations may own public blocks: warned at preview, never refused."""
    values = dev_config_values()
    values[f"{NS}:cluster"]["network"]["vpcCidr"] = "8.8.0.0/16"
    _, warnings = stack_from(values).check()
    assert [key for key, message in warnings if "publicly routable" in message] == [f"{NS}:cluster.network.vpcCidr"]


@pytest.mark.parametrize("stack", [p.name[7:-5] for p in sorted(PROJECT_DIR.glob("Pulumi.*.yaml"))])
def test_the_stacks_use_private_ranges(stack):
    _, warnings = load_stack_file(stack).check()
    assert not [key for key, message in warnings if "publicly routable" in message]
