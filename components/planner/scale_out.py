"""How long a model takes from a traffic spike to one more serving replica, phase by phase.

Two cases: a warm node (a running GPU node has a free slot and already holds the vLLM image) and
a cold node (the autoscaler must launch one). Pure arithmetic over the sourced assumptions in
`catalog/data/scale_out.yaml`; which assumptions apply to a model (its cloud, its pools, its
storage) is decided by `config/scale_out.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..catalog.scale_out import FastPull, Sourced, assumptions, engine_init_seconds


@dataclass(frozen=True)
class Phase:
    phase: str
    warm_seconds: int
    cold_seconds: int | None  # None: no autoscaler can add a node for this model
    source: str

    def as_output(self) -> dict[str, Any]:
        return {"phase": self.phase, "warmSeconds": self.warm_seconds, "coldSeconds": self.cold_seconds, "source": self.source}


@dataclass(frozen=True)
class ScaleOutInputs:
    scrape_seconds: int  # how often Prometheus scrapes vLLM's metrics
    from_zero: bool  # the model scales to zero: KEDA's polling, not the HPA, wakes it
    polling_seconds: int  # KEDA's pollingInterval
    node_launch: Sourced | None  # pending pod -> node Ready; None: no autoscaler adds a node
    gpu_stack: Sourced | None  # node Ready -> nvidia.com/gpu allocatable
    weights_gib: float  # what one replica reads from the shared volume
    weights_mib_per_second: Sourced  # one pod's read rate from it
    tensor_parallel: int
    compile_cached: bool  # the torch.compile cache is shared, so a new replica does not compile
    warm_headroom: int = 0  # placeholder-held slots: this many scale-outs find a warm node
    fast_pull: FastPull | None = None  # the cloud's fast image pull (scaleOut.fastImagePull); None: containerd's default


@dataclass(frozen=True)
class ScaleOutBudget:
    phases: tuple[Phase, ...]
    warm_headroom: int = 0  # the next this-many replicas start warm (held slots); later ones may start cold

    @property
    def warm_seconds(self) -> int:
        return sum(p.warm_seconds for p in self.phases)

    @property
    def cold_seconds(self) -> int | None:
        if any(p.cold_seconds is None for p in self.phases):
            return None
        return sum(p.cold_seconds or 0 for p in self.phases)

    @property
    def in_pod_cold_seconds(self) -> int:
        """From the container's start to ready: what the startup probe must allow (the node, GPU
        stack and image come before the container starts)."""
        return sum(p.cold_seconds or 0 for p in self.phases if p.phase in IN_POD_PHASES)

    def as_output(self) -> dict[str, Any]:
        return {
            "warmSeconds": self.warm_seconds,
            "coldSeconds": self.cold_seconds,
            "warmHeadroom": self.warm_headroom,
            "phases": [p.as_output() for p in self.phases],
        }


IN_POD_PHASES = ("weights", "engine start", "readiness")


def _image_pull(fast: FastPull | None, gpu_stack: Sourced | None) -> Phase:
    data = assumptions()
    size = f"{data.image_gb.value:g} GB ({data.image_gb.source})"
    default = data.image_gb.value * 1000 / data.pull_mb_per_second.value
    default_source = f"{size} at {data.pull_mb_per_second.value:g} MB/s from Docker Hub: {data.pull_mb_per_second.source}"
    if fast is None:
        return Phase("image pull", 0, round(default), default_source)
    if fast.seconds is not None:
        return Phase("image pull", 0, round(fast.seconds), f"fast image pull, {fast.seconds:g} s whatever the size: {fast.source}")
    if fast.mbps is not None:
        return Phase("image pull", 0, round(data.image_gb.value * 1000 / fast.mbps), f"fast image pull, {size} at {fast.mbps:g} MB/s: {fast.source}")
    overlap = gpu_stack.value if fast.overlaps_gpu_stack and gpu_stack is not None else 0.0
    return Phase("image pull", 0, round(max(default - overlap, 0.0)), f"pre-pulled from node Ready, {overlap:g} s of it under the GPU stack's start: {fast.source}; {default_source}")


def scale_out_budget(inputs: ScaleOutInputs) -> ScaleOutBudget:
    data = assumptions()
    fraction = data.averaged_fraction.value
    if inputs.from_zero:
        reaction = (inputs.scrape_seconds + inputs.polling_seconds) * fraction
        reaction_source = f"Prometheus scrape ({inputs.scrape_seconds} s) and KEDA's pollingInterval ({inputs.polling_seconds} s), half of each on average"
    else:
        reaction = (inputs.scrape_seconds + data.hpa_sync.value) * fraction
        reaction_source = f"Prometheus scrape ({inputs.scrape_seconds} s) and the HPA's sync ({data.hpa_sync.value:g} s), half of each on average; {data.hpa_sync.source}"
    phases = [Phase("reaction", round(reaction), round(reaction), reaction_source)]
    if inputs.node_launch is None or inputs.gpu_stack is None:
        phases.append(Phase("node launch", 0, None, "no pool this model can use adds nodes: managed node groups keep their size, and no Karpenter pool or autoscaled pool offers its GPU"))
    else:
        phases.append(Phase("node launch", 0, round(inputs.node_launch.value), inputs.node_launch.source))
        phases.append(Phase("GPU stack", 0, round(inputs.gpu_stack.value), inputs.gpu_stack.source))
    phases.append(_image_pull(inputs.fast_pull, inputs.gpu_stack))
    read = inputs.weights_gib * 1024 / inputs.weights_mib_per_second.value
    phases.append(Phase("weights", round(read), round(read), f"{inputs.weights_gib:.1f} GiB at {inputs.weights_mib_per_second.value:g} MiB/s: {inputs.weights_mib_per_second.source}"))
    init_cold, init_cached, init_source = engine_init_seconds(inputs.weights_gib)
    init = init_cached if inputs.compile_cached else init_cold
    start = data.process_start.value + (data.tensor_parallel_extra.value if inputs.tensor_parallel > 1 else 0)
    engine_source = f"process start {data.process_start.value:g} s ({data.process_start.source})"
    if inputs.tensor_parallel > 1:
        engine_source += f", tensor parallelism {data.tensor_parallel_extra.value:g} s"
    engine_source += f", init engine {init:.0f} s ({'torch.compile cache hit: the first replica filled the shared cache' if inputs.compile_cached else 'torch.compile from scratch'}; {init_source})"
    phases.append(Phase("engine start", round(start + init), round(start + init), engine_source))
    phases.append(Phase("readiness", round(data.readiness.value), round(data.readiness.value), data.readiness.source))
    return ScaleOutBudget(tuple(phases), inputs.warm_headroom)
