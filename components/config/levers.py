"""The stack's levers on scale-out speed (issue 19): each one moves the scale-out budget and is
built by the serving layer. More follow (warm headroom, image pre-pull, a faster loader)."""

from __future__ import annotations

from pydantic import Field

from .types import ConfigModel


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
