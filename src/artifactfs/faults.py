"""Fault-injection points for crash and race tests, so an interleaving is
forced, never hoped for.

* ``ARTIFACTFS_FAULT=<point>`` makes the process kill itself with SIGKILL
  when it reaches that point, as a power cut or the OOM killer would.
* :func:`fault_action` makes a test run code of its own there, in this
  process (an attacker swapping a file between a check and an open).
* ``ARTIFACTFS_PAUSE=<point>`` with ``ARTIFACTFS_PAUSE_DIR=<dir>`` makes a
  process stop there, the first time (per point and folder), so that other
  processes can be started against it: it creates
  ``<dir>/<point>.<pid>.reached`` and waits until ``<dir>/<point>.go``
  exists (at most :data:`PAUSE_LIMIT_S`), then runs on.

Unset, a point costs three dict lookups.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

PAUSE_LIMIT_S = 300.0
_actions: dict[str, Callable[[], None]] = {}
_passed: set[tuple[str, str]] = set()


def fault_point(name: str) -> None:
    action = _actions.get(name)
    if action is not None:
        action()
    if os.environ.get("ARTIFACTFS_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("ARTIFACTFS_PAUSE") == name:
        folder = os.environ["ARTIFACTFS_PAUSE_DIR"]
        if (name, folder) not in _passed:
            _passed.add((name, folder))
            _pause(name, Path(folder))


@contextlib.contextmanager
def fault_action(name: str, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` (in this process) each time ``fault_point(name)`` is reached."""
    _actions[name] = action
    try:
        yield
    finally:
        _actions.pop(name, None)


def _pause(name: str, folder: Path) -> None:
    (folder / f"{name}.{os.getpid()}.reached").touch()
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while not (folder / f"{name}.go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
