"""Benchmark: what safe loads cost, against baselines measured in the same run.

    python bench/loads.py [--pickle-mib 256] [--file-mib 512]

- A pickled value (the cloudpickle fallback): ``load_artifact`` reads each
  file once, hashes it and unpickles that same copy; the baselines are the
  old way (hash every payload file, then let the materializer read them
  again from the store: two reads, the second unchecked) and a bare
  ``cloudpickle.load`` of the stored file (no check at all).
- A file artifact: the default load is a private copy, against
  ``shutil.copyfile`` of the same file; ``zero_copy=True`` reads through a
  read-only view, against ``open().read()`` of the stored file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import cloudpickle
import numpy as np


class Blob:
    """Not JSON-able, so stored by the cloudpickle fallback."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data


def best(sides: dict, rounds: int = 3) -> dict[str, float]:
    """Best of ``rounds`` for each side; the order rotates between rounds (the
    first large allocation after a free pays the page faults)."""
    names = list(sides)
    times: dict[str, float] = {name: float("inf") for name in names}
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            started = time.perf_counter()
            sides[name]()
            times[name] = min(times[name], time.perf_counter() - started)
    return times


def pickles(mib: int, rounds: int, small: int = 200) -> None:
    from artifactfs import get_artifact_version, load_artifact, save_artifact
    from artifactfs.api.artifacts import _load
    from artifactfs.api.verified import verify_payload
    from artifactfs.materializers import CloudpickleMaterializer

    for name, value, repeat in (("small", Blob(np.arange(100)), small),
                                ("large", Blob(np.random.default_rng(0).random(mib * 1024 * 1024 // 8)), 1)):
        version = save_artifact(value, name)
        stored = os.path.join(version.uri, "artifact.pkl")
        found = get_artifact_version(name)

        def bare(stored=stored) -> None:
            with open(stored, "rb") as f:
                cloudpickle.load(f)

        def hash_then_load(found=found) -> None:  # what main did: hash every file, then read them again
            store = found.open_store()
            verify_payload(found, store)
            CloudpickleMaterializer(found.uri, store).load(object)

        t = best({"ours": lambda found=found: _load(found, False), "bare": bare, "hash_then_load": hash_then_load},
                 rounds * repeat)
        size = f"{os.path.getsize(stored) / 2**20:.1f} MiB" if name == "large" else f"{os.path.getsize(stored)} B"
        print(f"pickle of {size}: verified load {t['ours'] * 1e3:.2f} ms; hash then load "
              f"{t['hash_then_load'] * 1e3:.2f} ms (ratio {t['hash_then_load'] / t['ours']:.2f}); bare "
              f"cloudpickle.load, unchecked, {t['bare'] * 1e3:.2f} ms (ratio {t['bare'] / t['ours']:.2f})")
    assert isinstance(load_artifact("small"), Blob)


def files(mib: int, workdir: str, rounds: int) -> None:
    from artifactfs import load_artifact, save_artifact

    source = Path(workdir) / "model.bin"
    with open(source, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1024 * 1024))
    version = save_artifact(source, "model")
    stored = os.path.join(version.uri, "model.bin")
    copy_target = Path(workdir) / "copy.bin"

    def private_copy() -> None:
        path = load_artifact("model")
        shutil.rmtree(path.parent)

    def plain_read() -> None:
        with open(stored, "rb") as f:
            while f.read(8 << 20):
                pass

    def view_read() -> None:
        with load_artifact("model", zero_copy=True).open() as f:
            while f.read(8 << 20):
                pass

    t = best({"copy": private_copy, "copyfile": lambda: shutil.copyfile(stored, copy_target),
              "view": view_read, "read": plain_read}, rounds)
    print(f"file {mib} MiB: private copy {t['copy']:.3f} s; shutil.copyfile {t['copyfile']:.3f} s "
          f"(ratio {t['copyfile'] / t['copy']:.2f})")
    print(f"file {mib} MiB: zero_copy view read {t['view']:.3f} s; open().read() {t['read']:.3f} s "
          f"(ratio {t['read'] / t['view']:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pickle-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--file-mib", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="afs-bench-") as workdir:
        os.environ["ARTIFACTFS_HOME"] = os.path.join(workdir, "home")
        os.environ.pop("ARTIFACTFS_INDEX_URL", None)
        pickles(args.pickle_mib, args.rounds)
        files(args.file_mib, workdir, args.rounds)


if __name__ == "__main__":
    main()
