"""Composing one stack from its config, the offline plan, and the `python -m stacks` CLI."""

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT_NAME = "llm-platform"
