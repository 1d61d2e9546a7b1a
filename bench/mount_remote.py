"""Benchmark (issue 23, goal 1): the first sequential read of a 256 MiB
object of a remote store through the mount, for S3 (moto), GCS
(fake-gcs-server) and Azure (Azurite) on 127.0.0.1, against baselines
measured in the same run on the same object:

* fsspec ``get`` of the object to a local file (the client the store uses)
                                                    target: mount >= 1.5x
* ``rclone mount --vfs-cache-mode full``            target: mount ahead (> 1x)
* ``s3fs-fuse`` (S3 only: it speaks the S3 API)     target: mount ahead (> 1x)

Also printed: the mount's own rate in MiB/s, and a re-read after a remount,
served from the persistent cache (target >= 10x the first read).

    python bench/mount_remote.py [--stores s3,gcs,azure] [--mib 256] [--rounds 5]
                                 [--against DIR] [--only-mounts]

``--against DIR`` adds a variant: the same mount run from the artifactfs
source tree in ``DIR`` (e.g. ``git archive main src | tar -x -C DIR``), to
compare two versions interleaved in one run; ``--only-mounts`` leaves out
the other variants.

Every figure is a fresh first read: a fresh mount with an empty cache folder
(rclone's too), a fresh fsspec client. The machine is shared: each round runs
every variant once, in an order rotated from round to round, and each figure
is the median of its rounds (all rounds are printed too).

Each round also prints the CPU seconds the read cost on this side (the
reading process plus the FUSE daemon serving it, or the fsspec client) and
in the emulator. When other work keeps every CPU busy, a variant's speed
follows its CPU per byte rather than its concurrency: compare those too.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from proc_cpu import cpu_seconds
from mount_common import artifactfs_mount, fresh_home, is_mounted, MiB, read_all, scratch, unmount, verdict

BUCKET = "bench-bucket"


def mib_per_s(size: int, seconds: float) -> float:
    return size / seconds / MiB


def serving(mountpoint: Path) -> list[int]:
    """The processes whose command line names ``mountpoint``: the FUSE daemon serving it."""
    wanted = str(mountpoint).encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if wanted in cmdline.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                pass
    return found


@dataclass
class Cost:
    """What one read cost: seconds, and CPU seconds here (reader + daemon, or client) and in the emulator."""

    seconds: float
    cpu: float
    server_cpu: float


def timed_read(path: Path, mountpoint: Path, server_pid: int) -> tuple[int, Cost]:
    """Bytes and cost of one sequential read of ``path`` through the FUSE mount at ``mountpoint``."""
    daemons = serving(mountpoint)
    before = time.process_time(), sum(map(cpu_seconds, daemons)), cpu_seconds(server_pid)
    got, seconds = read_all(path)
    after = time.process_time(), sum(map(cpu_seconds, daemons)), cpu_seconds(server_pid)
    return got, Cost(seconds, after[0] - before[0] + after[1] - before[1], after[2] - before[2])


@dataclass
class Target:
    """One remote store under test: its server, the fsspec client of the
    ``get`` baseline, and how rclone and s3fs-fuse reach the same object."""

    flavor: str
    server: object
    make_fs: Callable[[], object]  # a fresh fsspec filesystem (no instance cache)
    rclone_conf: str  # one rclone remote named "remote"
    s3fs_fuse: list[str] | None = None  # argv prefix (bucket, mountpoint appended) or None
    rounds: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # variant -> (here, emulator) CPU s


def start_target(flavor: str) -> Target:
    import servers

    if flavor == "s3":
        import s3fs

        server = servers.start_moto()
        servers.s3_bucket(server, BUCKET)
        return Target(
            flavor, server,
            lambda: s3fs.S3FileSystem(skip_instance_cache=True, **server.options),
            "[remote]\ntype = s3\nprovider = Other\naccess_key_id = testing\nsecret_access_key = testing\n"
            f"endpoint = {server.endpoint_url}\nforce_path_style = true\n",
            ["s3fs", BUCKET, "-o", f"url={server.endpoint_url}", "-o", "use_path_request_style"])
    if flavor == "gcs":
        import gcsfs

        server = servers.start_fake_gcs()
        servers.gcs_bucket(server, BUCKET)
        return Target(
            flavor, server,
            lambda: gcsfs.GCSFileSystem(skip_instance_cache=True, **server.options),
            f"[remote]\ntype = google cloud storage\nanonymous = true\nendpoint = {server.endpoint_url}/storage/v1/\n")
    if flavor == "azure":
        import adlfs
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        server = servers.start_azurite()
        servers.azure_container(server, BUCKET)
        # rclone 1.60 reaches an emulator on another port than 10000 only through a SAS URL.
        sas = generate_container_sas(
            servers.AZURITE_ACCOUNT, BUCKET, account_key=servers.AZURITE_KEY,
            permission=ContainerSasPermissions(read=True, list=True),
            expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1))
        return Target(
            flavor, server,
            lambda: adlfs.AzureBlobFileSystem(skip_instance_cache=True, **server.options),
            f"[remote]\ntype = azureblob\nsas_url = {server.blob_endpoint}/{BUCKET}?{sas}\n")
    raise SystemExit(f"unknown store {flavor!r}: use s3, gcs or azure")


def external_mount(argv: list[str], mountpoint: Path, env: dict | None = None) -> None:
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(argv, check=True, env=env, capture_output=True, timeout=60)
    deadline = time.monotonic() + 30
    while not is_mounted(mountpoint):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{argv[0]} did not mount {mountpoint}")
        time.sleep(0.1)


def measure(target: Target, key: str, size: int, work: Path, variant: str) -> Cost:
    """What one fresh first read of ``key`` by ``variant`` cost."""
    path_in_bucket = key.split("/", 1)[1]
    server = target.server.pid
    if variant == "fsspec get":
        fs = target.make_fs()
        local = work / "got.bin"
        began, cpu, server_cpu = time.perf_counter(), time.process_time(), cpu_seconds(server)
        fs.get_file(key, str(local))
        cost = Cost(time.perf_counter() - began, time.process_time() - cpu, cpu_seconds(server) - server_cpu)
        local.unlink()
        return cost
    if variant.startswith("artifactfs"):
        source = Path(variant.partition("@")[2]) if "@" in variant else None
        cache = work / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        with artifactfs_mount(work / "mnt", cache_dir=cache, source=source) as mnt:
            got, cost = timed_read(mnt / "artifacts/big/1/object.bin", mnt, server)
        assert got == size, got
        if source is None:  # the re-read after a remount, served from the persistent cache (an extra figure)
            with artifactfs_mount(work / "mnt", cache_dir=cache) as mnt:
                _, again = read_all(mnt / "artifacts/big/1/object.bin")
            target.rounds.setdefault("artifactfs re-read after remount", []).append(mib_per_s(size, again))
        shutil.rmtree(cache, ignore_errors=True)
        return cost
    if variant == "rclone mount":
        conf = work / "rclone.conf"
        conf.write_text(target.rclone_conf)
        cache = work / "rclone-cache"
        shutil.rmtree(cache, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # rclone 1.60 rejects this machine's
        point = work / "rclone"
        try:
            external_mount(["rclone", "--config", str(conf), "mount", f"remote:{BUCKET}", str(point), "--vfs-cache-mode", "full",
                            "--cache-dir", str(cache), "--daemon"], point, env)
            got, cost = timed_read(point / path_in_bucket, point, server)
        finally:
            unmount(point)
            shutil.rmtree(cache, ignore_errors=True)
        assert got == size, got
        return cost
    if variant == "s3fs-fuse":
        point = work / "s3fs-fuse"
        env = dict(os.environ, AWSACCESSKEYID="testing", AWSSECRETACCESSKEY="testing")
        try:
            external_mount([*target.s3fs_fuse, str(point)], point, env)
            got, cost = timed_read(point / path_in_bucket, point, server)
        finally:
            unmount(point)
        assert got == size, got
        return cost
    raise ValueError(variant)


def run_store(flavor: str, mib: int, rounds: int, work: Path, against: str | None = None,
              only_mounts: bool = False) -> Target:
    from artifactfs import register_artifact
    from artifactfs.api import register_store, set_active_store

    target = start_target(flavor)
    root = {"s3": "s3", "gcs": "gs", "azure": "az"}[flavor]
    register_store(f"bench-{flavor}", flavor, f"{root}://{BUCKET}/root", dict(target.server.options))
    set_active_store(f"bench-{flavor}")
    source = work / "payload"
    source.mkdir()
    (source / "object.bin").write_bytes(os.urandom(mib * MiB))
    version = register_artifact(source, "big", copy=True)
    shutil.rmtree(source)
    key = version.file_uri("object.bin").split("://", 1)[1]  # bucket/root/big/<uuid>/object.bin
    size = mib * MiB
    variants = ["artifactfs"] + ([f"artifactfs@{against}"] if against else [])
    if not only_mounts:
        variants.append("fsspec get")
        if shutil.which("rclone"):
            variants.append("rclone mount")
        if target.s3fs_fuse and shutil.which("s3fs"):
            variants.append("s3fs-fuse")
    print(f"{flavor}: {mib} MiB object at {key}; {rounds} rounds of {', '.join(variants)}", flush=True)
    try:
        for round_ in range(rounds):
            order = variants[round_ % len(variants):] + variants[:round_ % len(variants)]
            for variant in order:
                cost = measure(target, key, size, work, variant)
                value = mib_per_s(size, cost.seconds)
                target.rounds.setdefault(variant, []).append(value)
                target.cpu.setdefault(variant, []).append((cost.cpu, cost.server_cpu))
                print(f"  round {round_ + 1}: {variant:24s} {value:7.1f} MiB/s   CPU s: {cost.cpu:5.2f} here, "
                      f"{cost.server_cpu:5.2f} emulator   (load average {os.getloadavg()[0]:.1f} "
                      f"on {os.cpu_count()} CPUs)", flush=True)
    finally:
        target.server.stop()
        for point in ("mnt", "rclone", "s3fs-fuse"):
            unmount(work / point)
    return target


def report(target: Target) -> None:
    med = {name: statistics.median(values) for name, values in target.rounds.items()}
    print(f"\n{target.flavor}: medians of {len(target.rounds['artifactfs'])} rounds")
    for name, values in target.rounds.items():
        print(f"  {name:34s} {med[name]:7.1f} MiB/s   rounds: {', '.join(f'{v:.0f}' for v in values)}")
    for name, costs in target.cpu.items():
        here = statistics.median(c[0] for c in costs)
        server = statistics.median(c[1] for c in costs)
        print(f"  {name:34s} CPU s per read: {here:5.2f} here + {server:5.2f} emulator = {here + server:5.2f}")
    ours = med["artifactfs"]
    for name, values in target.rounds.items():
        if name.startswith("artifactfs@"):
            wins = sum(a > b for a, b in zip(target.rounds["artifactfs"], values))
            print(f"  {target.flavor} first read / {name}: {ours / med[name]:5.2f}x, faster in {wins} of {len(values)} rounds")
    if "fsspec get" in med:
        ratio = ours / med["fsspec get"]
        print(f"  {target.flavor} first read / fsspec get:   {ratio:5.2f}x (target >= 1.5: {verdict(ratio, 1.5)})")
    for other in ("rclone mount", "s3fs-fuse"):
        if other in med:
            ratio = ours / med[other]
            print(f"  {target.flavor} first read / {other:12s} {ratio:5.2f}x (target > 1: {verdict(ratio, 1.0001)})")
    ratio = med["artifactfs re-read after remount"] / ours
    print(f"  {target.flavor} re-read after remount / first read: {ratio:.1f}x (target >= 10: {verdict(ratio, 10)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="s3,gcs,azure", help="comma-separated: s3, gcs, azure")
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", metavar="DIR", help="also mount the artifactfs source tree in DIR (its src/)")
    parser.add_argument("--only-mounts", action="store_true", help="leave out fsspec get, rclone and s3fs-fuse")
    args = parser.parse_args()
    targets = []
    for flavor in args.stores.split(","):
        fresh_home()  # one index and store per flavor
        work = scratch(f"mount-remote-{flavor}-")
        try:
            targets.append(run_store(flavor.strip(), args.mib, args.rounds, work, args.against, args.only_mounts))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    for target in targets:
        report(target)


if __name__ == "__main__":
    main()
