"""Benchmark: how fast the ``artifactfs`` command starts, against a bare
``python -c pass`` measured in the same run.

    python bench/cli_startup.py [--rounds 10] [--top 12]

Runs the ``artifactfs`` script beside this interpreter (the installed
command, as a user runs it) in a fresh ARTIFACTFS_HOME holding a small index
(20 artifacts). For each command it prints the median wall time and CPU time
(user + system of the child) over --rounds runs, the target, and the ratio
to ``python -c pass``; then the modules that cost ``artifact list`` most,
from ``python -X importtime``.

Targets (issues 11 and 20): ``--version`` and ``--help`` under 0.15 s,
``artifact list`` on a small index at most 0.3 s (median of 10, idle
machine). On a machine busy with other work the wall times grow; the CPU
times and the ratio to ``python -c pass`` show the command's own cost. Two
rows show floors no change of ours lowers: ``import sqlalchemy`` (Core:
``artifact list`` must query the index; it loads no ORM) and the imports
of the three libraries the command stands on (click parses, SQLAlchemy
queries, rich prints the table), both with the collector set as the
command sets it.

The commands run with their bytecode cached, as an installed package's do
(PYTHONDONTWRITEBYTECODE is dropped: run from a source tree, every module
would otherwise be compiled again on every run).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = str(Path(sys.executable).with_name("artifactfs"))


def floor(imports: str) -> str:
    """``imports`` under the collector settings the command runs with
    (``artifactfs.cli.main.main``: rarer young passes, the heap frozen at
    exit), so that a floor stays a floor."""
    from artifactfs.cli.main import YOUNG_COLLECTION_THRESHOLD

    return f"import gc; gc.set_threshold({YOUNG_COLLECTION_THRESHOLD}); {imports}; gc.freeze()"


COMMANDS = [
    ("python -c pass", [sys.executable, "-c", "pass"], None),
    ("artifactfs --version", [SCRIPT, "--version"], 0.15),
    ("artifactfs --help", [SCRIPT, "--help"], 0.15),
    ("import sqlalchemy", [sys.executable, "-c", floor("import sqlalchemy")], None),
    ("import click+sqlalchemy+rich", [sys.executable, "-c", floor("import click, sqlalchemy, rich.console, rich.table")],
     None),
    ("artifactfs artifact list", [SCRIPT, "artifact", "list"], 0.30),
]


def timed(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def small_index(env: dict) -> None:
    code = "from artifactfs import save_artifact\nfor i in range(20): save_artifact({'i': i}, f'artifact-{i}')"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    subprocess.run([SCRIPT, "artifact", "list"], env=env, check=True, stdout=subprocess.DEVNULL)  # warm caches


def import_offenders(env: dict, top: int) -> list[tuple[float, float, str]]:
    """(cumulative ms, own ms, module) of the top-level imports that cost most."""
    code = "import sys; sys.argv = ['artifactfs', 'artifact', 'list']; from artifactfs.cli.main import main; main()"
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True)
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line[13:]:
            continue
        own, cumulative, name = (part.strip() for part in line[12:].split("|"))
        if own.isdigit() and name.count(".") <= 1:  # packages and their direct modules
            rows.append((int(cumulative) / 1000, int(own) / 1000, name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="artifactfs-bench-cli.")
    env = {**os.environ, "ARTIFACTFS_HOME": home}
    env.pop("ARTIFACTFS_INDEX_URL", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        small_index(env)
        # Interleaved rounds: a burst of load from elsewhere hits every command alike.
        samples = {label: [] for label, _, _ in COMMANDS}
        for _ in range(args.rounds):
            for label, argv, _ in COMMANDS:
                samples[label].append(timed(argv, env))
        base_wall = statistics.median(w for w, _ in samples["python -c pass"])
        print(f"artifactfs startup, median of {args.rounds} runs, load average {os.getloadavg()[0]:.1f}")
        print(f"{'command':<28} {'wall s':>7} {'cpu s':>7} {'target':>7}  {'x python -c pass':>16}  verdict")
        for label, _, target in COMMANDS:
            wall = statistics.median(w for w, _ in samples[label])
            cpu = statistics.median(c for _, c in samples[label])
            verdict = "" if target is None else ("ok" if wall <= target else "OVER (wall)" if cpu < target else "OVER")
            target_text = "-" if target is None else f"{target:.2f}"
            print(f"{label:<28} {wall:7.3f} {cpu:7.3f} {target_text:>7}  {wall / base_wall:16.1f}  {verdict}")
        print("\nartifact list: costliest imports (python -X importtime, ms)")
        print(f"{'cumulative':>10} {'own':>7}  module")
        for cumulative, own, name in import_offenders(env, args.top):
            print(f"{cumulative:10.1f} {own:7.1f}  {name}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
