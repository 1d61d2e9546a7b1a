"""Benchmark (issue 23, goal 2): many small files and a parquet dataset read
through the mount, against the same work on the store's own files and
through pyfuse3's ``examples/passthroughfs.py`` (the floor), in the same run.

    python bench/mount_files.py [--files 20000] [--size 4096] [--workers 4] [--rounds 3]

1. A loader of ``--workers`` threads reading every file of a registered
   dataset of ``--files`` files of ``--size`` bytes (open, read, close):
   cold (page, dentry and inode caches dropped before) and warm (again).
   Target: mount / native >= 0.5, cold and warm. The requests the daemon
   served per file are printed.
2. DuckDB ``read_parquet`` with a filtering query on a 20-file
   hive-partitioned dataset: mount / native >= 0.8. DuckDB is optional and
   not a dependency of artifactfs: ``pip install duckdb`` to run this part
   (it says so and skips it otherwise).

Rounds interleave native, floor and mount; each figure is the median.
Needs root to drop the kernel's caches (cold figures are warm otherwise).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mount_common import (artifactfs_mount, drop_kernel_caches, fresh_home, median, passthrough_mount, request_counts,
                          requests_between, scratch, verdict)

WHERES = ("native", "passthroughfs", "mount")


def make_dataset(count: int, size: int) -> Path:
    """A registered dataset of ``count`` files in 100 shard folders; its folder in the store."""
    from artifactfs import init, register_artifact

    init()
    source = scratch("mount-files-src-") / "data"
    for i in range(count):
        shard = source / f"shard-{i % 100:03d}"
        shard.mkdir(parents=True, exist_ok=True)
        (shard / f"sample-{i:06d}.bin").write_bytes(os.urandom(size))
    version = register_artifact(source, "samples", copy=True)
    shutil.rmtree(source)
    return Path(version.file_uri(version.files[0].path)).parent.parent


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.bin"))


def load(root: Path, names: list[str], workers: int) -> float:
    """Seconds for ``workers`` threads to read every file (open, read, close)."""
    def read(share: list[str]) -> int:
        total = 0
        for name in share:
            with open(root / name, "rb", buffering=0) as f:
                total += len(f.read())
        return total

    shares = [names[i::workers] for i in range(workers)]
    began = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(read, shares))
    return time.perf_counter() - began


def make_parquet(where: Path) -> Path | None:
    """A hive-partitioned parquet dataset of 20 files, or None without DuckDB."""
    try:
        import duckdb
    except ImportError:
        return None
    folder = where / "events"
    duckdb.sql(f"""COPY (SELECT i AS id, i % 20 AS part, (i * 7919) % 1000 AS score, md5(i::VARCHAR) AS label
                        FROM range(2000000) t(i))
                  TO '{folder}' (FORMAT PARQUET, PARTITION_BY (part))""")
    return folder


QUERY = "SELECT part, count(*), avg(score) FROM read_parquet('{0}/*/*.parquet', hive_partitioning=true) " \
        "WHERE score > 900 AND label LIKE 'a%' GROUP BY part ORDER BY part"


def query(folder: Path) -> float:
    import duckdb

    began = time.perf_counter()
    duckdb.connect().sql(QUERY.format(folder)).fetchall()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    fresh_home()
    began = time.perf_counter()
    native = make_dataset(args.files, args.size)
    names = listing(native)
    print(f"dataset: {len(names)} files of {args.size} bytes, registered, made in {time.perf_counter() - began:.0f} s; "
          f"{args.workers} reader threads; {args.rounds} rounds; medians")
    work = scratch("mount-files-")
    parquet = make_parquet(work)
    if parquet is not None:
        from artifactfs import register_artifact

        register_artifact(parquet, "events", copy=True)
    cold: dict[str, list[float]] = {w: [] for w in WHERES}
    warm: dict[str, list[float]] = {w: [] for w in WHERES}
    duck: dict[str, list[float]] = {w: [] for w in WHERES}
    spent: dict[str, dict] = {}
    can_drop = drop_kernel_caches(3)
    for _ in range(args.rounds):
        with artifactfs_mount(work / "mnt") as mnt, passthrough_mount(native, work / "floor") as floor:
            roots = {"native": native, "passthroughfs": floor, "mount": mnt / "artifacts/samples/1"}
            for where in WHERES:
                drop_kernel_caches(3)
                before = request_counts(mnt) if where == "mount" else None
                cold[where].append(load(roots[where], names, args.workers))
                middle = request_counts(mnt) if where == "mount" else None
                warm[where].append(load(roots[where], names, args.workers))
                if where == "mount":
                    spent = {"cold": requests_between(before, middle), "warm": requests_between(middle, request_counts(mnt))}
            if parquet is not None:
                for where, folder in (("native", parquet), ("mount", mnt / "artifacts/events/1")):
                    query(folder)  # the first query warms the page cache: time the next
                    duck[where].append(query(folder))
    if not can_drop:
        print("cannot drop the kernel's caches (needs root): the cold figures are warm")
    for label, runs in (("cold", cold), ("warm", warm)):
        times = {w: median(runs[w]) for w in WHERES}
        ratio = times["native"] / times["mount"]
        print(f"loader, {label}: native {times['native']:.2f} s ({args.files / times['native']:.0f} files/s), "
              f"passthroughfs {times['passthroughfs']:.2f} s, mount {times['mount']:.2f} s "
              f"({1e6 * times['mount'] * args.workers / args.files:.0f} us per file per worker) -> mount/native "
              f"{ratio:.2f} (target >= 0.5: {verdict(ratio, 0.5)}), mount/floor "
              f"{times['passthroughfs'] / times['mount']:.2f}")
        if spent.get(label):
            print(f"   requests to the daemon per file (last round): "
                  f"{ {op: round(n / args.files, 2) for op, n in spent[label].items()} }")
    if parquet is None:
        print("DuckDB: SKIPPED (not installed; `pip install duckdb` to measure read_parquet through the mount)")
    else:
        native_s, mount_s = median(duck["native"]), median(duck["mount"])
        ratio = native_s / mount_s
        print(f"DuckDB read_parquet, 20 files, filtering query (warm): native {native_s:.3f} s, mount {mount_s:.3f} s "
              f"-> mount/native {ratio:.2f} (target >= 0.8: {verdict(ratio, 0.8)})")


if __name__ == "__main__":
    main()
