"""Reading the plan JSONs `python -m stacks plan --json` writes, for `diff` and `policy`.

Both run in the pull-request job on files an earlier step wrote; a truncated artifact, a file from
another tool or a hand edit must end in one line naming the file, not a traceback from deep in the
diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class PlanFileError(Exception):
    """A file that is not a plan JSON this program writes."""


def _shape_problem(document: Any) -> str | None:
    if not isinstance(document, dict):
        return f"a JSON {type(document).__name__}, not an object"
    if not isinstance(document.get("stack"), str):
        return "no `stack` name"
    if "errors" in document:
        errors = document["errors"]
        return None if isinstance(errors, list) and all(isinstance(e, str) for e in errors) else "`errors` is not a list of lines"
    resources = document.get("resources")
    if not isinstance(resources, list):
        return "no `resources` list"
    for i, resource in enumerate(resources):
        if not isinstance(resource, dict) or not all(isinstance(resource.get(k), str) for k in ("urn", "type", "name")):
            return f"resources[{i}] has no urn, type and name"
        if not isinstance(resource.get("inputs", {}), dict):
            return f"resources[{i}].inputs is not an object"
    if not isinstance(document.get("outputs", {}), dict):
        return "`outputs` is not an object"
    return None


def read_json_file(path: Path, what: str) -> Any:
    """A JSON file's value; PlanFileError, naming the file, for anything unreadable."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise PlanFileError(f"{path}: not UTF-8 text, so not {what}") from None
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise PlanFileError(f"{path}: nested too deeply to be {what}") from None
    except ValueError as exc:  # JSONDecodeError, and integers past Python's digit limit
        raise PlanFileError(f"{path}: not JSON, so not {what} ({exc})") from None


def read_plan(path: Path) -> dict[str, Any]:
    document = read_json_file(path, "a plan")
    problem = _shape_problem(document)
    if problem:
        raise PlanFileError(f"{path}: not a plan written by `python -m stacks plan --json`: {problem}")
    return document


def output_path_problem(path: Path, *, directory: bool) -> str | None:
    """Why `plan` could not write `path` (`--json` a file, `--render` a directory), known before
    the plan runs: otherwise the whole plan is computed and then lost to a path typed wrong."""
    if path.exists():
        if path.is_dir() != directory:
            return "is not a directory" if directory else "is a directory"
        return None if os.access(path, os.W_OK) else "is not writable"
    existing = next(p for p in path.parents if p.exists())
    if not existing.is_dir():
        return f"{existing} is not a directory"
    return None if os.access(existing, os.W_OK | os.X_OK) else f"{existing} is not writable"
