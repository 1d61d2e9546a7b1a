"""The mount's lifecycle: check the mountpoint, mount, serve in one trio
nursery (FUSE requests, index refresh, cache map flushes, signals), unmount
cleanly on SIGINT/SIGTERM or when unmounted from outside; plus what the
command line needs around it: a record per mount (pid, log), the list of
artifactfs mounts from /proc/mounts, starting a detached daemon and
waiting until its mount is live, and stopping one. SIGUSR1 makes a daemon
write the FUSE requests it has served, by operation, beside its record
(:func:`request_counts` asks and reads them).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from artifactfs.errors import ArtifactfsError, ConfigError
from artifactfs.settings import get_settings, private_dir
from artifactfs.stores.secrets import install_log_redaction

log = logging.getLogger("artifactfs.mount")

FS_TYPE = "fuse.artifactfs"
FS_NAME = "artifactfs"
READ_AHEAD_KB = 4096  # measured: 4 MiB first reads 1.5x faster than 1 MiB (bench/mount_local.py)


class MountError(ArtifactfsError):
    """The mountpoint cannot be used, or a mount did not come up or go away."""


@dataclass(frozen=True)
class MountOptions:
    mountpoint: str
    cache_dir: str | None = None
    cache_size: int = 20 << 30
    allow_other: bool = False
    refresh: float = 1.0
    timeout: float = 30.0
    local_reads: str = "auto"  # or "inline" / "thread" (see reader.Reader._read_local)
    read_ahead_kb: int = READ_AHEAD_KB
    max_tasks: int = 64
    clean_dead: bool = False  # clean up a dead artifactfs mount at the mountpoint first

    def resolved_cache_dir(self) -> Path:
        """The remote-read cache folder: the one given, else ``mount`` in the cache folder."""
        return Path(self.cache_dir) if self.cache_dir else get_settings().cache_dir / "mount"


# -- mounts on this machine --------------------------------------------------------------------------


@dataclass(frozen=True)
class MountInfo:
    mountpoint: str
    source: str
    options: str
    pid: int | None = None
    log_path: str | None = None
    started: float | None = None


def _unescape_mounts(field_text: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field_text = field_text.replace(code, char)
    return field_text


def mounted_at(mountpoint: str | os.PathLike) -> tuple[str, str] | None:
    """``(fs type, source)`` of what is mounted at ``mountpoint``, or None."""
    target = os.path.abspath(mountpoint)
    found = None
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            source, point, fstype, *_ = line.split(" ")
            if _unescape_mounts(point) == target:
                found = (fstype, _unescape_mounts(source))  # the last mount on a point is the visible one
    return found


def list_mounts() -> list[MountInfo]:
    """Every artifactfs mount of this machine, with pid and log when known."""
    found = []
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            source, point, fstype, options, *_ = line.split(" ")
            if fstype != FS_TYPE:
                continue
            point = _unescape_mounts(point)
            record = read_record(point) or {}
            pid = record.get("pid")
            if pid is not None and not _alive(pid):
                pid = None
            found.append(MountInfo(point, _unescape_mounts(source), options, pid, record.get("log_path"),
                                   record.get("started")))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def daemon_pid(mountpoint: str | os.PathLike) -> int | None:
    """The pid of the live artifactfs daemon recorded for ``mountpoint``."""
    pid = (read_record(mountpoint) or {}).get("pid")
    if not pid or not _alive(pid):
        return None
    try:  # a recycled pid is not our daemon
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if b"artifactfs" not in cmdline.read():
                return None
    except OSError:
        pass
    return pid


def _not_connected(path: Path, wait: float = 2.0) -> bool:
    """Whether the mount at ``path`` answers ENOTCONN (its daemon is gone).
    Asked with statfs, which the kernel never answers from its caches (a
    stat may be), from a helper thread: a stopped daemon would never answer."""
    import threading

    outcome: list[int] = []

    def ask() -> None:
        try:
            os.statvfs(path)
            outcome.append(0)
        except OSError as exc:
            outcome.append(exc.errno or 0)

    threading.Thread(target=ask, daemon=True).start()
    deadline = time.monotonic() + wait
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(outcome) and outcome[0] == errno.ENOTCONN


def is_dead(mountpoint: str | os.PathLike) -> bool:
    """Whether an artifactfs mount is left without its daemon (killed): no
    live daemon is recorded for it and the kernel says ENOTCONN."""
    path = Path(os.path.abspath(mountpoint))
    current = mounted_at(path)
    if current is None or current[0] != FS_TYPE or daemon_pid(path) is not None:
        return False
    return _not_connected(path)


def check_mountpoint(mountpoint: str | os.PathLike, clean_dead: bool = False) -> Path:
    """The absolute mountpoint, or a MountError saying why it cannot be used.
    ``clean_dead``: a dead artifactfs mount there is cleaned up first."""
    path = Path(os.path.abspath(mountpoint))
    current = mounted_at(path)
    if current is not None and current[0] == FS_TYPE and is_dead(path):
        if not clean_dead:
            record = read_record(path) or {}
            pid = f", pid {record['pid']}," if record.get("pid") else ""
            raise MountError(f"{path} holds a dead artifactfs mount (its daemon{pid} is gone)",
                             f"clean it up with `artifactfs umount {path}`, or mount again with "
                             f"`artifactfs mount --clean-dead {path}`")
        _detach(path, lazy=True)
        _record_path(path).unlink(missing_ok=True)
        current = mounted_at(path)
    if current is not None:
        what = "an artifactfs mount" if current[0] == FS_TYPE else f"a {current[0]} file system"
        raise MountError(f"{path} is already a mountpoint ({what})",
                         f"unmount it first with `artifactfs umount {path}`, or pick another folder")
    if not path.is_dir():
        raise MountError(f"mountpoint {path} is not a folder" if path.exists() else f"mountpoint {path} does not exist",
                         f"create an empty folder: mkdir -p {path}")
    if any(path.iterdir()):
        raise MountError(f"mountpoint {path} is not empty", "mount on an empty folder")
    return path


# -- records: pid and log of a mount, for `umount` and `--status` ------------------------------------


def _records_dir() -> Path:
    return get_settings().data_dir / "mounts"


def _record_path(mountpoint: str | os.PathLike) -> Path:
    digest = hashlib.sha256(os.path.abspath(mountpoint).encode()).hexdigest()[:16]
    return _records_dir() / f"{digest}.json"


def log_path_for(mountpoint: str | os.PathLike) -> Path:
    """The log file of the daemon serving ``mountpoint`` (in the data folder, named after the mount point)."""
    digest = hashlib.sha256(os.path.abspath(mountpoint).encode()).hexdigest()[:16]
    slug = "".join(c if c.isalnum() else "-" for c in os.path.abspath(mountpoint).strip("/"))[-40:]
    return get_settings().data_dir / "logs" / f"mount-{slug}-{digest[:8]}.log"


def read_record(mountpoint: str | os.PathLike) -> dict | None:
    """What the daemon serving ``mountpoint`` recorded about itself (pid, options), or None."""
    try:
        return json.loads(_record_path(mountpoint).read_text())
    except (OSError, ValueError):
        return None


def _write_record(mountpoint: Path, log_path: str | None) -> None:
    path = _record_path(mountpoint)
    private_dir(path.parent)
    record = {"mountpoint": str(mountpoint), "pid": os.getpid(), "log_path": log_path, "started": time.time()}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def _remove_record(mountpoint: Path) -> None:
    record = read_record(mountpoint)
    if record and record.get("pid") == os.getpid():
        _record_path(mountpoint).unlink(missing_ok=True)
        _requests_path(mountpoint).unlink(missing_ok=True)


def _requests_path(mountpoint: str | os.PathLike) -> Path:
    return _record_path(mountpoint).with_suffix(".requests.json")


def _write_requests(mountpoint: Path, counts: dict[str, int]) -> None:
    path = _requests_path(mountpoint)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(counts, sort_keys=True))
    os.replace(tmp, path)


def request_counts(mountpoint: str | os.PathLike, timeout: float = 10.0) -> dict[str, int]:
    """The FUSE requests the daemon of ``mountpoint`` has served since it
    mounted, by operation (``lookup``, ``open``, ``read``, ...): it is sent
    SIGUSR1 and writes them beside its record. For benchmarks and tests."""
    pid = daemon_pid(mountpoint)
    if pid is None:
        raise MountError(f"no live artifactfs daemon is recorded for {mountpoint}", "see `artifactfs mount --status`")
    path = _requests_path(mountpoint)
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.01)
    raise MountError(f"the daemon of {mountpoint} (pid {pid}) did not report its requests within {timeout:g} s",
                     "see its log")


# -- kernel read-ahead -----------------------------------------------------------------------------------


def _device_of(mountpoint: Path) -> str | None:
    """``major:minor`` of the mount, from mountinfo (stat would ask ourselves)."""
    target = str(mountpoint)
    found = None
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split(" ")
            if _unescape_mounts(fields[4]) == target:
                found = fields[2]
    return found


def raise_read_ahead(mountpoint: Path, kb: int = READ_AHEAD_KB) -> bool:
    """Make the kernel ask for ``kb`` KiB per read-ahead request on this mount."""
    if os.geteuid() != 0:
        log.info("not running as root: the kernel read-ahead of this mount stays at its default "
                 "(128 KiB), large sequential reads are slower; run as root to raise it to %d KiB", kb)
        return False
    device = _device_of(mountpoint)
    sysfs = Path(f"/sys/class/bdi/{device}/read_ahead_kb")
    try:
        sysfs.write_text(str(kb))
        now = int(sysfs.read_text())
    except (OSError, ValueError) as exc:
        log.warning("cannot raise the read-ahead of %s through %s: %s", mountpoint, sysfs, exc)
        return False
    log.info("kernel read-ahead of %s (bdi %s) is %d KiB", mountpoint, device, now)
    return now == kb


# -- serving ----------------------------------------------------------------------------------------------


def run(options: MountOptions, log_path: str | None = None) -> None:
    """Mount and serve until unmounted or signalled (blocks)."""
    import pyfuse3

    from artifactfs.index import get_index
    from artifactfs.mount.cache import BlockCache, CacheInUse
    from artifactfs.mount.fs import Tree
    from artifactfs.mount.fuse import Operations, Timeouts
    from artifactfs.mount.reader import Stores
    from artifactfs.mount.remote import keep_piece_buffers

    keep_piece_buffers()  # before the stores' client threads start
    mountpoint = check_mountpoint(options.mountpoint, options.clean_dead)
    # Until trio listens for signals, SIGTERM must still end in the clean-up below.
    signal.signal(signal.SIGTERM, _interrupt)
    index = get_index()
    stores = Stores(index, recheck=options.refresh)
    _prepare(stores)
    tree = Tree(index, uid=os.getuid(), gid=os.getgid())
    try:
        cache = BlockCache(options.resolved_cache_dir() / "blocks", options.cache_size)
    except CacheInUse as exc:
        raise MountError(str(exc), "give each mount its own --cache-dir") from None
    except (OSError, ConfigError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else exc.message
        hint = getattr(exc, "hint", None) or ("pass --cache-dir DIR in a writable folder (ARTIFACTFS_HOME or "
                                              "XDG_CACHE_HOME move the default)")
        raise MountError(f"cannot use the mount's cache folder {options.resolved_cache_dir()}: {why}", hint) from None
    ops = Operations(tree, Timeouts(moving=options.refresh))
    fuse_options = {f"fsname={FS_NAME}", "subtype=artifactfs", "ro", "default_permissions"}
    if options.allow_other:
        fuse_options.add("allow_other")
    try:
        pyfuse3.init(ops, str(mountpoint), fuse_options)
    except RuntimeError as exc:
        cache.close()
        hint = "check that /dev/fuse exists and that you may use it"
        if options.allow_other and os.geteuid() != 0:
            hint = "--allow-other needs `user_allow_other` in /etc/fuse.conf"
        raise MountError(f"cannot mount {mountpoint}: {exc} (fusermount3's message is above)", hint) from None
    try:  # from here on, whatever happens ends with an unmount
        _write_record(mountpoint, log_path)
        log.info("mounted %s (index %r, cache %s, %d bytes max)", mountpoint, index, cache.root, cache.capacity)
        trio.run(_serve, ops, cache, options, mountpoint, stores)
    finally:
        try:
            pyfuse3.close(unmount=True)
        finally:
            cache.close()
            _remove_record(mountpoint)
            log.info("unmounted %s", mountpoint)


def _prepare(stores, timeout: float = 10.0) -> None:
    """Open every store's client before mounting (imports, client set-up),
    so the first reads do not pay for it; bounded, as a store whose client
    set-up hangs must not keep the mount from coming up."""
    import threading

    worker = threading.Thread(target=stores.warm_up, name="prepare stores", daemon=True)
    began = time.monotonic()
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        log.warning("preparing the stores' clients takes longer than %g s: mounting anyway", timeout)
    else:
        log.info("stores ready in %.1f s", time.monotonic() - began)


async def _serve(ops, cache, options: MountOptions, mountpoint: Path, stores) -> None:
    import pyfuse3

    from artifactfs.mount.reader import Reader, ReaderConfig

    async with trio.open_nursery() as nursery:
        ops.reader = Reader(ops.tree.index, cache, nursery,
                            ReaderConfig(timeout=options.timeout, local_reads=options.local_reads), stores)
        nursery.start_soon(_on_signals, nursery.cancel_scope, ops, mountpoint)
        nursery.start_soon(_logged, _after_init, ops, mountpoint, options.read_ahead_kb)
        nursery.start_soon(ops.refresh_loop, options.refresh)
        nursery.start_soon(_logged, _flush_loop, cache)
        nursery.start_soon(_logged, trio.to_thread.run_sync, cache.scan)
        try:
            await pyfuse3.main(min_tasks=4, max_tasks=options.max_tasks)
        finally:
            ops.reader.close()
        log.info("%s was unmounted from outside (requests served: %s)", mountpoint, dict(ops.requests))
        nursery.cancel_scope.cancel()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


async def _logged(fn, *args) -> None:
    """Run a helper task; its failure is logged, not fatal to the mount."""
    try:
        await fn(*args)
    except Exception:
        log.exception("%s failed (the mount goes on)", getattr(fn, "__name__", fn))


async def _on_signals(scope: trio.CancelScope, ops, mountpoint: Path) -> None:
    """SIGINT, SIGTERM: unmount; SIGUSR1: write the request counts out."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGUSR1) as signals:
        async for signum in signals:
            if signum == signal.SIGUSR1:
                counts = dict(ops.requests)
                log.info("requests served so far: %s", counts)
                await trio.to_thread.run_sync(_write_requests, mountpoint, counts)
                continue
            log.info("%s received: unmounting (requests served: %s)", signal.Signals(signum).name,
                     dict(ops.requests))
            scope.cancel()
            return


async def _after_init(ops, mountpoint: Path, kb: int) -> None:
    await ops.initialized.wait()
    await trio.sleep(0.05)  # the INIT reply is processed: it would cap a higher value
    raise_read_ahead(mountpoint, kb)


async def _flush_loop(cache, interval: float = 5.0) -> None:
    while True:
        await trio.sleep(interval)
        await trio.to_thread.run_sync(cache.flush)


# -- background start and stop ----------------------------------------------------------------------------


def wait_until_mounted(mountpoint: Path, proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    """Until ``mountpoint`` answers as an artifactfs mount; MountError if the
    daemon exits first or it takes longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise MountError(f"the mount daemon exited with code {proc.returncode} before {mountpoint} was ready")
        current = mounted_at(mountpoint)
        if current is not None and current[0] == FS_TYPE:
            try:
                os.stat(mountpoint / "artifacts")
                return
            except OSError:
                pass
        time.sleep(0.05)
    raise MountError(f"{mountpoint} was not mounted within {timeout:g} s")


def spawn(argv: list[str], mountpoint: Path, log_path: Path) -> subprocess.Popen:
    """Start ``argv`` as a detached daemon writing to ``log_path``."""
    private_dir(log_path.parent)
    # Owner-only: the log names stores, objects and paths.
    with open(log_path, "ab", opener=lambda p, flags: os.open(p, flags, 0o600)) as log_file:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True, cwd="/", close_fds=True,
        )


class MountInUse(MountError):
    """The mount is in use and was not asked to detach lazily."""


@dataclass(frozen=True)
class Unmounted:
    """What ``unmount`` did: ``dead`` (the daemon was gone, the mount was
    cleaned up), ``lazy`` (detached while in use), and who still used it."""

    path: Path
    pid: int | None
    dead: bool = False
    lazy: bool = False
    users: tuple = ()


def _detach(path: Path, lazy: bool) -> subprocess.CompletedProcess:
    return subprocess.run(["fusermount3", "-uz" if lazy else "-u", str(path)], capture_output=True, text=True)


def unmount(mountpoint: str | os.PathLike, timeout: float = 30.0, lazy: bool = False) -> Unmounted:
    """Unmount an artifactfs mount; its daemon then exits.

    A mount in use is never detached silently: without ``lazy`` it is
    refused (MountInUse, naming the processes); with ``lazy`` it is
    detached and its daemon serves the processes still inside until they
    let go. A mount whose daemon is dead serves no one: it is detached
    whatever uses it.
    """
    from artifactfs.mount.users import users_of

    path = Path(os.path.abspath(mountpoint))
    current = mounted_at(path)
    if current is None or current[0] != FS_TYPE:
        raise MountError(f"{path} is not an artifactfs mount", "see `artifactfs mount --status`")
    pid = daemon_pid(path)
    if pid is None and _not_connected(path):
        users = tuple(users_of(path))
        gone = (read_record(path) or {}).get("pid")
        result = _detach(path, lazy=True)
        if result.returncode != 0:
            raise MountError(f"cannot clean up the dead mount at {path}: {result.stderr.strip()}",
                             f"run `fusermount3 -uz {path}` as its owner or root")
        _record_path(path).unlink(missing_ok=True)
        return Unmounted(path, gone, dead=True, users=users)
    users = tuple(users_of(path)) if lazy else ()  # once detached, their paths no longer name it
    result = _detach(path, lazy)
    if result.returncode != 0:
        users = tuple(users_of(path))
        if "busy" in result.stderr or users:
            listed = "; ".join(str(user) for user in users) or "processes this user cannot see"
            raise MountInUse(f"{path} is in use by {listed}",
                             "close them (or leave the folder) and run umount again, or pass --lazy to detach "
                             "it now: they keep reading until they let go")
        raise MountError(f"fusermount3 -u {path} failed: {result.stderr.strip()}",
                         f"detach it with `artifactfs umount --lazy {path}`")
    if not users:
        _wait_gone(path, pid, timeout)
    return Unmounted(path, pid, lazy=lazy, users=users)


def _wait_gone(path: Path, pid: int | None, timeout: float) -> None:
    """Until the mount is gone and its daemon exited (SIGTERM it after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        still = mounted_at(path)
        if (still is None or still[0] != FS_TYPE) and not (pid and _alive(pid)):
            return
        time.sleep(0.05)
    if pid and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        raise MountError(f"the daemon of {path} (pid {pid}) did not exit within {timeout:g} s after the unmount",
                         f"it was sent SIGTERM; see its log, and `kill -9 {pid}` if it stays")
    raise MountError(f"{path} is still mounted after {timeout:g} s", f"detach it with `fusermount3 -uz {path}`")


def _drop_gone_requests(record: logging.LogRecord) -> bool:
    """pyfuse3 logs an error when a reply finds its request gone (the caller
    was interrupted, or the mount went away meanwhile): nothing to act on."""
    return "failed with No such file or directory" not in record.getMessage()


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr at ``level``, secrets redacted, pyfuse3's own chatter at warnings only."""
    install_log_redaction()  # the daemon is started outside the `artifactfs` group: no password in its log
    logging.basicConfig(
        level=level, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    pyfuse3_log = logging.getLogger("pyfuse3")
    pyfuse3_log.setLevel(logging.WARNING)
    pyfuse3_log.addFilter(_drop_gone_requests)
    logging.getLogger("alembic").setLevel(logging.WARNING)


__all__ = [
    "FS_TYPE",
    "MountError",
    "MountInUse",
    "MountInfo",
    "MountOptions",
    "check_mountpoint",
    "daemon_pid",
    "is_dead",
    "list_mounts",
    "mounted_at",
    "raise_read_ahead",
    "request_counts",
    "run",
    "spawn",
    "unmount",
    "Unmounted",
    "wait_until_mounted",
]
