"""A request body's JSON keys, each given once.

Python's `json` (and so FastAPI) keeps the last of two equal keys in an object, as PyYAML does in
a stack file; the stack file refuses that (the Pulumi CLI would), so a portal request that says
`maxSize` twice is refused too rather than deploying whichever came last.
"""

from __future__ import annotations

import json
from typing import Any

from components.config.errors import format_key_path
from stacks.automation.request import FieldError, json_pointer

WHY = "given twice in one object; JSON would keep only the last"
# A stack's config is a few KiB (prod's file is under 10); a bound keeps one request from making
# the service parse and validate megabytes (Kubernetes caps API request bodies at 3 MiB for the same reason).
MAX_BODY_BYTES = 1024 * 1024


class _Object(dict):
    """A decoded object that remembers the keys it was given twice."""

    repeated: list[str]


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    decoded = _Object()
    decoded.repeated = []
    for key, value in pairs:
        if key in decoded and key not in decoded.repeated:
            decoded.repeated.append(key)
        decoded[key] = value
    return decoded


def _stack_key(parts: list[str | int]) -> str:
    """/config/gpuPools/0/maxSize -> llm-platform:gpuPools[0].maxSize; elsewhere the pointer."""
    if len(parts) >= 2 and parts[0] in ("config", "secrets") and isinstance(parts[1], str):
        return format_key_path(tuple(parts[1:]))
    return json_pointer(parts)


def repeated_keys(body: bytes) -> list[FieldError]:
    """Each key given twice, where; nothing for a body that is not JSON (FastAPI reports that)."""
    try:
        document = json.loads(body, object_pairs_hook=_object)
    except (ValueError, RecursionError):
        return []
    found: list[FieldError] = []
    pending: list[tuple[Any, list[str | int]]] = [(document, [])]
    while pending:  # a loop: bodies may nest deeply
        value, parts = pending.pop()
        if isinstance(value, _Object):
            for key in value.repeated:
                where = json_pointer([*parts, key])
                found.append(FieldError(where, _stack_key([*parts, key]), WHY, f"{where}: {WHY}"))
            pending.extend((v, [*parts, k]) for k, v in value.items())
        elif isinstance(value, list):
            pending.extend((v, [*parts, i]) for i, v in enumerate(value))
    return sorted(found, key=lambda e: e.pointer)
