"""Prometheus' duration grammar (`model.ParseDuration`, prometheus/common v0.70.1 `model/time.go`), as
Prometheus Operator's webhook applies it to a rule's `for` and `keep_firing_for` and as it compares a
ServiceMonitor's `scrapeTimeout` with its `interval`.

It is stricter than Go's `time.ParseDuration`: units run from largest to smallest, each at most once
(`1h30m`, never `30m1h` or `90m30m`), no fractions or signs, and `0` alone needs no unit.
"""

from __future__ import annotations

import re

_UNITS = {"y": 365 * 86400_000, "w": 7 * 86400_000, "d": 86400_000, "h": 3600_000, "m": 60_000, "s": 1000, "ms": 1}
_ORDER = list(_UNITS)
_PART = re.compile(r"([0-9]+)(ms|[ywdhms])")
_MAX_NS = 2**63 - 1


def parse_prometheus_duration(text: str) -> int:
    """Milliseconds in a Prometheus duration; ValueError with Prometheus' message otherwise."""
    if text == "0":
        return 0
    if text == "":
        raise ValueError("empty duration string")
    position, last_unit, total_ms = 0, -1, 0
    while position < len(text):
        match = _PART.match(text, position)
        if not match:
            unit = re.match(r"[0-9]+([^0-9]+)", text[position:])
            if unit and unit.group(1) not in _UNITS:
                raise ValueError(f"unknown unit {unit.group(1)!r} in duration {text!r}")
            raise ValueError(f"not a valid duration string: {text!r}")
        number, unit = int(match.group(1)), match.group(2)
        if _ORDER.index(unit) <= last_unit:
            raise ValueError(f"not a valid duration string: {text!r}")
        last_unit = _ORDER.index(unit)
        total_ms += number * _UNITS[unit]
        if total_ms * 1_000_000 > _MAX_NS:
            raise ValueError("duration out of range")
        position = match.end()
    return total_ms
