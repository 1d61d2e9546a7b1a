"""Watch a checkpoint folder and hand every complete new checkpoint to a
registration callable, once.

It owns the watching: which direct children of the folder are checkpoints,
when one is complete (no writes for the settle time, or closed after
writing and then quiet briefly), catch-up after a restart, and the order of
registration. It does not register anything itself: the caller passes
``register(path, metadata)`` (the CLI wires it to
``artifactfs.checkpoints.CheckpointRegistrar``, which calls
``register_artifact``), so this layer imports only ``index`` (through
``ledger``) and ``watchdog``.

Completeness is judged three times: by watchdog's events (inotify: created,
modified, moved in, closed after writing), by the entry's own newest
modification time, so that events lost to a queue overflow, or never sent by
a network filesystem, cannot make a half-written checkpoint look complete,
and, where the format says where it ends (zip-based ``torch.save`` files,
safetensors, ``.npy``; ``complete.py``), by reading it: a trainer that died
mid-write leaves a quiet but truncated file, which is reported (a log line
and ``WatchStats.incomplete``), not registered, and looked at again until it
is complete. A periodic rescan of the folder finds entries whose events were
lost.

A symlink among the entries is never followed out of the watched folder:
one that leads outside is refused and reported at once (the registrar's
copy refuses links out of the tree as well; ``stores.localfiles``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from watchdog.events import FileSystemEventHandler

from artifactfs.errors import AlreadyExistsError, ArtifactfsError, PathEscapeError
from artifactfs.watch.complete import incomplete_reason
from artifactfs.watch.ledger import Ledger, normalize
from artifactfs.watch.names import is_candidate, metadata_from_name

log = logging.getLogger("artifactfs.watch")

#: ``register(path, metadata)``: registers one checkpoint, returns something
#: printable (the new version). Raising ``AlreadyExistsError`` means "someone
#: else registered it": the watcher then counts it as done.
Register = Callable[[str, dict[str, Any]], Any]

#: After a close-after-write (or a move into the folder) a file entry still
#: waits this long without events, in case the writer opens it again.
CLOSE_QUIET = 1.0
#: A failing registration is retried this many times (after the settle time).
MAX_ATTEMPTS = 3
#: An mtime further in the future than this is a skewed clock: trust events only.
CLOCK_SKEW = 60.0


@dataclass
class _Pending:
    path: str
    last_event: float  # monotonic time of the last write seen for the entry
    closed: bool = False  # the last event was a close-after-write or a move in
    attempts: int = 0
    incomplete: bool = False  # quiet, but its format says it is cut short: look again later


@dataclass(frozen=True)
class Registered:
    path: str
    metadata: dict[str, Any]
    result: Any


@dataclass
class WatchStats:
    registered: list[Registered] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already registered (found at catch-up or by others)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, error) after MAX_ATTEMPTS
    #: Quiet entries whose format says they are cut short: path -> why. An
    #: entry leaves it when it completes (and is registered).
    incomplete: dict[str, str] = field(default_factory=dict)


class Watcher:
    """Registers each new checkpoint file or folder directly under ``folder``.

    Args:
        folder: the local folder the training loop writes checkpoints into.
        register: called once per complete checkpoint, in the order they completed.
        ledger: tells which paths are already registered (restart safety).
        pattern: shell pattern a checkpoint's name must match (hidden and
            temporary names such as ``*.tmp`` never match).
        settle: seconds without writes after which an entry is complete.
        rescan: seconds between full listings of the folder (lost events).
        warn_changes: warn when an entry registered in place changes later
            (with ``--copy`` the copy is safe, so the caller turns this off).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        register: Register,
        ledger: Ledger,
        pattern: str = "*",
        settle: float = 5.0,
        rescan: float = 30.0,
        warn_changes: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = normalize(folder)
        if not os.path.isdir(self.folder):
            raise ArtifactfsError(f"{self.folder} is not a folder", "create it, or pass the folder checkpoints go to")
        self.register = register
        self.ledger = ledger
        self.pattern = pattern
        self.settle = max(0.0, float(settle))
        self.rescan_interval = max(rescan, self.settle)
        self.clock = clock
        self.warn_changes = warn_changes
        self.stats = WatchStats()
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._done: dict[str, bool] = {}  # path -> registered in place by us (warn when it changes)
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._last_rescan = float("-inf")

    # -- events (called on watchdog's thread) -----------------------------------------

    def entry_of(self, path: str) -> str | None:
        """The direct child of the folder that ``path`` is or lies in, if it is a candidate."""
        path = normalize(path)
        prefix = self.folder.rstrip("/") + "/"
        if not path.startswith(prefix):
            return None
        name = path[len(prefix):].split("/", 1)[0]
        return prefix + name if is_candidate(name, self.pattern) else None

    def touched(self, path: str, closed: bool = False) -> None:
        """Something was written at ``path``; ``closed``: a writer closed it or moved it in."""
        entry = self.entry_of(path)
        if entry is None:
            return
        with self._lock:
            if entry in self._done:
                self._changed_after_registration(entry)
                return
            pending = self._pending.get(entry)
            if pending is None:
                pending = self._pending[entry] = _Pending(entry, self.clock())
            pending.last_event = self.clock()
            # A close only completes a file entry; in a folder more files may follow.
            pending.closed = closed and normalize(path) == entry
            pending.incomplete = False  # written again: the trainer may be finishing it

    def removed(self, path: str) -> None:
        entry = self.entry_of(path)
        if entry is None or normalize(path) != entry:
            return
        with self._lock:
            self._pending.pop(entry, None)
            adopted = self._done.get(entry) and self.warn_changes
        if adopted:  # keep-top-k trainers do this; the row stays and fsck lists it
            log.info("%s was deleted after it was registered in place; `artifactfs fsck` lists the version", entry)

    def _changed_after_registration(self, entry: str) -> None:
        if self.warn_changes and self._done[entry] and entry not in self._warned:
            self._warned.add(entry)
            log.warning(
                "%s changed after it was registered in place; `artifactfs fsck` reports it "
                "(watch with --copy if the trainer rewrites checkpoints)", entry,
            )

    # -- scanning and registering -----------------------------------------------------

    def scan(self) -> None:
        """List the folder: every candidate not yet known becomes pending, aged by
        its newest modification time (so what completed while the watcher was
        down is registered at once)."""
        self._last_rescan = self.clock()
        try:
            names = sorted(os.listdir(self.folder))
        except FileNotFoundError:
            log.warning("watched folder %s has disappeared", self.folder)
            return
        for name in names:
            if not is_candidate(name, self.pattern):
                continue
            entry = os.path.join(self.folder, name)
            with self._lock:
                if entry in self._done or entry in self._pending:
                    continue
            if self.ledger.known(entry):
                with self._lock:
                    self._done[entry] = False
                self.stats.skipped.append(entry)
                continue
            newest = _newest_mtime(entry)
            if newest is None:
                continue
            age = max(0.0, time.time() - newest)
            with self._lock:
                self._pending.setdefault(entry, _Pending(entry, self.clock() - age))

    def ready(self) -> list[str]:
        """Pending entries that are complete now, in the order they were last written."""
        now, wall = self.clock(), time.time()
        found = []
        with self._lock:
            pending = list(self._pending.values())
        for item in pending:
            quiet_needed = min(CLOSE_QUIET, self.settle) if item.closed else self.settle
            if item.incomplete:  # nothing was written since it was found cut short: look now and then
                quiet_needed = max(CLOSE_QUIET, self.settle)
            if now - item.last_event < quiet_needed:
                continue
            newest = _newest_mtime(item.path)
            if newest is None:  # deleted before it completed
                with self._lock:
                    self._pending.pop(item.path, None)
                continue
            if not item.closed and wall - newest < self.settle and newest - wall <= CLOCK_SKEW:
                with self._lock:  # a write whose event was lost: wait from that write on
                    item.last_event = now - max(0.0, wall - newest)
                continue
            if self._complete(item, now):
                found.append((newest, item.path))
        return [path for _, path in sorted(found)]

    def _complete(self, item: _Pending, now: float) -> bool:
        """Whether the entry's format (where it has one) says it is whole;
        reports it once per reason when not, and looks again later."""
        try:
            reason = incomplete_reason(item.path)
        except FileNotFoundError:
            return True  # gone: _register_one says so
        except OSError as exc:
            reason = f"cannot be read: {exc}"
        with self._lock:
            if reason is None:
                if self.stats.incomplete.pop(item.path, None) is not None:
                    log.info("%s is complete now", item.path)
                return True
            item.incomplete, item.last_event = True, now
            reported = self.stats.incomplete.get(item.path)
            self.stats.incomplete[item.path] = reason
        if reported != reason:
            log.warning("%s is not complete, not registered: %s (did the trainer stop mid-write? "
                        "it is checked again until it is complete)", item.path, reason)
        return False

    def poll(self) -> list[Registered]:
        """Register every entry that is complete now; returns what was registered."""
        if self.clock() - self._last_rescan >= self.rescan_interval:
            self.scan()
        done = []
        for path in self.ready():
            if self._stop.is_set():
                break
            result = self._register_one(path)
            if result is not None:
                done.append(result)
        return done

    def _register_one(self, path: str) -> Registered | None:
        metadata = metadata_from_name(os.path.basename(path))
        with self._lock:
            pending = self._pending.get(path)
            if pending is None:
                return None
            seen = pending.last_event
        try:
            self._refuse_link_out(path)
            if self.ledger.known(path):  # registered by someone else meanwhile
                raise AlreadyExistsError(f"{path} is already registered")
            result = self.register(path, metadata)
        except AlreadyExistsError:
            with self._lock:
                self._pending.pop(path, None)
                self._done[path] = False
            self.stats.skipped.append(path)
            log.info("%s is already registered; skipped", path)
            return None
        except FileNotFoundError:
            with self._lock:
                self._pending.pop(path, None)
            log.info("%s disappeared before it could be registered", path)
            return None
        except PathEscapeError as exc:  # a link out of the tree: trying again cannot help
            pending.attempts = MAX_ATTEMPTS - 1
            return self._failed(pending, exc)
        except Exception as exc:  # noqa: BLE001 - keep watching; retry later
            return self._failed(pending, exc)
        self.ledger.add(path)
        with self._lock:
            self._pending.pop(path, None)
            self._done[path] = True
            written_meanwhile = pending.last_event != seen
        if written_meanwhile and self.warn_changes:
            log.warning("%s was written to while it was being registered; `artifactfs fsck` will tell "
                        "whether its manifest still matches (raise --settle)", path)
        registered = Registered(path, metadata, result)
        self.stats.registered.append(registered)
        details = ", ".join(f"{k}={v}" for k, v in metadata.items())
        log.info("registered %s as %s%s", path, result, f" ({details})" if details else "")
        return registered

    def _refuse_link_out(self, path: str) -> None:
        """An entry that is a symlink leading out of the watched folder (another
        user's ``ln -s /etc/shadow epoch=1.ckpt``) is never registered."""
        if not os.path.islink(path):
            return
        target, root = os.path.realpath(path), os.path.realpath(self.folder)
        if os.path.commonpath([target, root]) != root:
            raise PathEscapeError(
                f"{path} is a symlink to {target}, outside the watched folder {self.folder}; not registered",
                "checkpoints must be files or folders inside the watched folder; remove the link",
            )

    def _failed(self, pending: _Pending, exc: Exception) -> None:
        message = exc.message if isinstance(exc, ArtifactfsError) else f"{type(exc).__name__}: {exc}"
        with self._lock:
            pending.attempts += 1
            pending.last_event = self.clock()  # retry after another settle time
            if pending.attempts >= MAX_ATTEMPTS:
                self._pending.pop(pending.path, None)
                self._done[pending.path] = False
                self.stats.failed.append((pending.path, message))
                log.error("giving up on %s after %d attempts: %s", pending.path, pending.attempts, message)
                return None
        log.warning("could not register %s (attempt %d): %s", pending.path, pending.attempts, message)
        return None

    # -- running ------------------------------------------------------------------------

    def catch_up(self) -> list[Registered]:
        """One pass without watching: register what is complete now (``--once``)."""
        self.scan()
        registered = self.poll()
        with self._lock:
            waiting = sorted(p for p in self._pending if p not in self.stats.incomplete)
        for path in waiting:
            log.info("%s is still being written; not registered", path)
        return registered

    def run(self, observer_factory: Callable[[], Any] | None = None) -> WatchStats:
        """Watch until :meth:`stop`: catch up first, then follow events."""
        from watchdog.observers import Observer

        observer = (observer_factory or Observer)()
        observer.schedule(_Handler(self), self.folder, recursive=True)
        observer.start()
        try:
            self.scan()
            tick = max(0.05, min(0.5, self.settle / 4 if self.settle else 0.05, CLOSE_QUIET))
            while not self._stop.is_set():
                self.poll()
                self._stop.wait(tick)
        finally:
            observer.stop()
            observer.join(timeout=10)
        return self.stats

    def stop(self) -> None:
        self._stop.set()

    @property
    def pending(self) -> list[str]:
        with self._lock:
            return sorted(self._pending)


class _Handler(FileSystemEventHandler):
    """Forwards watchdog events to the watcher (reads of our own are ignored)."""

    def __init__(self, watcher: Watcher) -> None:
        super().__init__()
        self.watcher = watcher

    def dispatch(self, event) -> None:
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        if kind in ("created", "modified", "attrib"):
            self.watcher.touched(src)
        elif kind == "closed":  # closed after writing (IN_CLOSE_WRITE)
            self.watcher.touched(src, closed=True)
        elif kind == "moved":
            self.watcher.removed(src)
            self.watcher.touched(os.fsdecode(event.dest_path), closed=True)
        elif kind == "deleted":
            self.watcher.removed(src)
        # "opened" and "closed_no_write" are reads (ours included): not activity.


def _newest_mtime(path: str) -> float | None:
    """The newest modification time of a file, or of a folder and all below it."""
    try:
        newest = os.stat(path).st_mtime
        if os.path.isdir(path) and not os.path.islink(path):
            for current, dirs, files in os.walk(path):
                for name in dirs + files:
                    try:
                        newest = max(newest, os.lstat(os.path.join(current, name)).st_mtime)
                    except FileNotFoundError:
                        continue
        return newest
    except FileNotFoundError:
        return None


__all__ = ["Register", "Registered", "WatchStats", "Watcher"]
