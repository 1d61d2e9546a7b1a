"""Opening a payload file beneath a store root (``stores.beneath``): one
``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`` call against the walk of
``O_NOFOLLOW`` opens component by component, and against what the mount did
before (``realpath`` check, then ``open`` by name: two lookups).

    python bench/beneath_open.py [--opens 20000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from artifactfs.stores import beneath


def per_open(call, opens: int) -> float:
    """Best of three rounds, microseconds per open + close."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(opens):
            os.close(call())
        best = min(best, (time.perf_counter() - began) / opens * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opens", type=int, default=20000)
    opens = parser.parse_args().opens
    with tempfile.TemporaryDirectory() as folder:
        os.makedirs(f"{folder}/name/0b6f1a3e-8c1d-4a7e-9f00-123456789abc")
        relative = "name/0b6f1a3e-8c1d-4a7e-9f00-123456789abc/data.json"
        with open(f"{folder}/{relative}", "wb") as f:
            f.write(b"{}")
        root = beneath.Root(folder)
        real = os.path.realpath(folder)
        figures = {}
        if beneath._openat2_call() is not None:
            figures["openat2 (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)"] = per_open(
                lambda: root.open_read_fd(relative), opens)
        beneath.USE_OPENAT2 = False
        figures["O_NOFOLLOW walk, one component at a time"] = per_open(lambda: root.open_read_fd(relative), opens)
        figures["before: realpath check, then open by name"] = per_open(
            lambda: os.open(os.path.realpath(f"{real}/{relative}"), os.O_RDONLY | os.O_CLOEXEC), opens)
    for what, micros in figures.items():
        print(f"{what:52s} {micros:6.1f} µs per open")


if __name__ == "__main__":
    main()
