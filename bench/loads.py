"""Benchmark: what safe loads cost, against baselines measured in the same run.

    python bench/loads.py [--pickle-mib 256] [--file-mib 512]

- A pickled value (the cloudpickle fallback): ``load_artifact`` reads the
  file once, hashes it and unpickles that same copy; the baselines are a
  bare ``cloudpickle.load`` of the stored file (no check at all) and the
  old way, hash the file then unpickle it from disk (two reads, and the
  second one unchecked).
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


def best(action, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def pickles(mib: int) -> None:
    from artifactfs import load_artifact, save_artifact
    from artifactfs.stores.manifest import hash_local_file

    version = save_artifact(Blob(np.random.default_rng(0).random(mib * 1024 * 1024 // 8)), "blob")
    stored = os.path.join(version.uri, "artifact.pkl")

    def bare() -> None:
        with open(stored, "rb") as f:
            cloudpickle.load(f)

    def hash_then_load() -> None:
        hash_local_file(stored, version.hash_algorithm)
        bare()

    ours = best(lambda: load_artifact("blob"))
    print(f"pickle {mib} MiB: verified load {ours:.3f} s; bare cloudpickle.load {best(bare):.3f} s "
          f"(ratio {best(bare) / ours:.2f}); hash then load {best(hash_then_load):.3f} s "
          f"(ratio {best(hash_then_load) / ours:.2f})")


def files(mib: int, workdir: str) -> None:
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

    ours, baseline = best(private_copy), best(lambda: shutil.copyfile(stored, copy_target))
    print(f"file {mib} MiB: private copy {ours:.3f} s; shutil.copyfile {baseline:.3f} s (ratio {baseline / ours:.2f})")
    ours, baseline = best(view_read), best(plain_read)
    print(f"file {mib} MiB: zero_copy view read {ours:.3f} s; open().read() {baseline:.3f} s "
          f"(ratio {baseline / ours:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pickle-mib", type=int, default=256)
    parser.add_argument("--file-mib", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="afs-bench-") as workdir:
        os.environ["ARTIFACTFS_HOME"] = os.path.join(workdir, "home")
        os.environ.pop("ARTIFACTFS_INDEX_URL", None)
        pickles(args.pickle_mib)
        files(args.file_mib, workdir)


if __name__ == "__main__":
    main()
