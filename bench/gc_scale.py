"""Benchmark: a full prune of many unreferenced small versions on the local
store with the SQLite index (issue 6: 100k versions in <= 60 s, peak RSS
<= 300 MB).

The rows are bulk-inserted through the index models (one manifest row per
version) and every version gets a real small payload folder
``<root>/<name>/<uuid>/data.json``; all are two days old, so the default
grace period (24h) lets them go. The prune runs as ``artifactfs gc -y
--keep-latest 0`` in a child process, whose wall time and peak RSS are
measured.

    python bench/gc_scale.py [--versions 100000] [--names 100] [--dry-run-first]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

CLI = [sys.executable, "-c", "from artifactfs.cli.main import main; main()"]


def insert_versions(versions: int, names: int, store_id: int, uri_for, payload: bytes, on_batch=None) -> None:
    """Bulk-insert ``versions`` live, two-day-old version rows (one manifest
    row each) spread over ``names`` artifacts, through the index models.
    ``uri_for(name, uuid)`` gives each payload's URI; ``on_batch(list of
    (name, uuid))`` writes the payloads of a batch."""
    from sqlalchemy import insert

    from artifactfs.index import get_index
    from artifactfs.index.models import Artifact, ArtifactVersion, VersionFile

    index = get_index()
    created = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
    with index.write() as session:
        session.execute(insert(Artifact), [{"id": i + 1, "name": f"art{i:04d}", "created_at": created}
                                           for i in range(names)])
    batch = 10_000
    for start in range(0, versions, batch):
        rows, files, made = [], [], []
        for vid in range(start + 1, min(start + batch, versions) + 1):
            name_id = (vid - 1) % names
            name = f"art{name_id:04d}"
            version_uuid = str(uuid.uuid4())
            made.append((name, version_uuid))
            rows.append({
                "id": vid, "uuid": version_uuid, "artifact_id": name_id + 1, "version": str(vid // names + 1),
                "version_number": vid // names + 1, "store_id": store_id, "uri": uri_for(name, version_uuid),
                "payload_kind": "folder", "materializer": "artifactfs.materializers.builtin.BuiltInMaterializer",
                "data_type": "builtins.dict", "content_hash": None, "size": len(payload), "file_count": 1,
                "state": "live", "save_type": "manual", "visualizations": [], "created_at": created,
            })
            files.append({"version_id": vid, "path": "data.json", "size": len(payload), "mode": 0o644,
                          "digest": "0" * 64})
        if on_batch is not None:
            on_batch(made)
        with index.write() as session:
            session.execute(insert(ArtifactVersion), rows)
            session.execute(insert(VersionFile), files)


def populate(versions: int, names: int) -> str:
    """Rows and payload folders on the local store; returns the store root."""
    from artifactfs.api import init

    store = init()
    payload = b'{"value": 12345}'
    for name_id in range(names):
        os.makedirs(os.path.join(store.path, f"art{name_id:04d}"), exist_ok=True)

    def write(made):
        for name, version_uuid in made:
            folder = os.path.join(store.path, name, version_uuid)
            os.mkdir(folder)
            with open(os.path.join(folder, "data.json"), "wb") as f:
                f.write(payload)

    insert_versions(versions, names, store.index_id, lambda n, u: os.path.join(store.path, n, u), payload, write)
    os.sync()
    return store.path


def count_payloads(root: str) -> int:
    """Payload folders (not the store's marker, not manifest files)."""
    return sum(entry.is_dir() for d in os.scandir(root) if d.is_dir() for entry in os.scandir(d.path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--names", type=int, default=100)
    parser.add_argument("--dry-run-first", action="store_true", help="also time `gc --dry-run` (the plan alone)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="artifactfs-gc-bench-")
    os.environ["ARTIFACTFS_HOME"] = home
    os.environ.pop("ARTIFACTFS_INDEX_URL", None)
    os.environ.pop("ARTIFACTFS_STORE", None)
    try:
        began = time.monotonic()
        root = populate(args.versions, args.names)
        setup = time.monotonic() - began
        print(f"setup: {args.versions} versions in {args.names} names, {count_payloads(root)} payload folders, "
              f"{setup:.1f}s", flush=True)

        if args.dry_run_first:
            began = time.monotonic()
            plan = subprocess.run(CLI + ["gc", "--dry-run", "--keep-latest", "0"], capture_output=True, text=True)
            assert plan.returncode == 0, plan.stderr
            print(f"plan (gc --dry-run): {time.monotonic() - began:.1f}s", flush=True)

        began = time.monotonic()
        proc = subprocess.run(CLI + ["gc", "-y", "--keep-latest", "0"], capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "250"})
        wall = time.monotonic() - began
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            raise SystemExit("gc failed")
        summary = next((line for line in proc.stdout.splitlines() if line.startswith("Freed")), "")
        execute_s = re.search(r" in ([0-9.]+)s\.", summary)
        left = count_payloads(root)

        from sqlalchemy import func, select

        from artifactfs.index import get_index, reset_index_cache
        from artifactfs.index.models import ArtifactVersion

        reset_index_cache()
        with get_index().read() as session:
            rows_left = session.scalar(select(func.count()).select_from(ArtifactVersion))
        print(f"prune (gc -y, full pass incl. start-up and plan): {wall:.1f}s "
              f"({args.versions / wall:,.0f} versions/s)")
        if execute_s:
            print(f"  execute phases: {float(execute_s.group(1)):.1f}s")
        print(f"  peak RSS of the pruner: {peak_mb:.0f} MB")
        print(f"  left: {rows_left} rows, {left} payload folders")
        print(f"  {summary}")
        ok = wall <= 60 and peak_mb <= 300 and rows_left == 0 and left == 0
        print("target (<= 60 s, <= 300 MB, everything gone):", "met" if ok else "NOT met")
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"home kept at {home}")


if __name__ == "__main__":
    main()
