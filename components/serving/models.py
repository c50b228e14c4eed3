"""The model layer: one VllmModelService per `llm-platform:models[]` entry, under one component.

Namespaces shared by several models (`models[].namespace`) are created here, once; a model without
one gets its own namespace from its service.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from ..addons.layer import AddonsContract
from ..addons.monitoring import NAMESPACE as MONITORING_NAMESPACE
from ..clusters.contract import ClusterContract
from ..config.models import ModelConfig
from .headroom import priority_class
from .prepull import ImagePrepull
from .service import ModelPlatform, VllmModelService, VllmModelServiceArgs, default_deny, model_namespace


def model_platform(cluster: ClusterContract, addons: AddonsContract) -> ModelPlatform:
    """What model services need from the cluster and the add-ons. Config validation guarantees it
    exists when models are set (KEDA, Prometheus and the shared-weights storage are required then)."""
    shared = cluster.shared_weights
    needed = (("KEDA", addons.keda_release), ("Prometheus", addons.monitoring_release), ("shared weights storage", shared))
    missing = [what for what, value in needed if value is None]
    if missing or shared is None:
        raise ValueError(f"model services need {', '.join(missing)}")
    return ModelPlatform(
        provider=cluster.provider,
        gpu_pools=cluster.all_gpu_pools,
        system_node_selector=cluster.system_node_selector,
        storage_class=shared.storage_class,
        storage=shared.storage,
        claim_size=shared.claim_size,
        weights_fs_group=shared.writers_need_fs_group,
        prometheus_url=addons.prometheus_url,
        monitoring_namespace=MONITORING_NAMESPACE,
        monitoring_release=addons.monitoring_release,
        keda_release=addons.keda_release,
        image_of=cluster.image,
        image_ready=cluster.image_ready,
        image_prepull=cluster.image_prepull,
    )


class ModelServices(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        models: list[ModelConfig],
        platform: ModelPlatform,
        hf_token: pulumi.Output[str] | None,
        opts: pulumi.ResourceOptions | None = None,
        routed: frozenset[str] = frozenset(),
    ):
        super().__init__("llm-platform:models:ModelServices", name, None, opts)
        shared: dict[str, k8s.core.v1.Namespace] = {}
        # the API keys' generator (an explicit provider, as every resource has one)
        random_provider = random.Provider(f"{name}-random", opts=pulumi.ResourceOptions(parent=self)) if any(m.access.api_key for m in models) else None
        for ns in dict.fromkeys(m.namespace for m in models if m.namespace):
            shares_routed = any(m.name in routed for m in models if m.namespace == ns)
            shared[ns] = model_namespace(f"{name}-namespace-{ns}", ns, shares_routed, platform.provider, self)
            default_deny(f"{name}-default-deny-{ns}", ns, pulumi.ResourceOptions(parent=self, provider=platform.provider, depends_on=[shared[ns]]))
        # One PriorityClass for every model's placeholders (cluster-scoped), only when some model holds headroom.
        headroom_class = priority_class(f"{name}-headroom-priority", platform.provider, self) if any(m.headroom_slots for m in models) else None
        if platform.image_prepull and models:
            images: dict[str, list[str]] = {}
            for model in models:
                images.setdefault(platform.image_of(model.image), []).append(model.gpu_type)
            ImagePrepull(f"{name}-prepull", images, platform.gpu_pools, platform.provider, list(platform.image_ready), pulumi.ResourceOptions(parent=self))
        self.services = [
            VllmModelService(
                f"{name}-{model.name}",
                VllmModelServiceArgs(
                    model=model,
                    platform=platform,
                    hf_token=hf_token if model.gated else None,
                    shared_namespace=shared.get(model.namespace) if model.namespace else None,
                    headroom_class=headroom_class,
                    routed=model.name in routed,
                    random_provider=random_provider,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for model in models
        ]
        self.register_outputs({"endpoints": {s.service_name: s.endpoint for s in self.services}})
