"""Watch a checkpoint folder and hand every complete new checkpoint to a
registration callable, once per content.

It owns the watching: which direct children of the folder are checkpoints,
when to ask whether one is complete, catch-up after a restart, re-registering
what changed, and the order of registration. It does not register anything
itself: the caller passes ``register(path, metadata, copy)`` (the CLI wires it
to ``artifactfs.checkpoints.CheckpointRegistrar``, which calls
``register_artifact``). It imports ``index`` (through ``ledger``), the format
and writer checks of ``checkpoints.complete`` and ``watchdog``.

Quiet time is not completeness. An entry is registered when

- every file of it that watchdog saw written (created, modified) has been
  closed by its writer since (inotify's ``IN_CLOSE_WRITE``, watchdog's
  closed-file event), or moved in; a close event lost to a queue overflow is
  made up for when ``/proc`` shows no writer;
- nothing was written to it for a short while after that close
  (``CLOSE_QUIET``, at most the settle time) or, for an entry whose writes
  were not seen (found by a scan: catch-up, lost events), for the settle time
  by its own newest modification time;
- ``checkpoints.complete`` says it is complete: no process holds it open for
  writing, a folder has its completion signal (every file closed, the
  default; or a marker file such as ``COMPLETE``), and formats that say where
  they end (zip-based ``torch.save`` files, safetensors, ``.npy``) are whole.
  A checkpoint that fails this is reported (a log line and
  ``WatchStats.incomplete``), not registered, and looked at again.

A folder whose trainer pauses between its files longer than the settle time
needs a marker: with ``closed`` it would be complete in every pause.

An entry that changes after it was registered (``last.ckpt`` rewritten in
place, ``best.ckpt`` replaced) is new content: once complete again it is
registered as a new version, as a copy (the version adopted in place now
holds other bytes, which ``artifactfs fsck`` reports). Each version records
the :func:`ledger.stamp` of what it was registered from, so a restarted
watcher registers only content it has not registered before.

A periodic rescan of the folder finds entries and changes whose events were
lost. A symlink among the entries is never followed out of the watched
folder: one that leads outside is refused and reported at once (the
registrar's copy refuses links out of the tree as well; ``stores.localfiles``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from watchdog.events import FileSystemEventHandler

from artifactfs.checkpoints.complete import CLOSED, folder_marker, incomplete_reason, open_for_writing
from artifactfs.errors import AlreadyExistsError, ArtifactfsError, PathEscapeError
from artifactfs.watch.ledger import STAMP_KEY, Ledger, Seen, normalize, stamp
from artifactfs.watch.names import is_candidate, metadata_from_name

log = logging.getLogger("artifactfs.watch")

#: ``register(path, metadata, copy)``: registers one checkpoint, returns
#: something printable (the new version); ``copy`` asks for a copy even when
#: adopting in place (the entry changed after it was registered in place).
#: Raising ``AlreadyExistsError`` means "someone else registered it": the
#: watcher then counts it as done.
Register = Callable[..., Any]

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
    closed: bool = False  # a writer closed (or moved in) what it wrote, and nothing is open since
    attempts: int = 0
    incomplete: bool = False  # quiet, but its format says it is cut short: look again later
    #: Files of the entry seen written (created, modified) and not closed since.
    open_files: set[str] = field(default_factory=set)
    #: Registered before with other content: register this content as a copy.
    rewritten: bool = False


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
        register: called once per complete checkpoint content, in the order they completed.
        ledger: tells which contents are already registered (restart safety).
        pattern: shell pattern a checkpoint's name must match (hidden and
            temporary names such as ``*.tmp`` never match).
        settle: seconds without writes an entry whose writer's close was not
            seen must stay quiet (it must still pass the checks of
            ``checkpoints.complete``).
        folder_complete: a folder's completion signal: ``"closed"`` (every
            file in it closed by its writer and quiet) or the name of a marker
            file the trainer writes last into each folder (``COMPLETE``);
            default: the ``folder_complete`` of ``register`` (a
            ``CheckpointRegistrar``), else ``"closed"``.
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
        folder_complete: str | None = None,
    ) -> None:
        self.folder = normalize(folder)
        if not os.path.isdir(self.folder):
            raise ArtifactfsError(f"{self.folder} is not a folder", "create it, or pass the folder checkpoints go to")
        self.register = register
        self.ledger = ledger
        self.pattern = pattern
        self.settle = max(0.0, float(settle))
        if folder_complete is None:  # the registrar's own (CheckpointRegistrar(folder_complete=...))
            folder_complete = getattr(register, "folder_complete", CLOSED)
        self.marker = folder_marker(folder_complete)
        self.rescan_interval = max(rescan, self.settle)
        self.clock = clock
        self.warn_changes = warn_changes
        self.stats = WatchStats()
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        #: path -> (stamp of the content registered or found registered, registered in place by us)
        self._done: dict[str, tuple[str | None, bool]] = {}
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

    def touched(self, path: str, closed: bool = False, written: bool = True) -> None:
        """Something happened at ``path``: ``written``, a writer wrote to it
        (it is open until closed); ``closed``, a writer closed it or moved it
        in; neither, its attributes changed. Only a write, or a changed
        :func:`stamp`, makes a registered entry new content."""
        entry = self.entry_of(path)
        if entry is None:
            return
        path = normalize(path)
        if not written:
            with self._lock:
                done = self._done.get(entry)
            if done is not None and stamp(entry) == done[0]:
                return  # a chmod, or a close with nothing written: the registered content is still there
        with self._lock:
            done = self._done.pop(entry, None)
            pending = self._pending.get(entry)
            if pending is None:
                pending = self._pending[entry] = _Pending(entry, self.clock(), rewritten=done is not None)
            pending.last_event = self.clock()
            if closed:
                pending.open_files.discard(path)
            elif written:
                pending.open_files.add(path)
            is_file = path == entry
            # A close completes a file entry; a folder waits for every file it saw written.
            closes_entry = is_file or self.marker is not None
            pending.closed = (closed or pending.closed) and not pending.open_files and closes_entry
            pending.incomplete = False  # written again: the trainer may be finishing it
        if done is not None:
            self._changed_after_registration(entry, in_place=done[1])

    def removed(self, path: str) -> None:
        entry = self.entry_of(path)
        if entry is None:
            return
        path = normalize(path)
        with self._lock:
            if path != entry:
                pending = self._pending.get(entry)
                if pending is not None:  # a file of a folder renamed or deleted: nobody writes it now
                    pending.open_files.discard(path)
                return
            self._pending.pop(entry, None)
            done = self._done.pop(entry, None)
        if done is not None and done[1] and self.warn_changes:  # keep-top-k trainers do this
            log.info("%s was deleted after it was registered in place; `artifactfs fsck` lists the version", entry)

    def _changed_after_registration(self, entry: str, in_place: bool) -> None:
        if self.warn_changes and in_place:
            log.warning(
                "%s changed after it was registered in place: that version no longer holds what it recorded "
                "(`artifactfs fsck` reports it); the new content is registered as a copy once complete "
                "(watch with --copy if the trainer rewrites checkpoints)", entry,
            )
        else:
            log.info("%s changed after it was registered; its new content is registered once complete", entry)

    # -- scanning and registering -----------------------------------------------------

    def scan(self) -> None:
        """List the folder: every candidate whose content is not registered yet
        becomes pending, aged by its newest modification time (so what completed
        while the watcher was down is registered at once)."""
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
            current = stamp(entry)
            with self._lock:
                if entry in self._pending:
                    continue
                done = self._done.get(entry)
            if done is not None:
                if done[0] == current:
                    continue
                self._changed_after_registration(entry, in_place=done[1])  # an event was lost
                seen = Seen.CHANGED
            else:
                seen = self.ledger.seen(entry, current)
            if seen is Seen.KNOWN:
                with self._lock:
                    self._done[entry] = (current, False)
                self.stats.skipped.append(entry)
                continue
            newest = _newest_mtime(entry)
            if newest is None:
                continue
            age = max(0.0, files_now() - newest)
            with self._lock:
                self._done.pop(entry, None)
                self._pending.setdefault(entry, _Pending(entry, self.clock() - age, rewritten=seen is Seen.CHANGED))

    def ready(self) -> list[str]:
        """Pending entries that are complete now, in the order they were last written."""
        now, wall = self.clock(), None  # wall: files_now(), read when first needed
        found = []
        with self._lock:
            pending = list(self._pending.values())
        for item in pending:
            quiet_needed = min(CLOSE_QUIET, self.settle) if item.closed else self.settle
            if item.incomplete:  # nothing was written since it was found cut short: look now and then
                quiet_needed = max(CLOSE_QUIET, self.settle)
            if now - item.last_event < quiet_needed:
                continue
            if item.open_files and not self._close_lost(item):
                continue  # a writer has not closed what it wrote: however quiet, not complete
            newest = _newest_mtime(item.path)
            if newest is None:  # deleted before it completed
                with self._lock:
                    self._pending.pop(item.path, None)
                continue
            if not item.closed:
                wall = files_now() if wall is None else wall  # once per call: it makes a file
                if wall - newest < self.settle and newest - wall <= CLOCK_SKEW:
                    with self._lock:  # a write whose event was lost: wait from that write on
                        item.last_event = now - max(0.0, wall - newest)
                    continue
            if self._complete(item, now):
                found.append((newest, item.path))
        return [path for _, path in sorted(found)]

    def _close_lost(self, item: _Pending) -> bool:
        """Whether the files seen written but never seen closed have no writer
        now (their close event was lost, or they came in a moved-in folder)."""
        writers = open_for_writing(item.path)
        with self._lock:
            still = {path for path in item.open_files if path in writers}
            item.open_files = still
        return not still

    def _complete(self, item: _Pending, now: float) -> bool:
        """Whether ``checkpoints.complete`` says the entry is whole; reports it
        once per reason when not, and looks again later."""
        try:
            reason = incomplete_reason(item.path, self.marker)
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
            log.warning("%s is not complete, not registered: %s (it is checked again until it is complete)",
                        item.path, reason)
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
        with self._lock:
            pending = self._pending.get(path)
            if pending is None:
                return None
            seen_at = pending.last_event
        current = stamp(path)
        metadata = {**metadata_from_name(os.path.basename(path)), STAMP_KEY: current}
        try:
            self._refuse_link_out(path)
            seen = self.ledger.seen(path, current)
            if seen is Seen.KNOWN:  # registered by someone else meanwhile
                raise AlreadyExistsError(f"{path} is already registered")
            as_copy = pending.rewritten or seen is Seen.CHANGED
            result = self.register(path, metadata, copy=True) if as_copy else self.register(path, metadata)
        except AlreadyExistsError:
            with self._lock:
                self._pending.pop(path, None)
                self._done[path] = (current, False)
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
            self._failed(pending, exc)
            return None
        except Exception as exc:  # noqa: BLE001 - keep watching; retry later
            self._failed(pending, exc)
            return None
        self.ledger.add(path, current)
        changed_meanwhile = stamp(path) != current
        with self._lock:
            written_meanwhile = pending.last_event != seen_at or changed_meanwhile
            if self._pending.get(path) is pending:
                del self._pending[path]
            if written_meanwhile:  # what was registered may not be what is there now: register that too
                self._pending[path] = _Pending(path, self.clock(), rewritten=True)
            else:
                self._done[path] = (current, not as_copy)
        if written_meanwhile:  # the writer came back between our checks and the end of the registration
            log.warning("%s was written to while it was being registered as %s: that version may not hold one "
                        "whole checkpoint (`artifactfs fsck --deep` checks it); its new content is registered "
                        "as a copy once complete", path, result)
        registered = Registered(path, metadata, result)
        self.stats.registered.append(registered)
        details = ", ".join(f"{k}={v}" for k, v in metadata.items() if k != STAMP_KEY)
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
        current = stamp(pending.path)
        with self._lock:
            pending.attempts += 1
            pending.last_event = self.clock()  # retry after another settle time
            if pending.attempts >= MAX_ATTEMPTS:
                self._pending.pop(pending.path, None)
                self._done[pending.path] = (current, False)  # tried again only when it changes
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
        if kind in ("created", "modified"):
            self.watcher.touched(src, written=not event.is_directory)  # a file written is open until closed
        elif kind == "attrib":
            self.watcher.touched(src, written=False)
        elif kind == "closed":  # closed after writing (IN_CLOSE_WRITE)
            self.watcher.touched(src, closed=True, written=False)
        elif kind == "moved":
            self.watcher.removed(src)
            self.watcher.touched(os.fsdecode(event.dest_path), closed=True, written=False)
        elif kind == "deleted":
            self.watcher.removed(src)
        # "opened" and "closed_no_write" are reads (ours included): not activity.


def files_now() -> float:
    """Now, on the clock that stamps files' modification times (the
    kernel's), read from a file made for it: a quiet time is an mtime
    measured against it. This process's own clock may run days off (a
    jumped host clock, libfaketime): measured against that, a checkpoint
    written a moment ago would look settled."""
    with tempfile.TemporaryFile() as probe:  # O_TMPFILE where it exists: never a name in any folder
        return os.fstat(probe.fileno()).st_mtime


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
