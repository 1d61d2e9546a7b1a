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

Every point is named once, in :class:`Fault` (where it is and what a test
forces there); naming a point that is not there (a typo in a test, a point
renamed in the code) raises ``ValueError`` instead of silently never firing,
and tests/test_write_protocol.py checks that every ``fault_point`` call in
the code names a member.

Unset, a point costs three dict lookups.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

PAUSE_LIMIT_S = 300.0


class Fault(str, enum.Enum):
    """The fault points, by where they are (``fault_point(Fault.X)`` or its value)."""

    #: api.writing: the write intent is recorded, nothing written yet (write protocol step 1).
    AFTER_WRITE_INTENT = "after_write_intent"
    #: api.writing: copying a user's file into the payload folder, the source open.
    COPY_INTO_OPEN = "copy_into_open"
    #: stores.durable: payload files written, not yet made durable.
    BEFORE_FSYNC = "before_fsync"
    #: api.writing.WriteBatch: payloads and manifest files down, the commit transaction not begun (step 4).
    BEFORE_COMMIT = "before_commit"
    #: index.artifacts: the artifact rows are locked inside the commit transaction.
    ARTIFACTS_LOCKED = "artifacts_locked"
    #: api.artifacts: a cached version about to be linked as a step's input.
    BEFORE_INPUT_LINK = "before_input_link"
    #: index.pipelines: a run's links checked live under their share locks, not yet inserted.
    LINK_CHECKED = "link_checked"
    #: index.generation: the generation bumped, the transaction not committed.
    GENERATION_BUMPED = "generation_bumped"
    #: api.stores: this machine's default store looked up, not yet named.
    DEFAULT_STORE_LOOKED_UP = "default_store_looked_up"
    #: api.stores: this machine's default store named.
    DEFAULT_STORE_NAMED = "default_store_named"
    #: api.migrate: half of a version's payload copied to the target store.
    MIGRATE_MID_COPY = "migrate_mid_copy"
    #: api.migrate (its WriteBatch): the copy is complete and verified, the row not re-pointed.
    MIGRATE_BEFORE_REPOINT = "migrate_before_repoint"
    #: api.migrate: the row re-pointed, the source payload not deleted.
    MIGRATE_BEFORE_DELETE = "migrate_before_delete"
    #: gc.execute: inside the sweep phase, between two batches.
    GC_MID_SWEEP = "gc_mid_sweep"
    #: gc.execute: inside the orphan phase, between two deletions.
    GC_MID_ORPHANS = "gc_mid_orphans"
    #: gc.execute: after each phase of a pass (``gc_after_<phase>``).
    GC_AFTER_RUNS = "gc_after_runs"
    GC_AFTER_CONDEMN = "gc_after_condemn"
    GC_AFTER_SWEEP = "gc_after_sweep"
    GC_AFTER_FORGET = "gc_after_forget"
    GC_AFTER_ORPHANS = "gc_after_orphans"


_NAMES = frozenset(f.value for f in Fault)


def _known(name: str) -> str:
    """The point's name (a member's value), or ValueError for a name that is no point."""
    name = name.value if isinstance(name, Fault) else name
    if name not in _NAMES:
        raise ValueError(f"no fault point {name!r}: the points are artifactfs.faults.Fault ({', '.join(sorted(_NAMES))})")
    return name
_actions: dict[str, Callable[[], None]] = {}
_passed: set[tuple[str, str]] = set()


def fault_point(name: str) -> None:
    """The code reached point ``name`` (a :class:`Fault`): run what a test asked for there."""
    name = name.value if isinstance(name, Fault) else name
    action = _actions.get(name)
    if action is not None:
        action()
    killed = os.environ.get("ARTIFACTFS_FAULT")
    if killed is not None and _known(killed) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    paused = os.environ.get("ARTIFACTFS_PAUSE")
    if paused is not None and _known(paused) == name:
        folder = os.environ["ARTIFACTFS_PAUSE_DIR"]
        if (name, folder) not in _passed:
            _passed.add((name, folder))
            _pause(name, Path(folder))


@contextlib.contextmanager
def fault_action(name: str, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` (in this process) each time ``fault_point(name)`` is reached."""
    _actions[_known(name)] = action
    try:
        yield
    finally:
        _actions.pop(name, None)


def _pause(name: str, folder: Path) -> None:
    (folder / f"{name}.{os.getpid()}.reached").touch()
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while not (folder / f"{name}.go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
