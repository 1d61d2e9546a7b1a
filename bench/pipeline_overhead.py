"""Benchmark: the local runner's overhead per step.

A 10-step chain of trivial steps (each adds one to an int) runs once for
real and once from the cache; the time per step is almost all runner
overhead (index transactions, payload writes, cache lookups).

    python bench/pipeline_overhead.py [--steps 10] [--repeat 5]

Target (issue 4): <= 20 ms per step on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time


def build(steps: int):
    from artifactfs import pipeline, step

    @step
    def increment(value: int) -> int:
        return value + 1

    @pipeline
    def chain(start: int = 0):
        value = increment(start)
        for _ in range(steps - 1):
            value = increment(value)

    return chain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="artifactfs-bench-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    os.environ["ARTIFACTFS_HOME"] = home
    os.environ.pop("ARTIFACTFS_INDEX_URL", None)
    try:
        chain = build(args.steps)
        chain(start=-1)  # warm up: migrations, imports
        first, cached = [], []
        for i in range(args.repeat):
            started = time.perf_counter()
            run = chain(start=i * 1000)  # new parameter: every step runs
            first.append(time.perf_counter() - started)
            assert all(s.status == "completed" for s in run.steps.values())
            started = time.perf_counter()
            run = chain(start=i * 1000)  # same parameter: every step cached
            cached.append(time.perf_counter() - started)
            assert all(s.status == "cached" for s in run.steps.values())
        per_step = statistics.median(first) / args.steps * 1000
        per_cached = statistics.median(cached) / args.steps * 1000
        print(f"first run:  {per_step:6.1f} ms per step (target <= 20)")
        print(f"cached run: {per_cached:6.1f} ms per step; cached/first ratio {per_cached / per_step:.2f}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
