"""One stack, from its validated config to registered resources. `__main__.py` calls these two."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components.addons.layer import AddonsContract, build_addons
from components.clusters.build import build_cluster
from components.clusters.contract import ClusterContract
from components.config.models import ModelConfig
from components.config.planning import max_num_seqs, model_fit, unmodelled_flags
from components.config.scale_out import model_scale_out
from components.config.stack import CONFIG_NAMESPACE, StackConfig
from components.config.cost import stack_cost
from components.routing.layer import Routing, RoutingArgs
from components.serving.models import ModelServices, model_platform

from .config_keys import foreign_key_warnings
from .preflight import checked_stack_config


def _engine_config() -> dict[str, Any]:
    """Every config key the engine handed this program (any namespace), values as passed."""
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def _structured(value: Any) -> Any:
    """The engine passes structured YAML values as JSON text, and text as itself: a quoted
    `"[oops"` is text that merely starts like JSON, so it stays text (and the config says why it
    is wrong). Nesting past json's recursion limit stays text too, refused at its key."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def _namespace_config() -> tuple[dict[str, Any], set[str]]:
    """Every `llm-platform:*` key the engine handed this program, structured values decoded.

    `pulumi.Config` can only fetch keys it is asked for; validating the whole namespace (so a typo
    such as `llm-platform:gpuPool` is an error, not a silently ignored key) needs the full map.
    Pulumi's Python exec shim loads PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS with
    `set_all_config`; the mocks do the same, so both paths read identical maps. Returns the values
    and the keys the engine marks secret.
    """
    merged = _engine_config()
    env_secret_keys = set(runtime_config.get_config_secret_keys_env())
    prefix = f"{CONFIG_NAMESPACE}:"
    raw: dict[str, Any] = {}
    secret: set[str] = set()
    for key, value in merged.items():
        if not key.startswith(prefix):
            continue
        raw[key[len(prefix):]] = _structured(value)
        if runtime_config.is_config_secret(key) or key in env_secret_keys:
            secret.add(key[len(prefix):])
    return raw, secret


def load_stack_config() -> StackConfig:
    """Validate this stack's config and preflight what the operators would refuse; raises
    ConfigError (a RunError: message, no traceback) before any resource is registered."""
    raw, secret_keys = _namespace_config()
    stack_file = f"Pulumi.{pulumi.get_stack()}.yaml"
    cfg, warnings = checked_stack_config(raw, stack_file, secret_keys)
    for key, message in foreign_key_warnings(_engine_config()) + warnings:
        pulumi.log.warn(f"{stack_file}: {key}: {message}")
    return cfg


def stack_tags(cfg: StackConfig, stack: str) -> dict[str, str]:
    """Tags on every cloud resource: who manages it and which stack, so a bill line finds its owner.
    A cloud whose tag rules are stricter (GCP labels, Azure tags) rewrites them in its cluster package."""
    return {"managed-by": "pulumi", "llm-platform/project": pulumi.get_project(), "llm-platform/stack": stack, **cfg.tags}


def build_platform(cfg: StackConfig) -> tuple[ClusterContract, AddonsContract]:
    stack = pulumi.get_stack()
    cluster = build_cluster(cfg, stack_tags(cfg, stack))
    addons = build_addons(cfg.cluster.name, cluster, cfg)
    pulumi.export("cloud", cfg.cloud)
    pulumi.export("region", cfg.region)
    pulumi.export("clusterName", cluster.name)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export(
        "gpuPools",
        [
            {"name": p.pool, "gpuType": p.gpu_type, "gpusPerNode": p.gpus_per_node, "capacityType": p.capacity_type}
            for p in cluster.all_gpu_pools
        ],
    )
    if addons.prometheus_url:
        pulumi.export("prometheusUrl", addons.prometheus_url)
    if cluster.shared_weights:
        pulumi.export("sharedWeightsStorageClass", cluster.shared_weights.storage_class)
    if cfg.models:
        build_models(cfg, cluster, addons)
    cost = stack_cost(cfg)
    for warning in cost.warnings:
        pulumi.log.warn(f"cost estimate: {warning}")
    pulumi.export("cost", cost.as_output())
    return cluster, addons


def _scale_out_output(cfg: StackConfig, model: ModelConfig) -> dict[str, object]:
    """Seconds from a spike to one more serving replica, warm and cold node, phase by phase."""
    budget = model_scale_out(cfg, model)
    return {"scaleOut": budget.as_output()} if budget else {}


def _fit_outputs(model: ModelConfig) -> dict[str, object]:
    """What the capacity planner predicts for one replica (nothing with fitCheck: false)."""
    fit = model_fit(model)
    if fit is None:
        return {}
    predicted: dict[str, object] = {
        "kvCacheTokens": fit.kv_cache_tokens,
        "kvCacheTokensLow": fit.kv_cache_tokens_low,
        "kvCacheTokensHigh": fit.kv_cache_tokens_high,
        "fits": fit.fits,
        "maxConcurrency": round(fit.max_concurrency, 2),
        "maxModelLen": fit.max_model_len,
        "kvCacheGibPerGpu": round(fit.kv_cache_gib, 2),
        "weightsGibPerGpu": round(fit.weights_gib, 2),
    }
    left_out = unmodelled_flags(model)
    if left_out:
        predicted["unmodelledFlags"] = list(left_out)
        pulumi.log.warn(f"capacity planner: the prediction for model {model.name} leaves out {', '.join(left_out)}")
    return {"maxNumSeqs": max_num_seqs(model), "predicted": predicted}


def build_models(cfg: StackConfig, cluster: ClusterContract, addons: AddonsContract) -> ModelServices:
    # The token goes through require_secret so it stays secret in state, previews and the Secret.
    hf_token = pulumi.Config(CONFIG_NAMESPACE).require_secret("hfToken") if any(m.gated for m in cfg.models) else None
    routed_names = {m.name for m in cfg.routed_models}
    services = ModelServices(f"{cfg.cluster.name}-models", cfg.models, model_platform(cluster, addons), hf_token, routed=frozenset(routed_names))
    gateway_url = None
    if routed_names:
        routing = Routing(
            f"{cfg.cluster.name}-routing",
            RoutingArgs(cluster, cfg.routing, [(m, s) for m, s in zip(cfg.models, services.services, strict=True) if m.name in routed_names]),
        )
        gateway_url = routing.url
        pulumi.export("gatewayUrl", gateway_url)
    pulumi.export(
        "models",
        [
            {
                "name": model.name,
                "servedModelName": model.served_name,
                "endpoint": service.endpoint,
                "gpuType": model.gpu_type,
                "gpusPerReplica": model.gpus_per_replica,
                "minReplicas": 0 if model.scaling.scale_to_zero else model.min_replicas,
                "maxReplicas": model.max_replicas,
                "capacity": model.capacity,
                # the gateway's URL is the stack output gatewayUrl (unknown until its load balancer
                # exists: inside this list it would make every model's prediction unknown at preview)
                **({"routed": model.name in routed_names} if routed_names else {}),
                **_fit_outputs(model),
                **_scale_out_output(cfg, model),
            }
            for model, service in zip(cfg.models, services.services, strict=True)
        ],
    )
    # Apart from `models`, so that one secret does not hide every model's plan and prediction.
    keys = {model.name: service.api_key for model, service in zip(cfg.models, services.services, strict=True) if service.api_key is not None}
    if keys:
        pulumi.export("modelApiKeys", pulumi.Output.secret(keys))
    return services
