"""Warm headroom: spare GPU slots held for a model by placeholder pods, so its next replica starts
on a node that is already up, with its GPU stack ready and the vLLM image pulled.

Each placeholder asks for exactly what one replica asks (GPUs, CPU, memory) on exactly the same
pools (affinity and tolerations), so the slot it holds fits the replica that takes it. It runs the
model's own image, which is how the node comes to hold the image. Its PriorityClass is below every
workload's (the default is 0) and never preempts anything; when a real replica has nowhere else to
go the scheduler evicts a placeholder at once (no grace period), and the evicted placeholder, now
Pending, makes Karpenter or the cluster autoscaler launch a node for it: the headroom refills in the
background, off the replica's critical path.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..config.models import ModelConfig
from ..scheduling import GpuPoolPlacement
from .pod import GPU_RESOURCE, affinity, locked_down, tolerations

PRIORITY_CLASS = "llm-platform-headroom"
PRIORITY = -10  # below the default 0 of every replica: a replica preempts it, nothing is preempted for it
PLACEHOLDER_UID = 65534  # nobody: the placeholder only sleeps


def headroom_name(model: ModelConfig) -> str:
    return f"{model.name}-headroom"


def headroom_labels(model: ModelConfig) -> dict[str, str]:
    """Not the model's pod labels: its Service, PodDisruptionBudget, autoscaler and InferencePool
    must never count a placeholder."""
    return {"app.kubernetes.io/name": "vllm-headroom", "app.kubernetes.io/instance": model.name, "app.kubernetes.io/part-of": "llm-platform"}


def priority_class(resource_name: str, provider: k8s.Provider, parent: pulumi.Resource) -> k8s.scheduling.v1.PriorityClass:
    return k8s.scheduling.v1.PriorityClass(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=PRIORITY_CLASS, labels={"app.kubernetes.io/part-of": "llm-platform"}),
        value=PRIORITY,
        global_default=False,
        preemption_policy="Never",
        description="Placeholders holding warm GPU slots for model replicas (llm-platform scaleOut.warmHeadroom): preempted by any workload.",
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )


def placeholder_pod_spec(
    model: ModelConfig, image: str, pools: list[GpuPoolPlacement], all_pools: tuple[GpuPoolPlacement, ...]
) -> k8s.core.v1.PodSpecArgs:
    gpus = str(model.gpus_per_replica)
    return k8s.core.v1.PodSpecArgs(
        priority_class_name=PRIORITY_CLASS,
        termination_grace_period_seconds=0,  # make room at once
        automount_service_account_token=False,
        tolerations=tolerations(model, all_pools),
        affinity=affinity(model, pools),
        security_context=k8s.core.v1.PodSecurityContextArgs(
            run_as_non_root=True, run_as_user=PLACEHOLDER_UID, run_as_group=PLACEHOLDER_UID, seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault")
        ),
        containers=[
            k8s.core.v1.ContainerArgs(
                name="placeholder",
                image=image,  # the node pulls the replica's image (from where the server pulls it) while it waits
                command=["sleep", "infinity"],
                resources=k8s.core.v1.ResourceRequirementsArgs(
                    requests={"cpu": model.cpu, "memory": model.memory, GPU_RESOURCE: gpus},
                    limits={"cpu": model.cpu, "memory": model.memory, GPU_RESOURCE: gpus},  # it sleeps: a limit costs nothing
                ),
                security_context=locked_down(),
            )
        ],
    )


def headroom_deployment(
    resource_name: str,
    model: ModelConfig,
    image: str,
    pools: list[GpuPoolPlacement],
    all_pools: tuple[GpuPoolPlacement, ...],
    opts: pulumi.ResourceOptions,
) -> k8s.apps.v1.Deployment:
    labels = headroom_labels(model)
    # Placeholders only sleep: nothing in, nothing out (also where the namespace has no default-deny).
    k8s.networking.v1.NetworkPolicy(
        f"{resource_name}-network-policy",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=headroom_name(model), namespace=model.namespace_name, labels=labels),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels), policy_types=["Ingress", "Egress"]),
        opts=opts,
    )
    return k8s.apps.v1.Deployment(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=headroom_name(model),
            namespace=model.namespace_name,
            labels=labels,
            # placeholders wait for GPU nodes by design: `pulumi up` must not wait for them
            annotations={"pulumi.com/skipAwait": "true"},
        ),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=model.headroom_slots,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels), spec=placeholder_pod_spec(model, image, pools, all_pools)
            ),
        ),
        opts=opts,
    )
