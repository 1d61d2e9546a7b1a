"""Benchmark: small-artifact save/load rate, and a large numpy array's
save/load against numpy.save/numpy.load on the same disk, measured in the
same run.

    python bench/save_load.py [--small 2000] [--array-mib 1024]

Targets (issue 3): >= 550 saves/s and >= 830 loads/s on the local store with
SQLite; array save and load >= 0.8 of numpy's own speed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np


def small_artifacts(count: int) -> tuple[float, float]:
    from artifactfs import load_artifact, save_artifact

    payload = {"lr": 0.01, "epochs": 10, "layers": [64, 32], "name": "mlp"}
    save_artifact(payload, "warmup")  # migrations and imports out of the timing
    started = time.perf_counter()
    for i in range(count):
        save_artifact(payload, "params")
    saves = count / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(count):
        load_artifact("params", version=i + 1)
    loads = count / (time.perf_counter() - started)
    return saves, loads


def _timed(action) -> float:
    started = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - started
    del result
    return elapsed


def big_array(mib: int, workdir: str, rounds: int = 3) -> dict[str, float]:
    """Best of ``rounds`` for each side; the order alternates between rounds
    because the first large allocation after a free pays the page faults."""
    from artifactfs import load_artifact, save_artifact

    array = np.random.default_rng(0).random(mib * 1024 * 1024 // 8)
    target = os.path.join(workdir, "native.npy")
    version = save_artifact(array, "big_array")
    np.save(target, array)
    assert np.array_equal(load_artifact("big_array", version=version.version), np.load(target))
    sides = {
        "native_save": lambda: np.save(target, array),
        "ours_save": lambda: save_artifact(array, "big_array"),
        "native_load": lambda: np.load(target),
        "ours_load": lambda: load_artifact("big_array", version=version.version),
    }
    timings = {key: float("inf") for key in sides}
    for attempt in range(rounds):
        for pair in (("native_save", "ours_save"), ("native_load", "ours_load")):
            for key in pair if attempt % 2 == 0 else reversed(pair):
                timings[key] = min(timings[key], _timed(sides[key]))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="number of small saves and loads")
    parser.add_argument("--array-mib", type=int, default=1024, help="size of the numpy array")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="artifactfs-bench-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    os.environ["ARTIFACTFS_HOME"] = home
    os.environ.pop("ARTIFACTFS_INDEX_URL", None)
    try:
        saves, loads = small_artifacts(args.small)
        print(f"small artifacts: {saves:7.0f} saves/s (target >= 550)   {loads:7.0f} loads/s (target >= 830)")
        t = big_array(args.array_mib, home)
        mib = args.array_mib
        print(f"{mib} MiB array save: numpy.save {mib / t['native_save']:7.0f} MiB/s, "
              f"artifactfs {mib / t['ours_save']:7.0f} MiB/s, ratio {t['native_save'] / t['ours_save']:.2f} (target >= 0.8)")
        print(f"{mib} MiB array load: numpy.load {mib / t['native_load']:7.0f} MiB/s, "
              f"artifactfs {mib / t['ours_load']:7.0f} MiB/s, ratio {t['native_load'] / t['ours_load']:.2f} (target >= 0.8)")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
