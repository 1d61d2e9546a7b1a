"""Benchmark: `artifactfs artifact list` on an index of 100k versions.

The index (a throwaway PostgreSQL started here, or ARTIFACTFS_INDEX_URL, or
--sqlite) is filled by the tests' bulk helper (``tests/bulk_rows.py``:
the rows a save leaves, without payloads; a listing never reads a store).
Then the command runs as users run it, a page at a time (the default
``--limit``), against the whole listing (``--limit 0``, what every listing
was before pages) measured in the same run.

    python bench/index_scale.py [--artifacts 20000] [--versions 5] [--sqlite]

Target (issue 15): `artifact list` <= 0.5 s at 100k versions. Printed: the
command's own time in the process (query and table), best of five, and a
whole `artifactfs artifact list` process for reference (its start-up,
imports included, is the CLI's start-up, measured by bench/cli_startup.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

TARGET_S = 0.5


def best_of(runs: int, action) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def listing(*args: str):
    """The command in this process, its output thrown away."""
    from click.testing import CliRunner

    from artifactfs.cli.main import cli

    def run() -> None:
        result = CliRunner().invoke(cli, ["artifact", "list", *args])
        assert result.exit_code == 0, result.output

    return run


def fill(artifacts: int, versions: int) -> float:
    from artifactfs import init
    from artifactfs.index import get_index
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from bulk_rows import insert_live_versions  # a test helper: nothing in the product inserts rows so

    init()
    started = time.perf_counter()
    insert_live_versions(get_index(), artifacts, versions, ("model.bin", "meta.json"))
    return time.perf_counter() - started


def measure(args) -> None:
    took = fill(args.artifacts, args.versions)
    total = args.artifacts * args.versions
    print(f"filled {total:,} versions of {args.artifacts:,} artifacts in {took:.1f} s "
          f"({total / took:,.0f} versions/s, bulk path of the index layer)")
    page = best_of(5, listing())
    everything = best_of(3, listing("--limit", "0"))
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("artifactfs")), "artifact", "list"], check=True,
                   stdout=subprocess.DEVNULL, env=os.environ.copy())
    process = time.perf_counter() - started
    verdict = "meets" if page <= TARGET_S else "MISSES"
    print(f"artifact list (a page, --limit 50): {page:.3f} s in the process (target <= {TARGET_S} s: {verdict})")
    print(f"artifact list --limit 0 (every artifact, the baseline): {everything:.3f} s; "
          f"page/baseline ratio {page / everything:.3f}")
    print(f"whole `artifactfs artifact list` process: {process:.2f} s (start-up and imports included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=20_000)
    parser.add_argument("--versions", type=int, default=5, help="versions per artifact")
    parser.add_argument("--sqlite", action="store_true", help="the default SQLite index instead of PostgreSQL")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="artifactfs-bench-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    os.environ["ARTIFACTFS_HOME"] = home
    server = None
    try:
        if args.sqlite:
            os.environ.pop("ARTIFACTFS_INDEX_URL", None)
        elif not os.environ.get("ARTIFACTFS_INDEX_URL"):
            import servers

            server = servers.start_postgres()
            os.environ["ARTIFACTFS_INDEX_URL"] = server.create_database("index_scale")
        print(f"index: {'SQLite' if args.sqlite else 'PostgreSQL'}")
        measure(args)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
