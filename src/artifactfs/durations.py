"""Durations as people write them: the one grammar every command-line flag
and the pruner's policy file read, and the one way they are printed back.

The grammar (documented once, here; ``artifactfs --help`` of each command
names its flags' type DURATION, and README.md "Durations" repeats this
table for users):

- a bare number is seconds: ``90``, ``0.5``, ``.5``, ``0``;
- otherwise one or more ``<number><unit>`` parts, largest unit first, each
  unit at most once: ``500ms``, ``5s``, ``10m``, ``24h``, ``30d``, ``2w``,
  ``1h30m``, ``1.5h``;
- units are ``ms``, ``s``, ``m`` (minutes), ``h``, ``d``, ``w``, in lower
  case only: ``1H`` is refused (with the fix in the message) rather than
  guessed, since an upper-case ``M`` reads as months to some;
- no spaces inside (``10 m`` is refused), no sign: a negative duration is
  refused;
- ``0`` is a duration; a flag that needs more than zero (an interval, a
  timeout) says so when given ``0``.
"""

from __future__ import annotations

import datetime as dt
import re

from artifactfs.errors import ArtifactfsError

#: Seconds per unit, largest first: the order parts must come in.
UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_BARE = re.compile(_NUMBER)
_PART = re.compile(rf"({_NUMBER})(ms|[wdhms])")
EXAMPLES = "90s, 10m, 24h, 1h30m, 30d, 2w, 500ms, or a number of seconds"


class DurationError(ArtifactfsError, ValueError):
    """A text that is not a duration (or not one this flag allows)."""


def parse_duration(text: str | int | float | dt.timedelta, *, positive: bool = False) -> dt.timedelta:
    """Read a duration in the grammar of this module.

    Args:
        text: what the user wrote; a number is seconds, a timedelta is returned as is.
        positive: refuse ``0`` (for intervals and timeouts).

    Returns:
        The duration.

    Raises:
        DurationError: ``text`` is not a duration, is negative, or is zero when ``positive``.
    """
    if isinstance(text, dt.timedelta):
        value = text
    elif isinstance(text, (int, float)) and not isinstance(text, bool):
        value = dt.timedelta(seconds=float(text))
    else:
        value = dt.timedelta(seconds=_seconds(str(text)))
    if value < dt.timedelta(0):
        raise DurationError(f"the duration {text!r} is negative", f"write one like {EXAMPLES}")
    if positive and not value:
        raise DurationError(f"the duration {text!r} is zero here", "give more than zero, e.g. 1s or 500ms")
    return value


def _seconds(text: str) -> float:
    raw = text.strip()
    if _BARE.fullmatch(raw):
        return float(raw)
    parts = _PART.findall(raw)
    if not raw or "".join(n + u for n, u in parts) != raw:
        lower = raw.lower()
        if lower != raw and _PART.findall(lower) and "".join(n + u for n, u in _PART.findall(lower)) == lower:
            raise DurationError(f"cannot read the duration {text!r}: units are lower case",
                                f"write {lower!r} (m is minutes; there is no month unit)")
        raise DurationError(f"cannot read the duration {text!r}", f"write one like {EXAMPLES}")
    order = list(UNITS)
    ranks = [order.index(unit) for _, unit in parts]
    if ranks != sorted(set(ranks)):
        raise DurationError(f"cannot read the duration {text!r}: units repeat or are out of order",
                            "write each unit once, largest first, e.g. 1h30m")
    return sum(float(number) * UNITS[unit] for number, unit in parts)


def format_duration(value: dt.timedelta | float) -> str:
    """The shortest text of the grammar that reads back as ``value`` (seconds
    for a float), e.g. ``1d``, ``90s``, ``500ms``, ``0``."""
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    if seconds == 0:
        return "0"
    millis = round(seconds * 1000)
    for unit, size in UNITS.items():
        step = round(size * 1000)
        if millis % step == 0:
            return f"{millis // step}{unit}"
    return f"{seconds:g}s"


__all__ = ["EXAMPLES", "UNITS", "DurationError", "format_duration", "parse_duration"]
