"""Benchmark: a team's throughput on one PostgreSQL index.

N writer processes (8 by default), each a machine of its own (its own
ARTIFACTFS_HOME and machine id, so its own local store), run the example
pipeline (examples/training_pipeline.py: four steps, five outputs) with
fresh parameters, for a fixed time, all against one PostgreSQL started
here (or ARTIFACTFS_INDEX_URL). Baseline, measured in the same run: the
same N writers each committing trivial one-row insert transactions, the
database's own ceiling for N writers on this machine.

    python bench/team_throughput.py [--writers 8] [--seconds 30] [--rounds 2]
                                    [--compare-src /path/to/other/src]

``--compare-src`` runs the same writers with another checkout's ``src``
(e.g. the main branch before this change) and prints its figure. Each kind
is measured ``--rounds`` times, the kinds taking turns (a shared machine's
load moves), and the best round of each counts.

Target (issue 15): >= 40 example runs/s for 8 writers.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

TARGET = 40.0


def _writer(kind: str, number: int, url: str, seconds: float, src: str, home: str, ready, go, results) -> None:
    """One writer process: warm up, wait for the start, work until time is up."""
    sys.path.insert(0, src)
    sys.path.insert(0, str(REPO / "examples"))
    os.environ.update(ARTIFACTFS_HOME=os.path.join(home, f"w{number}"), ARTIFACTFS_INDEX_URL=url,
                      ARTIFACTFS_MACHINE_ID=f"writer{number:02d}{'0' * 24}")
    work = _example(number) if kind == "example" else _trivial(url, number)
    work(-1)  # imports, migrations, the writer's store
    ready.put(number)
    go.wait()
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        work(done)
        done += 1
    results.put(done)


def _example(number: int):
    import training_pipeline as example

    run = example.training_pipeline.with_options(enable_cache=False, quiet=True)

    def once(i: int) -> None:
        assert run(noise=0.05 + number + i * 1e-6).status == "completed"

    return once


def _trivial(url: str, number: int):
    import psycopg

    conn = psycopg.connect(_libpq(url))

    def once(i: int) -> None:
        conn.execute("INSERT INTO bench_trivial (writer, n) VALUES (%s, %s)", (number, i))
        conn.commit()

    return once


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def measure(kind: str, writers: int, url: str, seconds: float, src: str) -> float:
    """Units of work per second of ``writers`` processes together."""
    if kind == "trivial":
        import psycopg

        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_trivial (id bigserial PRIMARY KEY, writer int, n int)")
    context = mp.get_context("spawn")  # no engine or thread crosses a fork
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    home = tempfile.mkdtemp(prefix="artifactfs-team-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    procs = [context.Process(target=_writer, args=(kind, n, url, seconds, src, home, ready, go, results))
             for n in range(writers)]
    try:
        for proc in procs:
            proc.start()
        for _ in procs:
            _wait_ready(ready, procs)
        go.set()
        total = sum(results.get(timeout=seconds + 600) for _ in procs)
        for proc in procs:
            proc.join(60)
        return total / seconds
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
            proc.join()  # nothing writes into the homes any more
        shutil.rmtree(home, ignore_errors=True)


def _wait_ready(ready, procs) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
        if failed:
            raise RuntimeError(f"a writer failed while warming up (exit codes {failed}); see its traceback above")
        try:
            return ready.get(timeout=1)
        except queue.Empty:
            continue
    raise RuntimeError("writers did not warm up within 10 minutes")


def statements_per_step(url: str, src: str) -> float:
    """Statements one example run sends, per step (one writer, alone)."""
    context = mp.get_context("spawn")
    out = context.Queue()
    proc = context.Process(target=_count_statements, args=(url, src, out))
    proc.start()
    count = out.get(timeout=600)
    proc.join(60)
    return count


def _count_statements(url: str, src: str, out) -> None:
    sys.path.insert(0, src)
    sys.path.insert(0, str(REPO / "examples"))
    home = tempfile.mkdtemp(prefix="artifactfs-count-")
    os.environ.update(ARTIFACTFS_HOME=home, ARTIFACTFS_INDEX_URL=url, ARTIFACTFS_MACHINE_ID="counter" + "0" * 25)
    import training_pipeline as example
    from sqlalchemy import event

    from artifactfs.index import get_index

    run = example.training_pipeline.with_options(enable_cache=False, quiet=True)
    run(noise=0.5)
    seen = [0]
    event.listen(get_index().engine, "before_cursor_execute", lambda *a: seen.__setitem__(0, seen[0] + 1))
    result = run(noise=0.7)
    out.put(seen[0] / len(result.steps))
    shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compare-src", help="another checkout's src folder, measured the same way")
    args = parser.parse_args()
    src = str(REPO / "src")
    server = None
    try:
        if os.environ.get("ARTIFACTFS_INDEX_URL"):
            base = os.environ["ARTIFACTFS_INDEX_URL"]
            databases = [base] * 3
        else:
            import servers

            server = servers.start_postgres()
            databases = [server.create_database(name) for name in ("team_trivial", "team_example", "team_compare")]
        load = os.getloadavg()[0]
        kinds = [("trivial", databases[0], src), ("example", databases[1], src)]
        if args.compare_src:
            kinds.append(("example", databases[2], args.compare_src))
        best = [0.0] * len(kinds)
        for _ in range(args.rounds):
            for i, (kind, url, tree) in enumerate(kinds):
                best[i] = max(best[i], measure(kind, args.writers, url, args.seconds, tree))
        trivial, runs = best[0], best[1]
        print(f"{args.writers} writers, {args.seconds:g} s each, best of {args.rounds} rounds, load average "
              f"{load:.1f} before on {os.cpu_count()} cores")
        print(f"baseline: {trivial:,.0f} trivial one-row insert transactions/s")
        verdict = "meets" if runs >= TARGET else "MISSES"
        print(f"example pipeline: {runs:.1f} runs/s (target >= {TARGET:g}: {verdict}); "
              f"ratio to the baseline {runs / trivial:.4f} ({trivial / runs:.0f} trivial transactions per run)")
        print(f"statements per step: {statements_per_step(databases[1], src):.1f}")
        if args.compare_src:
            other = best[2]
            print(f"the same with {args.compare_src}: {other:.1f} runs/s, "
                  f"{statements_per_step(databases[2], args.compare_src):.1f} statements per step; "
                  f"this tree does {runs / other:.2f}x its runs/s")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
