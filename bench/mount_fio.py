"""Benchmark (issue 13, item 3): reads through the mount that match the
access pattern. fio runs the same job on a local-store payload through the
mount and on the store's own file, in the same run, with the page cache
dropped before each cold job. Read amplification (bytes read from the disk
per byte asked) is counted twice: as ``/proc/vmstat`` ``pgpgin`` (the whole
machine: other processes' reads inflate it on a shared machine) and as the
storage reads of the process that reads the disk (``/proc/<pid>/io``
``read_bytes`` of fio natively, of the mount daemon through the mount),
which the verdicts use.

    python bench/mount_fio.py [--gib 0.5] [--runtime 8] [--rounds 3]

Targets (mount / native, same job):
  randread 4 KiB, 1 reader, cold      >= 0.7, amplification <= 1.3x
  randread 4 KiB, 4 readers, cold     >= 0.5, amplification <= 1.3x  (issue 23, goal 2)
  4 readers / 1 reader (mount)        >= 2x                           (issue 23, goal 2)
  sequential 1 MiB, cold              >= 0.5
  sequential 1 MiB, warm re-read      >= 0.9  (P1: the kernel keeps the page cache across opens)

The floor (issue 23, goal 6): the same jobs through pyfuse3's own
``examples/passthroughfs.py`` over the payload's folder, in the same round
(``mount_common.passthroughfs_script`` says where it comes from). The
requests the daemon served per MiB read are printed under each job.

Needs root (to drop the page cache) and fio (``apt-get install fio``;
``scripts/install-test-deps.sh`` installs it); says so and exits otherwise.
Other processes reading from the disk meanwhile inflate ``pgpgin``: run it
on a quiet machine. Rounds interleave native, floor and mount; each figure
is the median of ``--rounds``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mount_common import (MiB, artifactfs_mount, daemon_pid, drop_kernel_caches, fresh_home, median, passthrough_mount,
                          request_counts, requests_between, scratch, verdict)


def pgpgin_bytes() -> int:
    """What the whole machine read from block devices (KiB in /proc/vmstat)."""
    with open("/proc/vmstat") as f:
        for line in f:
            key, value = line.split()
            if key == "pgpgin":
                return int(value) * 1024
    raise RuntimeError("no pgpgin in /proc/vmstat")


def read_bytes(pid: int | str = "self") -> int:
    """Bytes a process (with its reaped children) made the kernel read from storage."""
    with open(f"/proc/{pid}/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("read_bytes:"))


def fio(path: Path, rw: str, bs: str, jobs: int, runtime: float | None, cold: bool, reader: int | None = None) -> dict:
    """One fio job on ``path``: MB/s and disk read amplification, both as the
    machine's ``pgpgin`` (counts every process: noisy on a shared machine)
    and as the storage reads of the process that reads the disk (``reader``:
    the mount daemon; by default fio itself, counted once reaped)."""
    argv = ["fio", "--name=bench", f"--filename={path}", "--readonly", f"--rw={rw}", f"--bs={bs}",
            f"--numjobs={jobs}", "--ioengine=psync", "--group_reporting", "--output-format=json",
            "--invalidate=0", "--randrepeat=0"]
    if runtime:
        argv += ["--time_based", f"--runtime={runtime}"]
    if cold and not drop_kernel_caches(3):
        raise SystemExit("cannot drop the page cache: run as root")
    before, own_before = pgpgin_bytes(), read_bytes(reader or "self")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    after, own_after = pgpgin_bytes(), read_bytes(reader or "self")
    if result.returncode:
        raise RuntimeError(f"fio failed: {result.stderr.strip() or result.stdout[-2000:]}")
    read = json.loads(result.stdout[result.stdout.index("{"):])["jobs"][0]["read"]
    asked = max(read["io_bytes"], 1)
    return {"mbps": read["bw_bytes"] / 1e6, "iops": read["iops"], "asked": asked,
            "pgpgin": (after - before) / asked, "amplification": (own_after - own_before) / asked}


def make_payload(gib: float) -> tuple[Path, str]:
    """A local-store payload of ``gib`` GiB of random bytes: (its file, its path in the mount)."""
    from artifactfs import init, register_artifact

    init()
    source = scratch("mount-fio-src-") / "data"
    source.mkdir()
    block = os.urandom(64 * MiB)
    with open(source / "payload.bin", "wb") as f:
        for _ in range(max(1, int(gib * 1024) // 64)):
            f.write(block[:32 * MiB] + os.urandom(32 * MiB))  # not one block repeated: no dedup anywhere
    version = register_artifact(source, "fio", copy=True)
    shutil.rmtree(source)
    return Path(version.file_uri("payload.bin")), "artifacts/fio/1/payload.bin"


JOBS = {
    "randread 4 KiB, 1 reader, cold": ("randread", "4k", 1, True),
    "randread 4 KiB, 4 readers, cold": ("randread", "4k", 4, True),
    "sequential 1 MiB, cold": ("read", "1M", 1, True),
    "sequential 1 MiB, warm re-read": ("read", "1M", 1, False),
}
TARGETS = {"randread 4 KiB, 1 reader, cold": 0.7, "randread 4 KiB, 4 readers, cold": 0.5,
           "sequential 1 MiB, cold": 0.5, "sequential 1 MiB, warm re-read": 0.9}
WHERES = ("native", "passthroughfs", "mount")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=0.5)
    parser.add_argument("--runtime", type=float, default=8.0, help="seconds per random-read job")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("fio") is None:
        print("SKIPPED: fio is not installed (apt-get install fio, or scripts/install-test-deps.sh)")
        return
    if os.geteuid() != 0:
        print("SKIPPED: dropping the page cache needs root")
        return
    fresh_home()
    payload, inside = make_payload(args.gib)
    print(f"payload: {args.gib:g} GiB at {payload}; fio {subprocess.run(['fio', '--version'], capture_output=True, text=True).stdout.strip()}; "
          f"{args.rounds} rounds, each job native, through passthroughfs and through the mount in turn; medians")
    runs: dict[tuple[str, str], list[dict]] = {}
    requests: dict[str, list[dict]] = {}
    work = scratch("mount-fio-")
    for _ in range(args.rounds):
        with artifactfs_mount(work / "mnt") as mnt, passthrough_mount(payload.parent, work / "floor") as floor:
            daemon = daemon_pid(mnt)
            for job, (rw, bs, jobs, cold) in JOBS.items():
                runtime = args.runtime if rw == "randread" else None
                places = {"native": (payload, None), "passthroughfs": (floor / payload.name, None),
                          "mount": (mnt / inside, daemon)}
                for where in WHERES:
                    path, reader = places[where]
                    if not cold:
                        fio(path, rw, bs, jobs, runtime, cold=True)  # the first read warms the cache
                    before = request_counts(mnt) if where == "mount" else None
                    # passthroughfs reads the disk in its own process: count fio's (and the machine's) reads
                    runs.setdefault((job, where), []).append(fio(path, rw, bs, jobs, runtime, cold, reader))
                    if before is not None:
                        requests.setdefault(job, []).append(requests_between(before, request_counts(mnt)))
    med = {key: {field: median([r[field] for r in values]) for field in values[0]} for key, values in runs.items()}
    print(f"{'job':36s} {'native MB/s':>12s} {'floor MB/s':>11s} {'mount MB/s':>11s} {'mount/native':>12s} "
          f"{'mount/floor':>11s}  amplification native / mount (storage reads of the reading process; "
          "pgpgin of the whole machine in brackets)")
    for job in JOBS:
        native, floor, mount = (med[(job, where)] for where in WHERES)
        ratio = mount["mbps"] / native["mbps"]
        line = (f"{job:36s} {native['mbps']:12.1f} {floor['mbps']:11.1f} {mount['mbps']:11.1f} {ratio:12.2f} "
                f"{mount['mbps'] / floor['mbps']:11.2f}  "
                f"{native['amplification']:.2f}x / {mount['amplification']:.2f}x "
                f"[{native['pgpgin']:.2f}x / {mount['pgpgin']:.2f}x]  "
                f"(ratio target >= {TARGETS[job]}: {verdict(ratio, TARGETS[job])}")
        if job.startswith("randread"):
            line += f"; amplification target <= 1.3: {verdict(mount['amplification'], 1.3, higher_is_better=False)}"
        print(line + ")")
        spent = requests.get(job, [None])[-1]
        if spent:
            per_mib = {op: round(n / (mount["asked"] / MiB), 2) for op, n in spent.items()}
            print(f"{'':36s} requests to the daemon (last round) per MiB read: {per_mib}")
    for where in WHERES:
        one = med[("randread 4 KiB, 1 reader, cold", where)]["mbps"]
        four = med[("randread 4 KiB, 4 readers, cold", where)]["mbps"]
        target = f"; target >= 2: {verdict(four / one, 2)}" if where == "mount" else ""
        print(f"4 readers / 1 reader, {where:14s} {four / one:5.2f}x{target}")


if __name__ == "__main__":
    sys.exit(main())
