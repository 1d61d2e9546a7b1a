"""Benchmarks of listing and stat through the mount, served from the index
(issues 5, 13 and 15), each against a baseline measured in the same run.

    python bench/mount_listing.py [--artifacts 100] [--versions 1000] [--folder 6001] [--s3fs-versions 5000]
    python bench/mount_listing.py --walk-only [--walk-versions 20000] [--rounds 3]

1. ``ls -la`` of one artifact folder of ``--folder`` (6,001) versions: the
   first time after mounting <= 1 s, again <= 0.3 s. Baselines: ``ls -la``
   of an ext4 folder of the same shape (as many folders, ``.json`` files
   and a symlink) and plain ``ls`` of the same mount folder.
2. P4: ``find MOUNT -type f | xargs stat`` over ``--artifacts`` x
   ``--versions`` (100k) versions of one payload file each, on a fresh
   mount: <= 5 s. Baseline: the same over the same objects through
   s3fs-fuse (it lists the bucket itself, which takes minutes in moto for
   100k objects, so it lists ``--s3fs-versions`` of them and its time is
   scaled to the full count; ``--s3fs-versions 0`` skips it).
3. The daemon's peak resident memory after 2: <= 300 MB (issue 15, item
   7); baseline: its resident memory right after mounting.
4. Walks (issue 23, goal 3): ``find MOUNT -type f | xargs stat`` over
   ``--walk-versions`` (20,000) versions in 20 artifacts, one payload file
   each: on a fresh mount <= 3x native and the second time <= 1.5x native.
   Baselines in the same round: the same walk over an ext4 tree of the same
   shape (version folders, their ``.json``, ``latest``) with the kernel's
   caches dropped first and again, and through pyfuse3's passthroughfs
   example over that tree (the floor). The requests the daemon served per
   version folder are printed. Medians of ``--rounds`` (only this part with
   ``--walk-only``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mount_common import (artifactfs_mount, daemon_rss, drop_kernel_caches, fresh_home, is_mounted, median,
                          passthrough_mount, populate_index, request_counts, requests_between, scratch, unmount,
                          verdict)


def timed(command: str) -> float:
    began = time.perf_counter()
    subprocess.run(command, shell=True, check=True, timeout=3600, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def find_and_stat(roots: list[Path]) -> tuple[float, int]:
    """Seconds for ``find -type f | xargs stat``, and how many files."""
    began = time.perf_counter()
    paths = " ".join(str(r) for r in roots)
    result = subprocess.run(f"find {paths} -type f | xargs -d '\\n' stat --format=%s | wc -l", shell=True,
                            capture_output=True, text=True, timeout=3600, check=True)
    return time.perf_counter() - began, int(result.stdout.strip())


def native_folder(folder: Path, count: int) -> Path:
    """An ext4 folder shaped like an artifact folder of ``count`` versions:
    version folders of one file, each with its ``.json`` beside it, and ``latest``."""
    folder.mkdir(parents=True)
    for i in range(1, count + 1):
        (folder / str(i)).mkdir()
        (folder / str(i) / "model.bin").write_bytes(b"x" * 1000)
        (folder / f"{i}.json").write_text('{"version": "%d"}\n' % i)
    (folder / "latest").symlink_to(str(count))
    return folder


def big_folder(mnt: Path, native: Path, name: str) -> None:
    folder = mnt / "artifacts" / name
    drop_kernel_caches(2)
    cold = timed(f"ls -la {folder}")
    warm = min(timed(f"ls -la {folder}") for _ in range(3))
    plain = min(timed(f"ls {folder}") for _ in range(3))
    drop_kernel_caches(2)
    native_cold = timed(f"ls -la {native}")
    native_warm = min(timed(f"ls -la {native}") for _ in range(3))
    entries = len(os.listdir(folder))
    print(f"ls -la of {entries} entries: first {cold:.2f} s (native ext4, caches dropped: {native_cold:.2f} s, "
          f"ratio {cold / native_cold:.1f}x), again {warm:.2f} s (native {native_warm:.2f} s, ratio "
          f"{warm / native_warm:.1f}x; plain ls on the mount {plain:.2f} s)")
    print(f"   first ls -la {cold:.2f} s (target <= 1 s: {verdict(cold, 1, higher_is_better=False)}); "
          f"again {warm:.2f} s (target <= 0.3 s: {verdict(warm, 0.3, higher_is_better=False)})")


def native_tree(where: Path, artifacts: int, versions: int) -> Path:
    """An ext4 tree shaped like the mount's /artifacts."""
    root = where / "native-walk"
    for a in range(1, artifacts + 1):
        native_folder(root / f"w{a:05d}", versions)
    return root


def walks(total: int, rounds: int, work: Path) -> None:
    """Part 4: find | xargs stat over ``total`` versions, fresh and again,
    against ext4 and passthroughfs in the same round."""
    from artifactfs import init

    init()
    artifacts = 20
    versions = max(1, total // artifacts)
    populate_index(artifacts, versions, ("model.bin",), prefix="w")
    native = native_tree(work, artifacts, versions)
    figures: dict[tuple[str, str], list[float]] = {}
    spent: dict[str, dict | None] = {}
    files = 0
    for _ in range(rounds):
        drop_kernel_caches(3)
        with artifactfs_mount(work / "walk-mnt") as mnt, passthrough_mount(native, work / "walk-floor") as floor:
            for where, root in (("native", native), ("passthroughfs", floor), ("mount", mnt / "artifacts")):
                drop_kernel_caches(2)  # a fresh mount: nothing of it in the kernel's caches
                before = request_counts(mnt) if where == "mount" else None
                first, files = find_and_stat([root])
                middle = request_counts(mnt) if where == "mount" else None
                again, _ = find_and_stat([root])
                figures.setdefault((where, "fresh"), []).append(first)
                figures.setdefault((where, "again"), []).append(again)
                if where == "mount":
                    spent = {"fresh": requests_between(before, middle),
                             "again": requests_between(middle, request_counts(mnt))}
    print(f"walk: find -type f | xargs stat over {artifacts * versions} versions ({files} files with the .json), "
          f"{rounds} rounds, medians")
    for when, target in (("fresh", 3.0), ("again", 1.5)):
        native_s, floor_s, mount_s = (median(figures[(w, when)]) for w in ("native", "passthroughfs", "mount"))
        ratio = mount_s / native_s
        print(f"   {when}: native {native_s:.2f} s, passthroughfs {floor_s:.2f} s, mount {mount_s:.2f} s -> "
              f"mount/native {ratio:.2f}x (target <= {target}: {verdict(ratio, target, higher_is_better=False)}), "
              f"mount/floor {mount_s / floor_s:.2f}x")
        if spent.get(when):
            folders = artifacts * versions
            print(f"      requests per version folder (last round): "
                  f"{ {op: round(n / folders, 2) for op, n in spent[when].items()} }")


def s3fs_fuse(server, fs, bucket: str, work: Path, count: int, total: int) -> float:
    """s3fs-fuse over ``count`` of the same objects, written for real; its time scaled to ``total``."""
    from sqlalchemy import select

    from artifactfs.index import get_index
    from artifactfs.index.models import ArtifactVersion

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
        theirs, their_files = find_and_stat([point / "root"])
    finally:
        unmount(point)
    scaled = theirs * total / max(their_files, 1)
    print(f"s3fs-fuse: find | xargs stat of {their_files} files: {theirs:.2f} s -> {scaled:.1f} s scaled to {total}")
    return scaled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=100)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--folder", type=int, default=6001)
    parser.add_argument("--s3fs-versions", type=int, default=5000)
    parser.add_argument("--walk-versions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the walk (part 4)")
    parser.add_argument("--walk-only", action="store_true", help="run part 4 only")
    args = parser.parse_args()
    fresh_home()
    if args.walk_only or args.walk_versions:
        walks(args.walk_versions, args.rounds, scratch("mount-walk-"))
        if args.walk_only:
            return
    import servers

    from artifactfs.api import register_store

    server = servers.start_moto()
    work = scratch("mount-listing-")
    try:
        bucket = "listing"
        fs = servers.s3_bucket(server, bucket)
        register_store("listing-s3", "s3", f"s3://{bucket}/root", dict(server.options))
        began = time.perf_counter()
        total = populate_index(args.artifacts, args.versions, ("model.bin",), store_name="listing-s3")
        populate_index(1, args.folder, ("model.bin",), store_name="listing-s3", prefix="big")
        print(f"index: {total} versions ({args.artifacts} x {args.versions}) and one artifact of {args.folder}, "
              f"one file each, in an S3 store (listing never reads it); made in {time.perf_counter() - began:.0f} s")
        native = native_folder(work / "native-artifact", args.folder)
        with artifactfs_mount(work / "mnt") as mnt:
            name = next(n for n in os.listdir(mnt / "artifacts") if n.startswith("big"))
            big_folder(mnt, native, name)
        with artifactfs_mount(work / "mnt") as mnt:
            at_start = daemon_rss(mnt)[0]
            roots = sorted(p for p in (mnt / "artifacts").iterdir() if not p.name.startswith("big"))
            drop_kernel_caches(2)
            ours, files = find_and_stat(roots)
            again, _ = find_and_stat(roots)
            rss, peak = daemon_rss(mnt)
        print(f"P4 find | xargs stat of {files} files ({total} versions and their .json): first {ours:.2f} s, "
              f"again {again:.2f} s (target <= 5 s: {verdict(ours, 5, higher_is_better=False)})")
        print(f"daemon memory: {at_start / 1e6:.0f} MB after mounting, {rss / 1e6:.0f} MB after the find, "
              f"peak {peak / 1e6:.0f} MB = {peak / at_start:.1f}x the start "
              f"(target <= 300 MB: {verdict(peak / 1e6, 300, higher_is_better=False)})")
        if args.s3fs_versions:
            scaled = s3fs_fuse(server, fs, bucket, work, min(args.s3fs_versions, total), total)
            print(f"P4 s3fs-fuse / artifactfs: {scaled / ours:.1f}x (target >= 10: {verdict(scaled / ours, 10)})")
    finally:
        server.stop()
        unmount(work / "mnt")
        unmount(work / "s3fs-fuse")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
