"""The pruner against concurrent runs and crashes, in separate processes:

R1  runs that link existing versions as inputs, and cached re-runs, while a
    pruner loops with grace 0 (SQLite and PostgreSQL): no run that linked an
    input fails to load it, no referenced version is ever condemned. Each
    worker runs a fixed number of rounds and the pruner a fixed number of
    passes, pass k starting once every worker finished k rounds (a
    rendezvous on progress files, never a wall-clock expectation).
R2  the pruner SIGKILLed at each phase boundary, then run again: every live
    row keeps its payload (also right after the kill), no payload older than
    the grace period lacks a row, nothing referenced is touched.
R3  a writer SIGKILLed between payload and commit: nothing is visible, and
    its orphan payload is swept only once it is older than the grace period.
"""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

pytest_plugins = ["index_fixtures"]

from artifactfs import Client, load_artifact, register_artifact, save_artifact  # noqa: E402
from artifactfs.index import get_index  # noqa: E402
from artifactfs.index import gc as gc_rows  # noqa: E402
from artifactfs.index.models import VersionRow  # noqa: E402
from artifactfs.index.models import GcLease, PipelineRun, StepIO, VersionFile, utcnow  # noqa: E402
from artifactfs.stores import layout  # noqa: E402
from gc_helpers import backdate_intents, backdate_tree, chain, root  # noqa: E402

R1_WORKERS, R1_ROUNDS, R1_PASSES = 3, 12, 10
R1_HANG_GUARD_S = 240  # only against a hang (under pytest-timeout's 300 s, so the logs print); no count depends on time
CLI = [sys.executable, "-c", "from artifactfs.cli.main import main; main()"]


def live_rows_have_payloads() -> list[str]:
    """Every live (or condemned, unswept) version's manifest files exist with their sizes."""
    problems = []
    with get_index().read() as session:
        versions = session.scalars(select(VersionRow).where(VersionRow.state == "live")).all()
        for v in versions:
            files = session.scalars(select(VersionFile).where(VersionFile.version_id == v.id)).all()
            for f in files:
                path = Path(v.uri) if v.payload_kind == "file" else Path(v.uri) / f.path
                if not path.is_file() or path.stat().st_size != f.size:
                    problems.append(f"{v.artifact.name}:{v.version} lost {f.path}")
    return problems


def unnamed_old_payloads(grace_hours: float = 1) -> list[str]:
    """Payload-layout folders older than the grace period that no row names."""
    with get_index().read() as session:
        uuids = set(session.scalars(select(VersionRow.uuid)))
    found = []
    cutoff = time.time() - grace_hours * 3600
    for name in root().iterdir():
        if not name.is_dir():
            continue
        for entry in name.iterdir():
            layout_entry = layout.classify(entry.name)
            if entry.is_dir() and layout_entry and layout_entry[1] != layout.MANIFEST and layout_entry[0] not in uuids:
                newest = max([p.stat().st_mtime for p in entry.rglob("*")] + [entry.stat().st_mtime])
                if newest < cutoff:
                    found.append(str(entry))
    return found


def referenced_condemned() -> list:
    with get_index().read() as session:
        return gc_rows.referenced_condemned(session)


# -- R1: runs and a looping pruner ---------------------------------------------------------

R1_WORKER = textwrap.dedent(
    f"""
    import faulthandler, json, os, random, sys
    from pathlib import Path
    faulthandler.enable()  # a hung race is ended with SIGABRT: every thread's stack goes to stderr
    sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
    from race_rounds import new_stats, race_round

    worker, rounds, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    progress = Path(out + ".progress")
    random.seed(worker)
    stats, previous = new_stats(), []
    for _ in range(rounds):
        previous = race_round(previous, stats)
        progress.with_suffix(".tmp").write_text(str(stats["rounds"]))
        os.replace(progress.with_suffix(".tmp"), progress)  # the pruner waits on this
    json.dump(stats, open(out, "w"))
    """
)

R1_PRUNER = textwrap.dedent(
    """
    import datetime as dt, faulthandler, json, sys, time, traceback
    from pathlib import Path
    faulthandler.enable()  # a hung race is ended with SIGABRT: every thread's stack goes to stderr
    from sqlalchemy import select
    from artifactfs.gc import PrunePolicy, LeaseHeldError, run_pass
    from artifactfs.index import get_index
    from artifactfs.index import gc as gc_rows
    from artifactfs.index.models import VersionRow

    passes, out, progress_files = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    policy = PrunePolicy(grace=dt.timedelta(0), keep_latest=0, sweep_delay=dt.timedelta(0),
                         orphan_grace=dt.timedelta(hours=1))
    stats = {"passes": 0, "condemned": 0, "refused": 0, "forgotten": 0, "violations": [], "errors": []}
    index = get_index()

    def rounds_done():
        done = []
        for name in progress_files:
            try:
                done.append(int(Path(name).read_text() or 0))
            except (FileNotFoundError, ValueError):
                done.append(0)
        return min(done)

    while stats["passes"] < passes:
        while rounds_done() < stats["passes"] + 1:  # pass k starts once every worker finished k rounds
            time.sleep(0.01)
        try:
            plan, result = run_pass(index, policy)
        except LeaseHeldError:
            continue
        except Exception:
            stats["errors"].append(traceback.format_exc()[-2000:])
            stats["passes"] += 1  # a failed pass counts: the test fails on its error, never hangs
            continue
        stats["passes"] += 1
        stats["condemned"] += len(result.condemned)
        stats["refused"] += len(result.refused)
        stats["forgotten"] += len(result.forgotten)
        if result.stopped or result.errors:
            stats["errors"].append(f"{result.stopped} {result.errors}")
        with index.read() as session:
            bad = gc_rows.referenced_condemned(session)
            live = session.execute(select(VersionRow.uri).where(VersionRow.state == "live")).scalars().all()
        stats["violations"] += [f"referenced but condemned: {v.label}" for v in bad]
        stats["violations"] += [f"live row without payload: {uri}" for uri in live if not Path(uri).exists()]
    json.dump(stats, open(out, "w"))
    """
)


def test_r1_runs_race_a_looping_pruner(afs_home, tmp_path):
    for i in range(4):
        save_artifact({"i": i}, "data")
    worker_py, pruner_py = tmp_path / "worker.py", tmp_path / "pruner.py"
    worker_py.write_text(R1_WORKER)
    pruner_py.write_text(R1_PRUNER)
    env = {**os.environ}
    outs = [tmp_path / f"w{i}.json" for i in range(R1_WORKERS)]
    logs = [tmp_path / f"w{i}.err" for i in range(R1_WORKERS)] + [tmp_path / "p.err"]
    commands = [[sys.executable, str(worker_py), str(i), str(R1_ROUNDS), str(out)] for i, out in enumerate(outs)]
    commands.append([sys.executable, str(pruner_py), str(R1_PASSES), str(tmp_path / "p.json"),
                     *(f"{out}.progress" for out in outs)])
    handles = [log.open("wb") for log in logs]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=handle)
             for command, handle in zip(commands, handles)]
    hung = []
    try:
        # The pruner waits for every worker's rounds: a worker that dies would
        # leave it waiting, so the first process to fail ends the race at once
        # (its own error printed below, not a timeout of another).
        deadline = time.monotonic() + R1_HANG_GUARD_S
        while any(p.poll() is None for p in procs) and not any(p.returncode for p in procs):
            if time.monotonic() > deadline:
                hung = [c[1] for c, p in zip(commands, procs) if p.poll() is None]
                break
            time.sleep(0.1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGABRT)  # faulthandler prints where each thread waits
        for p, handle in zip(procs, handles):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
            p.wait()
            handle.close()
    for p, log in zip(procs, logs):
        if p.returncode != 0:
            print(log.name, log.read_text()[-8000:])
    assert not hung, f"the race hung in {hung} (their stderr is printed above)"
    assert [p.returncode for p in procs] == [0] * len(procs), "a process crashed (its stderr is printed above)"
    workers = [json.loads(out.read_text()) for out in outs]
    pruner = json.loads((tmp_path / "p.json").read_text())
    failures = [f for w in workers for f in w["failures"] + w["problems"]]
    assert not failures, failures[0]
    assert not pruner["violations"], pruner["violations"][:5]
    assert not pruner["errors"], pruner["errors"][:3]
    # Fixed counts: every round ran, every pass ran, interleaved by the rendezvous.
    assert [w["rounds"] for w in workers] == [R1_ROUNDS] * R1_WORKERS
    assert pruner["passes"] == R1_PASSES
    # The race really happened: the pruner removed things while runs linked and re-used them.
    assert pruner["condemned"] >= 3, pruner
    assert sum(w["linked_runs"] for w in workers) >= 3, workers
    assert sum(w["cached_steps"] for w in workers) >= 1, workers
    assert sum(w["real_steps"] for w in workers) >= 3, workers
    # Final state: nothing referenced is condemned, every linked version loads.
    assert not referenced_condemned()
    assert not live_rows_have_payloads()
    with get_index().read() as session:
        linked = set(session.scalars(select(StepIO.version_id)))
        uuids = session.scalars(select(VersionRow.uuid).where(VersionRow.id.in_(linked))).all()
    for uuid in uuids:
        Client().get_artifact_version(uuid).load(verify=True)
    print("R1", {k: sum(w[k] for w in workers) for k in ("linked_runs", "refused", "cached_steps", "real_steps")},
          {k: pruner[k] for k in ("passes", "condemned", "refused", "forgotten")})


# -- R2: a pruner killed at each phase boundary ---------------------------------------------

FAULT_POINTS = ["gc_after_runs", "gc_after_condemn", "gc_mid_sweep", "gc_after_sweep", "gc_after_forget",
                "gc_mid_orphans", "gc_after_orphans"]


def _populate() -> dict:
    old_run = chain(n=2)  # older: its outputs are not the newest of their names
    kept_run = chain(n=1)
    referenced = {v.id for s in kept_run.steps.values() for v in list(s.inputs.values()) + list(s.outputs.values())}
    junk = [save_artifact({"j": i}, "junk") for i in range(6)]
    ckpt = root() / "user" / "ckpt"
    ckpt.mkdir(parents=True)
    (ckpt / "weights.bin").write_bytes(b"w" * 1000)
    in_place = register_artifact(ckpt, "ckpt")
    save_artifact("newer", "ckpt")
    old_orphans = []
    for i in range(3):
        folder = root() / "lost" / f"{i}b6f1a3e-8c1d-4a7e-9f00-123456789abc"
        folder.mkdir(parents=True)
        (folder / "part").write_bytes(b"p" * 10)
        backdate_tree(folder)
        old_orphans.append(folder)
    young = root() / "lost" / "9b6f1a3e-8c1d-4a7e-9f00-123456789abc"
    young.mkdir()
    (young / "part").write_bytes(b"young")
    with get_index().write() as session:
        session.execute(update(VersionRow).values(created_at=utcnow() - dt.timedelta(hours=48)))
        session.execute(update(PipelineRun).where(PipelineRun.name == old_run.name)
                        .values(start_time=utcnow() - dt.timedelta(days=40)))
    old_outputs = {v.id for s in old_run.steps.values() for v in s.outputs.values()}
    assert len(old_outputs - referenced) == 2
    doomed = {v.id for v in junk[:5]} | {in_place.id} | (old_outputs - referenced)
    return {"referenced": referenced, "doomed": doomed, "ckpt": ckpt, "orphans": old_orphans, "young": young,
            "old_run": old_run.name, "kept_run": kept_run.name}


def _gc(fault: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ}
    env.pop("ARTIFACTFS_FAULT", None)
    if fault:
        env["ARTIFACTFS_FAULT"] = fault
    return subprocess.run(CLI + ["gc", "-y", "--grace", "1h", "--runs-older-than", "30d"], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("fault", FAULT_POINTS)
def test_r2_pruner_killed_at_each_phase_boundary(afs_home, fault):
    data = _populate()
    killed = _gc(fault)
    assert killed.returncode == -9, (killed.stdout, killed.stderr)  # the point was reached
    assert not live_rows_have_payloads()  # even mid-protocol, no live row lacks its payload
    assert not referenced_condemned()
    with get_index().read() as session:
        assert session.get(GcLease, "pruner").holder is not None  # the dead pruner's lease is left behind
    rerun = _gc(None)
    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    assert not live_rows_have_payloads()
    assert not unnamed_old_payloads()
    assert not referenced_condemned()
    with get_index().read() as session:
        rows = dict(session.execute(select(VersionRow.uuid, VersionRow.state)).all())
        assert session.get(GcLease, "pruner").holder is None
        runs = set(session.scalars(select(PipelineRun.name)))
    for uuid in data["referenced"]:
        assert rows[uuid] == "live"
        Client().get_artifact_version(uuid).load(verify=True)
    assert not data["doomed"] & set(rows), "everything unreferenced is gone after the rerun"
    assert not data["ckpt"].exists() and all(not o.exists() for o in data["orphans"])
    assert data["young"].exists()
    assert runs == {data["kept_run"]}
    assert load_artifact("ckpt") == "newer" and load_artifact("junk") == {"j": 5}


# -- R3: a writer killed between payload and commit -----------------------------------------

KILLED_WRITER = textwrap.dedent(
    """
    from artifactfs import save_artifact
    save_artifact({"never": "committed"}, "victim")
    """
)


def test_r3_killed_writer_orphan_swept_only_after_grace(afs_home):
    survivor = save_artifact({"ok": 1}, "victim")
    env = {**os.environ, "ARTIFACTFS_FAULT": "before_commit"}
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9
    folders = sorted(f for f in (root() / "victim").iterdir() if f.is_dir())
    orphan = next(f for f in folders if f.name != survivor.id)
    assert (orphan / "data.json").exists()
    # Nothing is visible: one version, the survivor.
    assert [v.id for v in Client().list_artifact_versions("victim")] == [survivor.id]
    assert load_artifact("victim") == {"ok": 1}
    result = subprocess.run(CLI + ["gc", "-y"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "younger than 1d" in result.stdout and orphan.exists()
    manifest = orphan.parent / f"{orphan.name}.manifest.json"  # written before the commit, as fsck --adopt needs
    assert manifest.exists()
    for hours in (23, 25):  # time passes for the folder, its manifest file and the killed writer's intent
        backdate_tree(orphan, hours=hours)
        backdate_tree(manifest, hours=hours)
        backdate_intents(hours=hours)
        result = subprocess.run(CLI + ["gc", "-y"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert orphan.exists() == (hours < 24), result.stdout
    assert "deleted 1 orphan payload(s)" in result.stdout
    assert not manifest.exists()
    assert load_artifact("victim") == {"ok": 1} and Path(survivor.uri).exists()
