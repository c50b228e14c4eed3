"""`python -m stacks serve`: the portal's HTTP service on one host and port."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from typing import TYPE_CHECKING

from stacks.cli_types import finite_number, whole_number
from stacks.stack_files import StackFileError

if TYPE_CHECKING:  # the CLI's other commands should not import the Automation API
    from .manager import ServiceSettings

TOKEN_ENV = "LLM_PLATFORM_API_TOKEN"
MIN_TOKEN_CHARS = 16


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="the portal's HTTP API: validate, preview, up, refresh, destroy (needs the Pulumi CLI)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=whole_number, default=8080)
    serve.add_argument("--data-dir", type=Path, required=True, help="operations (SQLite) and the workspace of the portal's stack files")
    serve.add_argument("--token-file", type=Path, help=f"the API's bearer token (default: ${TOKEN_ENV})")
    serve.add_argument("--workers", type=whole_number, default=2, help="operations running at once (each a Pulumi CLI)")
    serve.add_argument("--secrets-provider", help="for new stacks, e.g. awskms://alias/pulumi (default: the backend's)")
    serve.add_argument("--policy-pack", type=Path, help="a CrossGuard pack every preview and up runs, e.g. policy (create its venv first)")
    serve.add_argument("--cancel-grace", type=finite_number, default=900.0, help="seconds an interrupted CLI may take to stop before it is killed")


def read_token(token_file: Path | None) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise StackFileError(f"--token-file {token_file}: {exc.strerror}") from None
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise StackFileError(f"no API token: set {TOKEN_ENV} or pass --token-file")
    if len(token) < MIN_TOKEN_CHARS:
        raise StackFileError(f"the API token must have at least {MIN_TOKEN_CHARS} characters")
    return token


def settings_from(args: argparse.Namespace) -> ServiceSettings:
    from .manager import ServiceSettings

    if not 1 <= args.workers <= 64:
        raise StackFileError("--workers: between 1 and 64")
    if not 0 < args.port < 65536:
        raise StackFileError("--port: between 1 and 65535")
    if args.cancel_grace <= 0:
        raise StackFileError("--cancel-grace: must be > 0")
    if args.policy_pack is not None and not (args.policy_pack / "PulumiPolicy.yaml").is_file():
        raise StackFileError(f"--policy-pack {args.policy_pack}: no PulumiPolicy.yaml there")
    return ServiceSettings(args.data_dir.resolve(), args.workers, args.cancel_grace, args.secrets_provider, args.policy_pack.resolve() if args.policy_pack else None)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    token = read_token(args.token_file)
    app = create_app(settings_from(args), token)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
