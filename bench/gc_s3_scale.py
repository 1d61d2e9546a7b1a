"""Benchmark (issue 15 item 7): ``artifactfs gc --dry-run`` on 100k versions
with the index on PostgreSQL and the payloads on S3 (moto on 127.0.0.1);
target <= 30 s.

The rows are bulk-inserted through the index models (``gc_scale``), one
``data.json`` object per version in 1,000 name folders. The orphan scan
lists name folders concurrently and at most ``scan_limit`` of them per pass
(the rest in later passes, those listed longest ago first), so a pass stays
bounded however large the store grows. Baselines measured in the same run,
on the same bucket:

* one plain ``s3fs`` ``find`` of the store's prefix (every key, sequential pages)
* with ``--full-scan``: the same dry run listing every name folder (concurrently)

    python bench/gc_s3_scale.py [--versions 100000] [--names 1000] [--full-scan]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # servers.py: the real moto and PostgreSQL servers

import servers  # noqa: E402
from gc_scale import CLI, insert_versions  # noqa: E402

TARGET_S = 30.0
PAYLOAD = b'{"value": 12345}'


def fill(versions: int, names: int, server, bucket: str) -> str:
    """Rows in the index and one object per version; returns the store root."""
    import boto3

    import artifactfs

    root = f"s3://{bucket}/store"
    artifactfs.register_store("bench-s3", "s3", root, dict(server.options))
    store = artifactfs.get_store("bench-s3")  # first use: the empty root gets this index's marker
    client = boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")

    def put(item):
        name, version_uuid = item
        client.put_object(Bucket=bucket, Key=f"store/{name}/{version_uuid}/data.json", Body=PAYLOAD)

    began = time.monotonic()

    def write(made):
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, made))
        done = made[-1]
        print(f"  ... {done}: {time.monotonic() - began:.0f}s", flush=True)

    insert_versions(versions, names, store.index_id, lambda n, u: f"{root}/{n}/{u}", PAYLOAD, write)
    return root


def timed(argv: list[str]) -> tuple[float, str]:
    began = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    seconds = time.monotonic() - began
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        raise SystemExit(f"{argv[3:]} failed")
    return seconds, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--full-scan", action="store_true", help="also time a dry run that lists every name folder")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="artifactfs-gc-s3-bench-")
    os.environ["ARTIFACTFS_HOME"] = home
    os.environ.pop("ARTIFACTFS_STORE", None)
    postgres = servers.start_postgres()
    moto = servers.start_moto()
    try:
        os.environ["ARTIFACTFS_INDEX_URL"] = postgres.create_database("gc_s3_bench")
        fs = servers.s3_bucket(moto, "gcbench")
        began = time.monotonic()
        root = fill(args.versions, args.names, moto, "gcbench")
        print(f"setup: {args.versions} versions in {args.names} names on PostgreSQL + S3, "
              f"{time.monotonic() - began:.0f}s", flush=True)

        os.environ["ARTIFACTFS_STORE"] = "bench-s3"
        plan_s, out = timed(CLI + ["gc", "--dry-run"])
        note = next((line for line in out.splitlines() if "name folders" in line), "")
        began = time.monotonic()
        keys = fs.find(root.removeprefix("s3://"))
        find_s = time.monotonic() - began
        print(f"gc --dry-run: {plan_s:.1f}s (target <= {TARGET_S:.0f} s: {'met' if plan_s <= TARGET_S else 'NOT met'})")
        if note:
            print(f"  {note.strip()}")
        print(f"baseline, one s3fs find of the store ({len(keys)} keys): {find_s:.1f}s; "
              f"ratio dry run / find: {plan_s / find_s:.2f}")
        if args.full_scan:
            full_s, _ = timed(CLI + ["gc", "--dry-run", "--full-scan"])
            print(f"gc --dry-run --full-scan (every name folder, listed concurrently): {full_s:.1f}s; "
                  f"ratio / find: {full_s / find_s:.2f}")
    finally:
        moto.stop()
        postgres.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
