"""Parameter types the commands share, so that every flag of one kind reads
the same inputs and every ``--help`` names the kind the same way."""

from __future__ import annotations


import click

from artifactfs.cli.lazy import ParamError
from artifactfs.durations import DurationError, parse_duration


class Duration(click.ParamType):
    """A flag that takes a duration in the grammar of ``artifactfs.durations``
    (``500ms``, ``90s``, ``1h30m``, ``30d``, ``0``; a bare number is seconds).

    Args:
        positive: refuse ``0`` (intervals, timeouts).
        seconds: convert to a float of seconds rather than a ``timedelta``.
    """

    name = "DURATION"

    def __init__(self, positive: bool = False, seconds: bool = False) -> None:
        self.positive = positive
        self.seconds = seconds

    def convert(self, value, param, ctx):
        """The value as a ``timedelta`` (or seconds); a usage error naming the fix otherwise."""
        if isinstance(value, float) and self.seconds:
            return value
        try:
            parsed = parse_duration(value, positive=self.positive)
        except DurationError as exc:
            raise ParamError(exc.message, exc.hint, ctx=ctx, param=param) from None
        return parsed.total_seconds() if self.seconds else parsed


#: Any duration, 0 included, as a ``timedelta`` (ages, graces, delays).
DURATION = Duration()
#: A duration of more than zero, as a ``timedelta`` (intervals).
POSITIVE_DURATION = Duration(positive=True)
#: Any duration, 0 included, as seconds (the watcher's settle time).
SECONDS = Duration(seconds=True)
#: A duration of more than zero, as seconds (timeouts and polling intervals of the mount and watcher).
POSITIVE_SECONDS = Duration(positive=True, seconds=True)

__all__ = ["DURATION", "POSITIVE_DURATION", "POSITIVE_SECONDS", "SECONDS", "Duration"]
