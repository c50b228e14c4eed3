"""Number flags as our CLIs read them: ASCII digits only, finite, within what the target holds.

argparse's `type=int` and `type=float` take '٣' for 3 and 'nan' or 'inf' for numbers, which then
slip past every `<=` bound; these say what is wrong in one line instead (argparse exits 2).
"""

from __future__ import annotations

import argparse


def whole_number(text: str) -> int:
    """An ASCII whole number (`int()` would take "٣" for 3), at most a billion either way."""
    if not text.isascii() or not text.lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number such as 8192")
    value = int(text)
    if abs(value) > 10**9:
        raise argparse.ArgumentTypeError(f"{text} is out of range (at most 1,000,000,000)")
    return value


def finite_number(text: str) -> float:
    """An ASCII decimal number: not nan, inf or another script's digits."""
    try:
        value = float(text) if text.isascii() else float("nan")
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number such as 0.9")
    return value
