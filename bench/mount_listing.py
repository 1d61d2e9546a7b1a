"""Benchmark P4 (issue 5): ``find MOUNT -type f | xargs stat`` over 100k
artifact versions (one payload file each), against the same listing of the
same objects in an S3 bucket (moto) through s3fs-fuse, in the same run.

    python bench/mount_listing.py [--artifacts 100] [--versions 1000] [--s3fs-versions 5000]

Targets: <= 5 s through artifactfs, and >= 10x faster than s3fs-fuse.
s3fs-fuse lists the bucket itself (it has no index), which takes minutes
for 100k objects in moto, so it lists ``--s3fs-versions`` of them and its
time is scaled linearly to the full count (printed as such).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mount_common import artifactfs_mount, fresh_home, is_mounted, populate_index, scratch, unmount, verdict


def find_and_stat(root: Path) -> tuple[float, int]:
    """Seconds for ``find -type f | xargs stat``, and how many files."""
    began = time.perf_counter()
    result = subprocess.run(f"find {root} -type f | xargs -d '\\n' stat --format=%s | wc -l", shell=True,
                            capture_output=True, text=True, timeout=3600, check=True)
    return time.perf_counter() - began, int(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=100)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--s3fs-versions", type=int, default=5000)
    args = parser.parse_args()
    fresh_home()
    import servers

    from artifactfs.api import register_store

    server = servers.start_moto()
    work = scratch("mount-listing-")
    try:
        bucket = "listing"
        fs = servers.s3_bucket(server, bucket)
        register_store("listing-s3", "s3", f"s3://{bucket}/root", dict(server.options))
        total = populate_index(args.artifacts, args.versions, ("model.bin",), store_name="listing-s3")
        print(f"index: {total} versions, one file each (in the S3 store; listing never reads them)")
        with artifactfs_mount(work / "mnt") as mnt:
            ours, files = find_and_stat(mnt / "artifacts")
            again, _ = find_and_stat(mnt / "artifacts")
        print(f"artifactfs: find | xargs stat of {files} files: {ours:.2f} s (again, kernel caches warm: {again:.2f} s)")

        # s3fs-fuse over the same kind of objects: a sample, written for real.
        count = min(args.s3fs_versions, total)
        from artifactfs.index import get_index
        from artifactfs.index.models import ArtifactVersion
        from sqlalchemy import select

        with get_index().read() as session:
            uris = list(session.scalars(select(ArtifactVersion.uri).order_by(ArtifactVersion.id).limit(count)))
        keys = [uri.removeprefix("s3://") + "/model.bin" for uri in uris]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda key: fs.pipe_file(key, b"x" * 1000), keys))
        point = work / "s3fs-fuse"
        point.mkdir()
        env = dict(os.environ, AWSACCESSKEYID="testing", AWSSECRETACCESSKEY="testing")
        subprocess.run(["s3fs", bucket, str(point), "-o", f"url={server.endpoint_url}", "-o", "use_path_request_style"],
                       env=env, check=True, timeout=60)
        try:
            deadline = time.monotonic() + 30
            while not is_mounted(point) and time.monotonic() < deadline:
                time.sleep(0.1)
            theirs, their_files = find_and_stat(point / "root")
        finally:
            unmount(point)
        scaled = theirs * total / max(their_files, 1)
        print(f"s3fs-fuse: find | xargs stat of {their_files} files ({their_files} versions): {theirs:.2f} s "
              f"-> {scaled:.1f} s scaled to {total} versions")
        print(f"P4 artifactfs {ours:.2f} s for {files} files (target <= 5 s: {verdict(ours, 5, higher_is_better=False)})")
        ratio = scaled / ours
        print(f"P4 s3fs-fuse / artifactfs: {ratio:.1f}x (target >= 10: {verdict(ratio, 10)})")
    finally:
        server.stop()
        unmount(work / "mnt")
        unmount(work / "s3fs-fuse")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
