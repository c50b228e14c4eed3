"""Pre-pull of the vLLM image onto GPU nodes as they join, where the cloud asks for it (AKS).

A new node is Ready a minute or more before its GPUs are allocatable (the GPU Operator rolls out its
driver validation and device plugin first), and a model pod is bound only then. A DaemonSet pod
needs no GPU, so it lands at Ready and its init container starts the image pull at once: by the time
the replica is bound the pull is that much further on, and kubelet joins it instead of starting over.
On every node already up it keeps the image present, so a replica placed there never waits for it.

EKS (SOCI parallel pull) and GKE (image streaming) make the pull itself fast instead, so there the
cluster contract does not ask for this.
"""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_kubernetes as k8s

from ..catalog.images import catalog_image
from ..releases import addon_namespace
from ..scheduling import LABEL_GPU_TYPE, GpuPoolPlacement
from .pod import locked_down
from .service import default_deny

NAMESPACE = "llm-platform-images"
# 300 kB: what the pod runs once the image is on the node. By its multi-arch index digest (the
# catalog, components/catalog/data/images.yaml): a re-pushed tag cannot change what every GPU node runs.
PAUSE_IMAGE = catalog_image("pause").reference
PREPULL_UID = 65532


def _digest(image: str) -> str:
    return hashlib.sha256(image.encode()).hexdigest()[:10]


def prepull_name(image: str) -> str:
    return f"prepull-{_digest(image)}"


def _tolerations(pools: tuple[GpuPoolPlacement, ...]) -> list[k8s.core.v1.TolerationArgs]:
    taints = dict.fromkeys(t for p in pools for t in p.taints)
    return [k8s.core.v1.TolerationArgs(key=t.key, operator="Equal", value=t.value, effect=t.effect) for t in taints]


def prepull_spec(image: str, gpu_types: list[str], pools: tuple[GpuPoolPlacement, ...]) -> k8s.apps.v1.DaemonSetSpecArgs:
    labels = {"app.kubernetes.io/name": "image-prepull", "app.kubernetes.io/instance": prepull_name(image)}
    hardening = locked_down()
    tiny = k8s.core.v1.ResourceRequirementsArgs(requests={"cpu": "1m", "memory": "8Mi"}, limits={"cpu": "10m", "memory": "32Mi"})
    return k8s.apps.v1.DaemonSetSpecArgs(
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
        # A new image rolls onto every node at once: pulling is the node's work, not the GPUs'.
        update_strategy=k8s.apps.v1.DaemonSetUpdateStrategyArgs(
            type="RollingUpdate", rolling_update=k8s.apps.v1.RollingUpdateDaemonSetArgs(max_unavailable="100%")
        ),
        template=k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
            spec=k8s.core.v1.PodSpecArgs(
                automount_service_account_token=False,
                termination_grace_period_seconds=0,
                tolerations=_tolerations(pools),
                affinity=k8s.core.v1.AffinityArgs(
                    node_affinity=k8s.core.v1.NodeAffinityArgs(
                        required_during_scheduling_ignored_during_execution=k8s.core.v1.NodeSelectorArgs(
                            node_selector_terms=[
                                k8s.core.v1.NodeSelectorTermArgs(
                                    match_expressions=[k8s.core.v1.NodeSelectorRequirementArgs(key=LABEL_GPU_TYPE, operator="In", values=gpu_types)]
                                )
                            ]
                        )
                    )
                ),
                security_context=k8s.core.v1.PodSecurityContextArgs(
                    run_as_non_root=True, run_as_user=PREPULL_UID, run_as_group=PREPULL_UID, seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault")
                ),
                init_containers=[
                    # Running it is what makes kubelet pull it; `true` exits at once.
                    k8s.core.v1.ContainerArgs(name="pull", image=image, command=["true"], resources=tiny, security_context=hardening)
                ],
                containers=[k8s.core.v1.ContainerArgs(name="hold", image=PAUSE_IMAGE, resources=tiny, security_context=hardening)],
            ),
        ),
    )


class ImagePrepull(pulumi.ComponentResource):
    """One DaemonSet per distinct model image, on the GPU nodes of the types those models use."""

    def __init__(
        self,
        name: str,
        images: dict[str, list[str]],  # image -> the GPU types of the models that run it
        pools: tuple[GpuPoolPlacement, ...],
        provider: k8s.Provider,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("llm-platform:models:ImagePrepull", name, None, opts)
        namespace = addon_namespace(f"{name}-namespace", NAMESPACE, "restricted", provider, self)
        # the kubelet pulls, not the pods: they need no network at all
        default_deny(f"{name}-default-deny", NAMESPACE, pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[namespace]))
        for image, gpu_types in images.items():
            k8s.apps.v1.DaemonSet(
                f"{name}-{_digest(image)}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=prepull_name(image),
                    namespace=NAMESPACE,
                    labels={"app.kubernetes.io/part-of": "llm-platform"},
                    # A GPU pool may be empty (it scales from zero): `pulumi up` must not wait for pods.
                    annotations={"llm-platform/image": image, "pulumi.com/skipAwait": "true"},
                ),
                spec=prepull_spec(image, sorted(set(gpu_types)), pools),
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[namespace, *depends_on]),
            )
        self.register_outputs({"images": sorted(images)})
