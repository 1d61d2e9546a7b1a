"""Shared pieces of the mount benchmarks: a fresh ARTIFACTFS_HOME, a mount
daemon in a subprocess (always unmounted), pyfuse3's own
``examples/passthroughfs.py`` over the same files (the floor: what the
binding allows), the daemon's request counts, timed sequential reads, and
the kernel cache knob. Not a benchmark itself."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from artifactfs.mount.daemon import mounted_at

MiB = 1 << 20
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # servers.py: the real moto server


def fresh_home() -> Path:
    """A new ARTIFACTFS_HOME for this run, removed when the process exits."""
    home = Path(tempfile.mkdtemp(prefix="artifactfs-mount-bench-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ["ARTIFACTFS_HOME"] = str(home)
    os.environ.pop("ARTIFACTFS_INDEX_URL", None)
    os.environ.pop("ARTIFACTFS_STORE", None)
    return home


def scratch(prefix: str) -> Path:
    """A scratch folder removed when the process exits (mounts are gone by then)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    return work


def is_mounted(path: Path) -> bool:
    return mounted_at(path) is not None


def unmount(path: Path) -> None:
    for args in (["fusermount3", "-u"], ["fusermount3", "-uz"], ["fusermount", "-uz"]):
        if not is_mounted(path):
            return
        subprocess.run([*args, str(path)], capture_output=True, timeout=60)
        deadline = time.monotonic() + 10
        while is_mounted(path) and time.monotonic() < deadline:
            time.sleep(0.05)


@contextmanager
def artifactfs_mount(path: Path, *extra: str, cache_dir: Path | None = None, source: Path | None = None):
    """An artifactfs mount of the current home at ``path``, in the foreground
    in a subprocess; unmounted at the end whatever happens. ``source``: run
    the artifactfs source tree there (its ``src`` folder) instead of the
    one imported here, to compare two versions in one run."""
    path.mkdir(parents=True, exist_ok=True)
    log = path.with_name(path.name + ".log")
    argv = [sys.executable, "-m", "artifactfs.cli.mount", str(path), "--foreground",
            "--cache-dir", str(cache_dir or path.with_name(path.name + "-cache")), *extra]
    with open(log, "ab") as out:
        env = None if source is None else dict(os.environ, PYTHONPATH=str(source / "src"))
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (is_mounted(path) and os.path.isdir(path / "artifacts")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mount failed:\n{log.read_text()}")
            time.sleep(0.05)
        yield path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        unmount(path)


PASSTHROUGH_ENV = "ARTIFACTFS_PASSTHROUGHFS"  # where a copy of pyfuse3's examples/passthroughfs.py is


def passthroughfs_script() -> Path:
    """pyfuse3's ``examples/passthroughfs.py`` for the installed pyfuse3
    version: ``$ARTIFACTFS_PASSTHROUGHFS``, else a copy fetched earlier into
    the temp folder, else fetched now from pyfuse3's source distribution
    with ``pip download`` (it is not in the wheel, and not vendored here)."""
    import pyfuse3

    given = os.environ.get(PASSTHROUGH_ENV)
    if given:
        return Path(given)
    version = pyfuse3.__version__
    kept = Path(tempfile.gettempdir()) / f"pyfuse3-{version}-examples" / "passthroughfs.py"
    if kept.exists():
        return kept
    download = Path(tempfile.mkdtemp(prefix="pyfuse3-sdist-"))
    try:
        got = subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                              f"pyfuse3=={version}", "-d", str(download)], capture_output=True, text=True, timeout=600)
        archives = list(download.glob("pyfuse3-*.tar.gz"))
        if got.returncode or not archives:
            raise SystemExit(f"cannot fetch pyfuse3 {version}'s source distribution for examples/passthroughfs.py:\n"
                             f"{got.stderr[-1500:]}\nfetch it yourself (pip download --no-binary :all: --no-deps "
                             f"pyfuse3=={version}), extract it and set {PASSTHROUGH_ENV}=<it>/examples/passthroughfs.py")
        with tarfile.open(archives[0]) as sdist:
            member = next(m for m in sdist.getmembers() if m.name.endswith("/examples/passthroughfs.py"))
            data = sdist.extractfile(member).read()
    finally:
        shutil.rmtree(download, ignore_errors=True)
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(data)
    return kept


@contextmanager
def passthrough_mount(source: Path, path: Path):
    """pyfuse3's passthroughfs example mirroring ``source`` at ``path``, as
    it ships (one request at a time, zero entry/attribute timeouts, the
    kernel's default read-ahead); unmounted at the end whatever happens."""
    path.mkdir(parents=True, exist_ok=True)
    log = path.with_name(path.name + ".log")
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, str(passthroughfs_script()), str(source), str(path)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not is_mounted(path):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"passthroughfs failed:\n{log.read_text()}")
            time.sleep(0.05)
        yield path
    finally:
        unmount(path)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def request_counts(mountpoint: Path) -> dict[str, int] | None:
    """The FUSE requests the mount's daemon served so far, by operation; None
    when the artifactfs under test cannot tell (an older one)."""
    from artifactfs.mount import daemon

    if not hasattr(daemon, "request_counts"):
        return None
    return daemon.request_counts(mountpoint)


def requests_between(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, int] | None:
    """The requests served between two ``request_counts``, busiest first."""
    if before is None or after is None:
        return None
    spent = {op: after[op] - before.get(op, 0) for op in after if after[op] - before.get(op, 0)}
    return dict(sorted(spent.items(), key=lambda item: -item[1]))


def median(values) -> float:
    return statistics.median(values)


def read_all(path: Path, block: int = MiB) -> tuple[int, float]:
    """(bytes, seconds) of one sequential read of ``path``."""
    buffer = bytearray(block)
    view = memoryview(buffer)
    total = 0
    began = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            n = os.readv(fd, [view])
            if not n:
                break
            total += n
    finally:
        os.close(fd)
    return total, time.perf_counter() - began


def rate(path: Path, block: int = MiB) -> float:
    size, seconds = read_all(path, block)
    return size / seconds


def best_rate(path: Path, runs: int = 3, block: int = MiB) -> float:
    return max(rate(path, block) for _ in range(runs))


def drop_kernel_caches(what: int = 3) -> bool:
    """Drop the page cache (1), dentries and inodes (2) or both (3); needs root."""
    if what & 1:
        os.sync()  # dirty pages are not dropped
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write(f"{what}\n")
        return True
    except OSError:
        return False


def daemon_pid(mountpoint: Path) -> int:
    """The pid of the daemon serving ``mountpoint``."""
    from artifactfs.mount.daemon import read_record

    return (read_record(mountpoint) or {})["pid"]


def daemon_rss(mountpoint: Path) -> tuple[int, int]:
    """(current, peak) resident bytes of the daemon serving ``mountpoint``."""
    pid = daemon_pid(mountpoint)
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def gbps(value: float) -> str:
    return f"{value / 1e9:.2f} GB/s"


def verdict(ratio: float, target: float, higher_is_better: bool = True) -> str:
    ok = ratio >= target if higher_is_better else ratio <= target
    return "meets" if ok else "MISSES"


def populate_index(artifacts: int, versions: int, files: tuple[str, ...], store_name: str = "default",
                   file_size: int = 1000, root_uri: str | None = None, prefix: str = "a") -> int:
    """Insert ``artifacts`` x ``versions`` live versions straight into the
    index (no payload written: listing and stat never touch a store), each
    with the manifest ``files``; artifacts are named ``<prefix><id:05d>``.
    Returns how many versions were inserted (``tests/bulk_rows.py``)."""
    from artifactfs.index import get_index
    from bulk_rows import insert_live_versions  # tests/ is on sys.path (above)

    return insert_live_versions(get_index(), artifacts, versions, files, store_name, file_size, root_uri, prefix)

