"""Fault-injection points for crash and race tests: ``ARTIFACTFS_FAULT=<point>``
makes the process kill itself with SIGKILL when it reaches that point, as a
power cut or the OOM killer would; :func:`fault_action` makes a test run
code of its own there (an attacker swapping a file between a check and an
open), so an interleaving is forced, never hoped for.
``ARTIFACTFS_PAUSE=<point>=<folder>`` makes another process stop there: it
creates ``<folder>/<point>.reached`` and waits until ``<folder>/<point>.go``
exists, so a test can run something else at exactly that moment (a save
paused before its commit while the pruner runs). Unset, a point costs three
dict lookups."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

PAUSE_LIMIT_S = 600.0  # a forgotten test must not hang a process forever
_actions: dict[str, Callable[[], None]] = {}


def fault_point(name: str) -> None:
    action = _actions.get(name)
    if action is not None:
        action()
    if os.environ.get("ARTIFACTFS_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    pause = os.environ.get("ARTIFACTFS_PAUSE")
    if pause and pause.partition("=")[0] == name:
        _rendezvous(Path(pause.partition("=")[2]), name)


def _rendezvous(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.reached").write_text(str(os.getpid()))
    go = folder / f"{name}.go"
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


@contextlib.contextmanager
def fault_action(name: str, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` (in this process) each time ``fault_point(name)`` is reached."""
    _actions[name] = action
    try:
        yield
    finally:
        _actions.pop(name, None)
