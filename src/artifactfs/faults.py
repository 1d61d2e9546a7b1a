"""Fault-injection points for crash and race tests: ``ARTIFACTFS_FAULT=<point>``
makes the process kill itself with SIGKILL when it reaches that point, as a
power cut or the OOM killer would; :func:`fault_action` makes a test run
code of its own there (an attacker swapping a file between a check and an
open), so an interleaving is forced, never hoped for. Unset, a point costs
two dict lookups."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator

_actions: dict[str, Callable[[], None]] = {}


def fault_point(name: str) -> None:
    action = _actions.get(name)
    if action is not None:
        action()
    if os.environ.get("ARTIFACTFS_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def fault_action(name: str, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` (in this process) each time ``fault_point(name)`` is reached."""
    _actions[name] = action
    try:
        yield
    finally:
        _actions.pop(name, None)
