"""Benchmark P3 (issue 5): the first read of a 256 MiB object of an S3
store (moto on 127.0.0.1) through the mount, against baselines measured in
the same run on the same object:

* ``s3fs`` ``get`` of the object (the Python client the store uses)  target >= 0.9
* ``rclone mount`` (``--vfs-cache-mode off``) and ``s3fs-fuse``       target >= 1.5x faster than each
* a re-read after a remount, served from the persistent cache      target >= 10x the first read

    python bench/mount_s3.py [--mib 256] [--rounds 2]

Each figure is the best of ``--rounds`` (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

from mount_common import artifactfs_mount, fresh_home, is_mounted, MiB, read_all, scratch, unmount, verdict


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def timed_read(path: Path) -> float:
    size, seconds = read_all(path)
    return mbps(size, seconds)


def external_mount(argv: list[str], mountpoint: Path, env: dict | None = None) -> None:
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(argv, check=True, env=env, capture_output=True, timeout=60)
    deadline = time.monotonic() + 30
    while not is_mounted(mountpoint):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{argv[0]} did not mount {mountpoint}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    fresh_home()
    import servers
    import s3fs

    from artifactfs import register_artifact
    from artifactfs.api import register_store, set_active_store

    server = servers.start_moto()
    work = scratch("mount-s3-")
    try:
        bucket = "bench-bucket"
        servers.s3_bucket(server, bucket)
        register_store("bench-s3", "s3", f"s3://{bucket}/root", dict(server.options))
        set_active_store("bench-s3")
        source = work / "payload"
        source.mkdir()
        data = os.urandom(args.mib * MiB)
        (source / "object.bin").write_bytes(data)
        version = register_artifact(source, "big", copy=True)
        key = version.file_uri("object.bin")  # s3://bench-bucket/root/big/<uuid>/object.bin
        native_key = key.removeprefix("s3://")
        size = len(data)
        del data
        print(f"object: {args.mib} MiB in moto at {key}")

        results: dict[str, float] = {}

        def keep(name: str, value: float) -> None:
            results[name] = max(results.get(name, 0.0), value)

        for round_ in range(args.rounds):
            # s3fs get (fresh client, to a local file).
            fs = s3fs.S3FileSystem(skip_instance_cache=True, key="testing", secret="testing",
                                   endpoint_url=server.endpoint_url)
            target = work / "got.bin"
            began = time.perf_counter()
            fs.get(native_key, str(target))
            keep("s3fs get", mbps(size, time.perf_counter() - began))
            target.unlink()
            # artifactfs: first read with an empty cache, then a re-read after a remount.
            cache = work / f"cache-{round_}"
            with artifactfs_mount(work / "mnt", cache_dir=cache) as mnt:
                keep("artifactfs first read", timed_read(mnt / "artifacts/big/1/object.bin"))
            with artifactfs_mount(work / "mnt", cache_dir=cache) as mnt:
                keep("artifactfs re-read after remount", timed_read(mnt / "artifacts/big/1/object.bin"))
            shutil.rmtree(cache, ignore_errors=True)
            # rclone mount, no VFS cache.
            if shutil.which("rclone"):
                conf = work / "rclone.conf"
                conf.write_text(
                    "[moto]\ntype = s3\nprovider = Other\naccess_key_id = testing\nsecret_access_key = testing\n"
                    f"endpoint = {server.endpoint_url}\nforce_path_style = true\n")
                env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
                point = work / "rclone"
                try:
                    external_mount(["rclone", "--config", str(conf), "mount", f"moto:{bucket}", str(point),
                                    "--vfs-cache-mode", "off", "--daemon"], point, env)
                    keep("rclone mount", timed_read(point / native_key.split("/", 1)[1]))
                finally:
                    unmount(point)
            # s3fs-fuse.
            if shutil.which("s3fs"):
                point = work / "s3fs-fuse"
                env = dict(os.environ, AWSACCESSKEYID="testing", AWSSECRETACCESSKEY="testing")
                try:
                    external_mount(["s3fs", bucket, str(point), "-o", f"url={server.endpoint_url}",
                                    "-o", "use_path_request_style"], point, env)
                    keep("s3fs-fuse", timed_read(point / native_key.split("/", 1)[1]))
                finally:
                    unmount(point)

        for name, value in results.items():
            print(f"  {name:36s} {value:8.0f} MB/s")
        ours = results["artifactfs first read"]
        ratio = ours / results["s3fs get"]
        print(f"P3 first read / s3fs get: {ratio:.2f} (target >= 0.9: {verdict(ratio, 0.9)})")
        for other in ("rclone mount", "s3fs-fuse"):
            if other in results:
                ratio = ours / results[other]
                print(f"P3 first read / {other}: {ratio:.2f}x (target >= 1.5: {verdict(ratio, 1.5)})")
        ratio = results["artifactfs re-read after remount"] / ours
        print(f"P3 re-read after remount / first read: {ratio:.1f}x (target >= 10: {verdict(ratio, 10)})")
    finally:
        server.stop()
        for point in ("mnt", "rclone", "s3fs-fuse"):
            unmount(work / point)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
