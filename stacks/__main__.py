"""`python -m stacks …`: the offline plan and its diff, config validation, the config schema and the fit check.

Exit codes: 0 ok; 2 bad input (unknown stack, invalid stack config, bad flags); 1 the program
itself failed (a bug: please report it with `--debug` output), or `images --resolve` could not get
a digest from a registry (the message names the image and the registry's answer).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from components.config.stack import ConfigError, stack_config_json_schema

from . import PROJECT_DIR
from .ci_matrix import ci_matrix
from .config_reference import config_reference_markdown, write_into
from .diff import diff_paths, render
from .image_digests import images_command
from .fit_cli import FitInputError, add_fit_parser, render_fit, run_fit
from .offline import run_program
from .policy_cli import run_policy
from .service.serve import add_serve_parser, serve
from .plan import render_text, write_error_json, write_json, write_render
from .plan_files import PlanFileError, output_path_problem
from .stack_files import StackFileError, UnknownStackError, load_stack_file
from .urns import render_snapshot, snapshot_path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stacks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plan = sub.add_parser("plan", help="what `pulumi preview` would create for a stack, offline (no credentials)")
    plan.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    plan.add_argument("--json", metavar="FILE", type=Path, help="write every registered resource as JSON")
    plan.add_argument("--render", metavar="DIR", type=Path, help="write every Kubernetes object / Helm release as YAML")
    plan.add_argument("--stack-dir", type=Path, default=PROJECT_DIR, help="where Pulumi.<stack>.yaml files are (default: the project)")
    plan.add_argument("--quiet", action="store_true", help="do not print the tree")
    plan.add_argument("--debug", action="store_true", help="show the traceback if the program fails")

    validate = sub.add_parser("validate", help="check a stack's config, and what the operators would refuse, and exit")
    validate.add_argument("stack")
    validate.add_argument("--stack-dir", type=Path, default=PROJECT_DIR)

    sub.add_parser("schema", help="print the JSON Schema of the stack config (the portal renders forms from it)")
    reference = sub.add_parser("config-reference", help="print the Markdown config reference (docs/config-reference.md embeds it)")
    reference.add_argument("--write", metavar="MARKDOWN", type=Path, help="replace the generated block in this file instead")
    urns = sub.add_parser("urns", help="print a stack's URNs (what tests/urns/<stack>.txt pins)")
    urns.add_argument("stack")
    urns.add_argument("--write", action="store_true", help="pin them: write tests/urns/<stack>.txt")
    diff = sub.add_parser("diff", help="what a change does: two plan JSONs (or directories of <stack>.json), base then head")
    diff.add_argument("base", type=Path)
    diff.add_argument("head", type=Path)
    diff.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    policy = sub.add_parser("policy", help="the policy pack's rules over plan JSONs (a file, or a directory of them)")
    policy.add_argument("plan", type=Path)
    policy.add_argument("--config", type=Path, help="policy config JSON, as for --policy-pack-config")
    matrix = sub.add_parser("ci-matrix", help="the workflows' stack matrix as JSON: stack, cloud, region, GitHub environment")
    matrix.add_argument("--environment", choices=["dev", "production"], help="only the stacks of this environment")
    matrix.add_argument("--stack-dir", type=Path, default=PROJECT_DIR)
    images = sub.add_parser("images", help="the platform's own images: by tag, and by digest where resolved (components/catalog/data/images.yaml)")
    images.add_argument("--resolve", action="store_true", help="ask each registry which digest its tag points at now (needs network, no credentials)")
    images.add_argument("--write", action="store_true", help="with --resolve: record new and moved digests in the catalog")
    images.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_fit_parser(sub)
    add_serve_parser(sub)
    return parser


def _plan(args: argparse.Namespace) -> int:
    for path, directory in ((args.json, False), (args.render, True)):
        problem = output_path_problem(path, directory=directory) if path else None
        if problem:
            raise StackFileError(f"{path}: {problem}")
    stack_file = load_stack_file(args.stack, args.stack_dir)
    try:
        stack_file.validate()  # fail fast, before mocks or any resource registration
    except ConfigError as exc:
        if args.json:  # a PR diff shows the errors instead of losing the stack
            write_error_json(args.stack, exc, args.json)
        raise
    run = run_program(stack_file, preview=True)
    if run.error is not None:
        if isinstance(run.error, ConfigError):
            raise run.error
        print(f"error: the program failed for stack {args.stack!r}: {run.error}", file=sys.stderr)
        if args.debug:
            traceback.print_exception(run.error)
        return EXIT_FAILED
    if not args.quiet:
        sys.stdout.write(render_text(run))
    if args.json:
        write_json(run, args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.render:
        written = write_render(run, args.render)
        print(f"wrote {len(written)} object file(s) under {args.render}", file=sys.stderr)
    return EXIT_OK


def _urns(args: argparse.Namespace) -> int:
    run = run_program(load_stack_file(args.stack), preview=True)
    if isinstance(run.error, ConfigError):
        raise run.error
    if run.error is not None:
        print(f"error: the program failed for stack {args.stack!r}: {run.error}", file=sys.stderr)
        return EXIT_FAILED
    text = render_snapshot(run)
    if args.write:
        snapshot_path(args.stack).parent.mkdir(parents=True, exist_ok=True)
        snapshot_path(args.stack).write_text(text)
        print(f"wrote {snapshot_path(args.stack).relative_to(PROJECT_DIR)}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "images" and args.write and not args.resolve:
        parser.error("images --write records what --resolve finds: pass both")
    try:
        if args.command == "plan":
            return _plan(args)
        if args.command == "validate":
            _, warnings = load_stack_file(args.stack, args.stack_dir).check()
            for key, message in warnings:
                print(f"warning: Pulumi.{args.stack}.yaml: {key}: {message}", file=sys.stderr)
            print(f"Pulumi.{args.stack}.yaml: valid")
            return EXIT_OK
        if args.command == "fit":
            result, arch, nearest = run_fit(args)
            print(render_fit(result, arch, nearest, args.json))
            return EXIT_OK
        if args.command == "urns":
            return _urns(args)
        if args.command == "policy":
            if not args.plan.exists():
                raise StackFileError(f"{args.plan}: no such plan")
            code, text = run_policy(args.plan, args.config)
            sys.stdout.write(text)
            return code
        if args.command == "diff":
            if not (args.base.exists() or args.head.exists()):
                raise StackFileError(f"neither {args.base} nor {args.head} exists")
            diffs = diff_paths(args.base, args.head)
            if not diffs:  # two directories, neither holding a plan: a wrong path, not "no change"
                raise StackFileError(f"neither {args.base} nor {args.head} holds a plan (<stack>.json, as plan --json writes)")
            sys.stdout.write(render(diffs, args.format))
            return EXIT_OK if all(d.ok for d in diffs) else EXIT_BAD_INPUT
        if args.command == "serve":
            return serve(args)
        if args.command == "images":
            return images_command(args.resolve, args.write, args.json)
        if args.command == "ci-matrix":
            print(json.dumps(ci_matrix(args.environment, args.stack_dir), separators=(",", ":")))
            return EXIT_OK
        if args.command == "schema":
            print(json.dumps(stack_config_json_schema(), indent=2))
            return EXIT_OK
        if args.command == "config-reference":
            if args.write:
                write_into(args.write)
            else:
                sys.stdout.write(config_reference_markdown())
            return EXIT_OK
    except (ConfigError, UnknownStackError, StackFileError, FitInputError, PlanFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # a path given on the command line: --json into a directory, --render under /proc
        print(f"error: {exc.filename or exc.filename2 or 'a file'}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
