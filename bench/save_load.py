"""Benchmark: small saves with and without durability, a large numpy
array's save and load, each against a baseline measured in the same run on
the same disk.

    python bench/save_load.py [--small 2000] [--array-mib 1024] [--rounds 3]

Small saves (issue 13: >= 550/s with durability) are compared with a plain
loop that writes the same bytes durably (new folder, file, fsync of the
file, the folder and its parent), with the write protocol's own I/O done
by a loop with no Python work (``protocol_floor``: the ceiling of any
implementation of the protocol on this disk) and with artifactfs itself with
durability off (no payload fsync, SQLite synchronous=NORMAL: what saves did
before the write protocol made them durable); then each step of the write
protocol is timed (wall and main-thread CPU, median of ``--small`` saves). The array save (target
>= 0.8) is compared with ``numpy.save`` and with ``numpy.save`` plus fsync
(artifactfs's save is durable); the load, plain and with ``verify=True``
(target >= 0.9), with ``numpy.load``. Every figure is the best of
``--rounds``, the order alternating between rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator

import numpy as np

SMALL = {"lr": 0.01, "epochs": 10, "layers": [64, 32], "name": "mlp"}


@contextlib.contextmanager
def durability_off() -> Iterator[None]:
    """Saves as they were before durability: no payload fsync, SQLite NORMAL
    (for the comparison only; artifactfs has no switch for it)."""
    from artifactfs.api import writing
    from artifactfs.index import db

    class NoSync:
        def wait(self) -> None:
            pass

    set_synchronous, start_sync = db._set_synchronous, writing.start_sync
    db._set_synchronous = lambda conn, level: set_synchronous(conn, "NORMAL")
    writing.start_sync = lambda tasks: NoSync()
    try:
        yield
    finally:
        db._set_synchronous, writing.start_sync = set_synchronous, start_sync


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plain_durable_writes(count: int, workdir: str) -> float:
    """The floor for a durable small save: a fresh folder holding one file,
    made durable with nothing else around it. Files per second."""
    data = json.dumps(SMALL).encode()
    base = tempfile.mkdtemp(dir=workdir, prefix="plain-")
    started = time.perf_counter()
    for i in range(count):
        folder = os.path.join(base, str(i))
        os.mkdir(folder)
        path = os.path.join(folder, "data.json")
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        fsync_path(folder)
        fsync_path(base)
    rate = count / (time.perf_counter() - started)
    shutil.rmtree(base)
    return rate


#: Pages a small save writes to SQLite's log: its intent's transaction, its commit's (migration 0013).
INTENT_PAGES, COMMIT_PAGES = 1, 16
LOG_FRAME = 24 + 4096  # a frame of SQLite's write-ahead log: header and page


def protocol_floor(count: int, workdir: str) -> float:
    """The floor for a durable small save by artifactfs's write protocol: the
    same I/O, with no Python work but the calls. The intent's log pages (not
    synced); a fresh ``<name>/<uuid>/`` folder with one file and the manifest
    file beside it; the four fsyncs (file, folder, manifest file, name
    folder) issued at once on four threads and waited for; then the commit's
    log pages and one fdatasync (SQLite's synchronous=FULL). The log is a
    preallocated file written again from its start every 1,000 pages, as
    SQLite's after a checkpoint. Saves per second."""
    from concurrent.futures import ThreadPoolExecutor

    data, manifest, frame = json.dumps(SMALL).encode(), b"m" * 850, os.urandom(LOG_FRAME)
    base = tempfile.mkdtemp(dir=workdir, prefix="floor-")
    name = os.path.join(base, "params")
    os.mkdir(name)
    fsync_path(base)
    log = os.open(os.path.join(base, "log"), os.O_RDWR | os.O_CREAT, 0o600)
    os.pwrite(log, bytes(LOG_FRAME * 1000), 0)
    os.fsync(log)
    offset = 0

    def append(pages: int) -> None:
        nonlocal offset
        if offset + pages * LOG_FRAME > LOG_FRAME * 1000:
            offset = 0
        for _ in range(pages):
            os.pwrite(log, frame[:24], offset)
            os.pwrite(log, frame[24:], offset + 24)
            offset += LOG_FRAME

    def write(path: str, content: bytes) -> None:
        with open(path, "wb") as f:
            f.write(content)

    with ThreadPoolExecutor(4) as pool:
        started = time.perf_counter()
        for i in range(count):
            append(INTENT_PAGES)
            folder = os.path.join(name, str(i))
            os.mkdir(folder)
            write(os.path.join(folder, "data.json"), data)
            write(folder + ".manifest.json", manifest)
            for job in [pool.submit(fsync_path, p) for p in (os.path.join(folder, "data.json"), folder,
                                                              folder + ".manifest.json", name)]:
                job.result()
            append(COMMIT_PAGES)
            os.fdatasync(log)
        rate = count / (time.perf_counter() - started)
    os.close(log)
    shutil.rmtree(base)
    return rate


def timed_rate(count: int, action: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for i in range(count):
        action(i)
    return count / (time.perf_counter() - started)


def small_artifacts(count: int, rounds: int, workdir: str) -> dict[str, float]:
    from artifactfs import load_artifact, save_artifact

    save_artifact(SMALL, "warmup")  # migrations and imports out of the timing
    best = {"plain": 0.0, "floor": 0.0, "durable": 0.0, "off": 0.0}

    def durable():
        return timed_rate(count, lambda i: save_artifact(SMALL, "params"))

    def off():
        with durability_off():
            return timed_rate(count, lambda i: save_artifact(SMALL, "params"))

    sides = {"plain": lambda: plain_durable_writes(count, workdir), "floor": lambda: protocol_floor(count, workdir),
             "durable": durable, "off": off}
    for attempt in range(rounds):
        order = list(sides) if attempt % 2 == 0 else list(reversed(sides))
        for key in order:
            best[key] = max(best[key], sides[key]())
    best["loads"] = timed_rate(count, lambda i: load_artifact("params", version=i + 1))
    best["steps"] = save_steps(count)
    return best


#: The write protocol's steps as a small save passes them (fault points mark the boundaries).
STEPS = (("after_write_intent", "checks + intent transaction"),
         ("before_commit", "folder + materialize + manifest file"),
         (None, "fsync wait + commit transaction"))


def save_steps(count: int) -> dict[str, tuple[float, float]]:
    """Median wall and main-thread CPU milliseconds of each step of a small
    durable save (``STEPS``)."""
    import statistics

    from artifactfs import save_artifact
    from artifactfs.faults import fault_action

    marks: list[tuple[float, float]] = []

    def mark() -> None:
        marks.append((time.perf_counter(), time.thread_time()))

    samples: dict[str, list[tuple[float, float]]] = {label: [] for _, label in STEPS}
    with contextlib.ExitStack() as stack:
        for point, _ in STEPS[:-1]:
            stack.enter_context(fault_action(point, mark))
        for _ in range(count):
            marks.clear()
            mark()
            save_artifact(SMALL, "steps")
            mark()
            for (_, label), (w0, c0), (w1, c1) in zip(STEPS, marks, marks[1:]):
                samples[label].append(((w1 - w0) * 1000, (c1 - c0) * 1000))
    return {label: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
            for label, got in samples.items()}


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - started
    del result
    return elapsed


def _numpy_save(workdir: str, array: np.ndarray, durable: bool) -> None:
    """``np.save`` to a new file, as a save makes one (rewriting one file
    would reuse its cached pages), then removed; ``durable``: fsynced as a
    save's payload is."""
    path = tempfile.mktemp(dir=workdir, suffix=".npy")
    with open(path, "wb") as f:
        np.save(f, array)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    if durable:
        fsync_path(workdir)
    os.remove(path)


def big_array(mib: int, workdir: str, rounds: int) -> dict[str, float]:
    """Best of ``rounds`` for each side; the order alternates between rounds
    because the first large allocation after a free pays the page faults."""
    from artifactfs import load_artifact, save_artifact

    array = np.random.default_rng(0).random(mib * 1024 * 1024 // 8)
    target = os.path.join(workdir, "native.npy")
    version = save_artifact(array, "big_array")
    np.save(target, array)
    assert np.array_equal(load_artifact("big_array", version=version.version), np.load(target))
    groups = {
        "save": {
            "numpy_save": lambda: _numpy_save(workdir, array, durable=False),
            "numpy_save_fsync": lambda: _numpy_save(workdir, array, durable=True),
            "ours_save": lambda: save_artifact(array, "big_array"),
        },
        "load": {
            "numpy_load": lambda: np.load(target),
            "ours_load": lambda: load_artifact("big_array", version=version.version),
            "ours_load_verify": lambda: load_artifact("big_array", version=version.version, verify=True),
        },
    }
    timings: dict[str, float] = {}
    for attempt in range(rounds):
        for sides in groups.values():
            keys = list(sides) if attempt % 2 == 0 else list(reversed(sides))
            for key in keys:
                timings[key] = min(timings.get(key, float("inf")), _timed(sides[key]))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="number of small saves per round")
    parser.add_argument("--array-mib", type=int, default=1024, help="size of the numpy array")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure (best is kept)")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="artifactfs-bench-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    os.environ["ARTIFACTFS_HOME"] = home
    os.environ.pop("ARTIFACTFS_INDEX_URL", None)
    try:
        s = small_artifacts(args.small, args.rounds, home)
        print(f"small saves, durable:        {s['durable']:7.0f} saves/s (target >= 550), "
              f"{s['durable'] / s['plain']:.2f} of a plain durable write loop ({s['plain']:.0f} files/s)")
        print(f"the write protocol's I/O alone (no Python work): {s['floor']:7.0f} saves/s; artifactfs reaches "
              f"{s['durable'] / s['floor']:.2f} of it")
        print(f"small saves, durability off: {s['off']:7.0f} saves/s; durability costs "
              f"{1 - s['durable'] / s['off']:.0%} ({1000 / s['durable'] - 1000 / s['off']:.2f} ms per save)")
        print(f"small loads:                 {s['loads']:7.0f} loads/s (target >= 830)")
        for label, (wall, cpu) in s["steps"].items():
            print(f"  small save step {label + ':':40s} {wall:6.3f} ms wall, {cpu:6.3f} ms CPU (median)")
        t = big_array(args.array_mib, home, args.rounds)
        mib = args.array_mib

        def rate(key: str) -> str:
            return f"{mib / t[key]:6.0f} MiB/s"

        print(f"{mib} MiB array save (durable): artifactfs {rate('ours_save')}; "
              f"numpy.save {rate('numpy_save')}, ratio {t['numpy_save'] / t['ours_save']:.2f} (target >= 0.8); "
              f"numpy.save+fsync {rate('numpy_save_fsync')}, ratio {t['numpy_save_fsync'] / t['ours_save']:.2f}")
        print(f"{mib} MiB array load: numpy.load {rate('numpy_load')}; artifactfs {rate('ours_load')}, "
              f"ratio {t['numpy_load'] / t['ours_load']:.2f}; verify=True {rate('ours_load_verify')}, "
              f"ratio {t['numpy_load'] / t['ours_load_verify']:.2f} (target >= 0.9)")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
