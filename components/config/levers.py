"""The stack's levers on scale-out speed (issue 19): each one moves the scale-out budget
(`config/scale_out.py`) and is built by the serving layer or, where it is the node's business
(how images are pulled), by the cloud."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .errors import Problem, raise_problems
from .types import ConfigModel, GoDuration, duration_seconds

WeightLoader = Literal["runai-streamer", "safetensors"]
# The first AL2023 EKS AMI whose nodeadm has the FastImagePull gate (v20250813 called it AggressiveImagePull).
FAST_IMAGE_PULL_SINCE = "20250821"


class ScaleOutConfig(ConfigModel):
    compile_cache: bool = Field(
        True,
        description="Keep vLLM's torch.compile cache on the model's weights volume (per vLLM version), so only the first replica "
        "compiles and every later one starts from the cache (about 25 s saved for an 8B model, 45 s for a 70B).",
    )
    warm_headroom: int = Field(
        0,
        ge=0,
        le=16,
        description="Spare replica slots held per model by placeholder pods (the same GPUs, CPU, memory and pools, the model's image) "
        "that a new replica preempts, so it skips the node launch, GPU stack and image pull. Each slot costs its GPUs while idle. "
        "A model's own warmHeadroom overrides this.",
    )
    weight_loader: WeightLoader = Field(
        "runai-streamer",
        description="How vLLM reads the weights from the shared volume: 'runai-streamer' (--load-format runai_streamer: 16 "
        "concurrent readers per GPU, streamed to the GPU; safetensors checkpoints only) or 'safetensors' (vLLM's default loader, "
        "memory-mapped with an 8-thread prefetch, far slower on a network file system). A model's own weightLoader overrides this.",
    )
    fast_image_pull: bool = Field(
        True,
        description="Pull the vLLM image the fast way each cloud offers on GPU nodes (EKS: SOCI parallel pull onto a fast root "
        "volume; GKE: image streaming from an Artifact Registry mirror of Docker Hub; AKS: a pre-pull as the node joins), "
        "instead of containerd's default pull from Docker Hub.",
    )
    metrics_interval: GoDuration = Field(
        "5s",
        description="How often Prometheus scrapes vLLM's queue and KV-cache gauges, which KEDA's triggers read: a spike is seen "
        "at most this long after it starts. 5s to 60s.",
    )

    @model_validator(mode="after")
    def _check(self) -> ScaleOutConfig:
        problems: list[Problem] = []
        if not 5 <= duration_seconds(self.metrics_interval) <= 60:
            problems.append((("metricsInterval",), "between 5s and 60s: below 5s Prometheus load grows with every replica for no faster scaling (the HPA itself acts every 15 s)"))
        raise_problems(problems)
        return self
