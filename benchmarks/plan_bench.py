"""Benchmark: the offline plan against the bare Pulumi SDK registering as many resources.

Why: `python -m stacks plan` is the tool newcomers and reviewers run to see what a stack creates.
Its cost should stay a small multiple of what the Pulumi SDK itself spends registering the same
number of resources under mocks; if the ratio grows with the number of GPU pools, something in the
program, the recording monitor or the text rendering has become worse than linear.

What is timed, per stack (the `dev` and `prod` stack files, and synthetic stacks made from dev's
config with 1, 10, 50 and 100 GPU pools):
- plan: `run_program(stack_file, preview=True)` + `render_text(run)`, i.e. `python -m stacks plan`
  minus process start-up and imports;
- bare SDK, two baselines run the same way `stacks/offline.py` runs the program, each with as
  many registrations as the plan made: plain one-field `pulumi.CustomResource`s (the SDK's floor),
  and the same resources with the very inputs the plan registered (the SDK's own cost for this
  payload). plan / same-inputs is what our program adds: config validation, components, Outputs,
  recording and rendering.
Each case runs once to warm up, then `--repeat` times; the medians are reported.

Run from the project root:
    venv/bin/python benchmarks/plan_bench.py              # repeat 5
    venv/bin/python benchmarks/plan_bench.py --repeat 9
    venv/bin/python benchmarks/plan_bench.py --quick      # repeat 1, no 100-pool stack
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

import pulumi  # noqa: E402
from pulumi.runtime import mocks as pulumi_mocks  # noqa: E402
from pulumi.runtime.settings import set_root_resource  # noqa: E402
from pulumi.runtime.stack import run_pulumi_func  # noqa: E402
from pulumi.runtime.sync_await import _sync_await  # noqa: E402

from stacks.offline import run_program  # noqa: E402
from stacks.plan import render_text  # noqa: E402
from stacks.stack_files import StackFile, load_stack_file, stack_file_from_values  # noqa: E402

POOL_COUNTS = (1, 10, 50, 100)
GPU_POOLS_KEY = "llm-platform:gpuPools"


def synthetic_stack(pools: int) -> StackFile:
    """dev's config with `pools` valid single-L4 GPU pools instead of dev's own."""
    config = copy.deepcopy(load_stack_file("dev").values)
    config[GPU_POOLS_KEY] = [
        {
            "name": f"pool-{i:03d}",
            "gpuType": "l4",
            "gpusPerNode": 1,
            "instanceTypes": ["g6.xlarge", "g6.2xlarge"],
            "capacityType": "spot" if i % 2 == 0 else "on-demand",
            "minSize": 0,
            "maxSize": 2,
        }
        for i in range(pools)
    ]
    return stack_file_from_values(f"synthetic-{pools}-pools", config)


def plan(stack_file: StackFile) -> list[dict[str, Any]]:
    """What `python -m stacks plan` does after start-up; returns the inputs of every registration."""
    run = run_program(stack_file, preview=True)
    if run.error is not None:
        raise RuntimeError(f"plan of {stack_file.name} failed: {run.error!r}") from run.error
    render_text(run)
    return [r.inputs for r in run.resources]


class EchoMocks(pulumi_mocks.Mocks):
    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        return None, dict(args.inputs)

    def call(self, args: pulumi_mocks.MockCallArgs):
        return {}


def bare_sdk(payloads: list[dict[str, Any]]) -> int:
    """One registration per payload through the SDK alone: the root Stack that `set_mocks` registers
    (as it does for the plan) plus a plain custom resource for each payload after the first."""
    mocks = EchoMocks()
    monitor = pulumi_mocks.MockMonitor(mocks)
    set_root_resource(None)
    pulumi.runtime.set_all_config({}, [])
    pulumi.runtime.set_mocks(mocks, project="bench", stack="bench", preview=True, monitor=monitor)

    def program() -> None:
        for i, props in enumerate(payloads[1:]):
            pulumi.CustomResource("test:index:Thing", f"r{i}", dict(props))

    _sync_await(run_pulumi_func(program))
    plain = len(monitor.get_registered_resources())  # MockMonitor keeps everything but the Stack
    if plain != len(payloads) - 1:
        raise RuntimeError(f"bare SDK registered {plain} plain resources, expected {len(payloads) - 1}")
    return plain + 1


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (default 5)")
    parser.add_argument("--quick", action="store_true", help="repeat 1 and skip the 100-pool stack")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    pool_counts = [n for n in POOL_COUNTS if not (args.quick and n == 100)]

    cases = [(name, load_stack_file(name)) for name in ("dev", "prod")]
    cases += [(f"synthetic, {n} GPU pool{'' if n == 1 else 's'}", synthetic_stack(n)) for n in pool_counts]

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: nproc {cpus}, Python {platform.python_version()}, pulumi {version('pulumi')}; "
          f"median of {repeat} run(s) after 1 warm-up")
    print()
    print("| stack | resources | plan (s) | SDK, 1-field resources (s) | ratio | SDK, same inputs (s) | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, stack_file in cases:
        payloads = plan(stack_file)  # warm-up; also what the baselines register
        plain = [{"value": i} for i in range(len(payloads))]
        plan_s = median_seconds(lambda sf=stack_file: plan(sf), repeat)
        bare_sdk(plain)  # warm-up
        plain_s = median_seconds(lambda p=plain: bare_sdk(p), repeat)
        same_s = median_seconds(lambda p=payloads: bare_sdk(p), repeat)
        print(
            f"| {label} | {len(payloads)} | {plan_s:.3f} | {plain_s:.3f} | {plan_s / plain_s:.1f}× "
            f"| {same_s:.3f} | {plan_s / same_s:.1f}× |",
            flush=True,
        )

if __name__ == "__main__":
    main()
