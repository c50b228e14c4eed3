"""`python -m stacks ci-matrix`: the workflows' stack matrix, read from the stack files, so that a
new `Pulumi.<stack>.yaml` is previewed, deployed and checked for drift without editing a workflow.

Each entry names what a job needs before the program runs: the cloud (which login action), the
region (AWS's login needs one) and the GitHub environment (`production` for stacks named `prod…`,
the convention the policy pack's prod rule uses; `dev` for every other). The config itself is not
validated here: an invalid stack still gets its preview, which fails with the config errors, and
the offline job reports them in the pull request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from components.config.stack import Cloud
from policy.rules import is_prod_stack

from . import PROJECT_DIR
from .stack_files import StackFileError, available_stacks, load_stack_file

Environment = Literal["dev", "production"]


def github_environment(stack: str) -> Environment:
    return "production" if is_prod_stack(stack) else "dev"


def matrix_entry(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    stack_file = load_stack_file(stack, project_dir)
    values = stack_file.namespace_values()
    cloud, region = values.get("cloud"), values.get("region")
    if cloud not in get_args(Cloud):
        raise StackFileError(f"{stack_file.file_name}: llm-platform:cloud: expected one of {', '.join(get_args(Cloud))}, got {cloud!r}")
    if not isinstance(region, str) or not region:
        raise StackFileError(f"{stack_file.file_name}: llm-platform:region: required (the cloud login of the workflows needs it)")
    return {"stack": stack, "cloud": cloud, "region": region, "environment": github_environment(stack)}


def ci_matrix(environment: Environment | None = None, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """`{"include": [...]}` for `strategy.matrix`, optionally only one environment's stacks."""
    entries = [matrix_entry(s, project_dir) for s in available_stacks(project_dir)]
    return {"include": [e for e in entries if environment is None or e["environment"] == environment]}
