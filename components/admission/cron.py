"""Cron schedules as KEDA v2.20.2's cron scaler parses them: robfig/cron v3.0.1 with five fields
(`cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)`, `pkg/scalers/cron_scaler.go`).

So no seconds field and no `@daily` descriptors; ranges `a-b`, steps `/n`, lists `a,b`, `*` and
`?`; month and weekday names (`jan`, `mon`, any case); weekdays 0-6 (7 is not Sunday here).
"""

from __future__ import annotations

import re
from functools import cache
from zoneinfo import available_timezones

_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_WEEKDAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
# (name, min, max, names) for minute, hour, day of month, month, day of week (parser.go `bounds`).
_FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _WEEKDAYS),
)
_GO_ATOI = re.compile(r"^[+-]?[0-9]+$")  # strconv.Atoi: ASCII digits only


def _number(text: str, names: dict[str, int] | None) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    if not _GO_ATOI.match(text):
        raise ValueError(f"failed to parse int from {text}")
    value = int(text)
    if value < 0:
        raise ValueError(f"negative number ({value}) not allowed: {text}")
    return value


def _range(expr: str, low: int, high: int, names: dict[str, int] | None) -> None:
    range_and_step = expr.split("/")
    bounds = range_and_step[0].split("-")
    if bounds[0] in ("*", "?"):
        start, end = low, high
    else:
        start = _number(bounds[0], names)
        if len(bounds) == 1:
            end = start
        elif len(bounds) == 2:
            end = _number(bounds[1], names)
        else:
            raise ValueError(f"too many hyphens: {expr}")
    if len(range_and_step) == 2:
        step = _number(range_and_step[1], None)
        if len(bounds) == 1 and bounds[0] not in ("*", "?"):
            end = high
        if step == 0:
            raise ValueError(f"step of range should be a positive number: {expr}")
    elif len(range_and_step) > 2:
        raise ValueError(f"too many slashes: {expr}")
    if start < low:
        raise ValueError(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise ValueError(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")


def cron_problem(spec: str) -> str | None:
    """Why robfig/cron (as KEDA configures it) refuses `spec`, or None."""
    if not spec:
        return "empty spec string"
    if spec.startswith(("TZ=", "CRON_TZ=")):
        zone, _, spec = spec.partition("=")[2].partition(" ")
        if timezone_problem(zone):
            return f"provided bad location {zone}"
        spec = spec.strip()
    if spec.startswith("@"):
        return f"parser does not accept descriptors: {spec}"
    fields = spec.split()
    if len(fields) != len(_FIELDS):
        return f"expected exactly {len(_FIELDS)} fields, found {len(fields)}: {fields}"
    for text, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for expr in (part for part in text.split(",") if part):
            try:
                _range(expr, low, high, names)
            except ValueError as exc:
                return f"{name}: {exc}"
    return None


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def timezone_problem(name: str) -> str | None:
    """Why Go's `time.LoadLocation` (KEDA's cron scaler, on every poll) would fail on `name`: it
    looks the name up, case and all, in the IANA database (here the `tzdata` package's copy)."""
    if name in ("", "UTC", "Local") or name in _zones():
        return None
    return f"unknown time zone {name}"
