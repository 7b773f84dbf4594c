"""Durations as Go and Terraform write them: `1h30m`, `90s`, `5m`, `0`, and days (`180d`).

Parsed by durationpy (Go's `time.ParseDuration` grammar, extended with `d` and `w`,
which journal ages such as `--prune-before 180d` need). One extension of our own: a
bare whole number is seconds, so `--wait 60` (older than the Go form) keeps working.
Negative, infinite and not-a-number durations are refused: a wait of `inf` or `nan`
would hang a CI job or compare as false everywhere.
"""

from __future__ import annotations

import math
import re

import durationpy

EXAMPLES = "1h30m, 90s, 5m, 0 or 180d"
_SECONDS = re.compile(r"^\d+$")


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError with a message fit for a user otherwise."""
    value = text.strip()
    if _SECONDS.match(value):
        return float(value)
    try:
        seconds = durationpy.from_str(value).total_seconds()
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a duration (examples: {EXAMPLES})") from None
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"{text!r}: a duration cannot be negative (examples: {EXAMPLES})")
    return seconds
