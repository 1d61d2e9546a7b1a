"""The pruner against real indexes (SQLite and PostgreSQL) and the local
store: what is a candidate, the phases, the plan against what is deleted,
dry runs, sweep delay, -a/-m, registered-in-place payloads, orphans, runs
retention, the lease, and the CLI."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

pytest_plugins = ["index_fixtures"]

import artifactfs  # noqa: E402
from artifactfs import Client, load_artifact, register_artifact, save_artifact  # noqa: E402
from artifactfs.cli.main import cli  # noqa: E402
from artifactfs.gc import (  # noqa: E402
    Lease,
    LeaseHeldError,
    PolicyError,
    PrunePolicy,
    execute,
    load_policy_file,
    plan_prune,
    run_pass,
)
from artifactfs.index import get_index  # noqa: E402
from artifactfs.index import gc as gc_rows  # noqa: E402
from artifactfs.index.models import VersionRow  # noqa: E402
from artifactfs.index.models import GcLease, PipelineRun, utcnow  # noqa: E402
from artifactfs.index.pipelines import VersionNotLiveError, link  # noqa: E402
from artifactfs.stores.layout import count_payloads  # noqa: E402
from gc_helpers import backdate_all, backdate_tree, chain, root, states  # noqa: E402

HOUR = dt.timedelta(hours=1)
ORPHAN_UUID = "0b6f1a3e-8c1d-4a7e-9f00-123456789abc"


# -- helpers ----------------------------------------------------------------------------


def backdate(*versions, hours: float = 48) -> None:
    """Make versions look old (created ``hours`` ago)."""
    ids = [v._pk for v in versions]
    with get_index().write() as session:
        session.execute(update(VersionRow).where(VersionRow.id.in_(ids))
                        .values(created_at=utcnow() - dt.timedelta(hours=hours)))


def rows_count() -> int:
    with get_index().read() as session:
        return session.scalar(select(func.count()).select_from(VersionRow))


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def prune(**policy) -> tuple:
    policy.setdefault("grace", HOUR)
    return run_pass(get_index(), PrunePolicy(**policy))


def make_orphan(name: str = "lost", uuid: str = ORPHAN_UUID, hours: float | None = 48) -> Path:
    folder = root() / name / uuid
    folder.mkdir(parents=True)
    (folder / "data.json").write_text('{"half": "written"}')
    if hours is not None:
        backdate_tree(folder, hours)
    return folder


# -- what is a candidate --------------------------------------------------------------------


def test_candidates_and_protections(afs_home):
    old = [save_artifact({"i": i}, "data") for i in range(4)]  # data:1..4, newest is 4
    kept_by_tag = save_artifact({"x": 1}, "tagged", tags=["keep"])
    save_artifact({"x": 2}, "tagged")
    custom_tag = save_artifact({"x": 1}, "prod", tags=["production"])
    save_artifact({"x": 2}, "prod")
    young = save_artifact({"y": 1}, "fresh")
    save_artifact({"y": 2}, "fresh")
    run = chain(n=3)
    referenced = list(run.steps["produce"].outputs.values()) + list(run.steps["consume"].outputs.values())
    backdate_all()
    backdate(young, hours=0)

    plan, result = prune(keep_tags=frozenset({"keep", "production"}))
    expected = {v.id for v in old[:3]}
    assert {v.uuid for v in plan.condemn} == expected
    assert result.ok and len(result.condemned) == 3 and len(result.forgotten) == 3
    left = states()
    assert not expected & set(left)
    for v in [old[3], kept_by_tag, custom_tag, young, *referenced]:
        assert left[v.id] == "live"
        assert Path(v.uri).exists()
    assert load_artifact("data") == {"i": 3}
    assert not any((root() / "data" / v.id).exists() for v in old[:3])

    # Without the extra tag, the production version goes too; keep_latest=0 takes the newest as well.
    plan, _ = prune(keep_latest=0)
    gone = {v.uuid for v in plan.condemn}
    assert custom_tag.id in gone and old[3].id in gone and kept_by_tag.id not in gone
    assert not gone & {v.id for v in referenced}


def test_grace_protects_young_versions(afs_home):
    save_artifact(1, "g")
    save_artifact(2, "g")
    plan, result = prune(grace=dt.timedelta(hours=24))
    assert plan.empty and not result.condemned
    plan, result = prune(grace=dt.timedelta(0))
    assert len(result.forgotten) == 1


def test_deleted_run_makes_outputs_candidates_and_cache_reruns(afs_home):
    first = chain(n=5)
    outputs = [v for s in first.steps.values() for v in s.outputs.values()]
    second = chain(n=5)
    assert all(s.is_cached for s in second.steps.values())
    backdate_all()
    plan, _ = prune(keep_latest=0)
    assert plan.empty  # both runs link the outputs
    Client().delete_pipeline_run(first.name)
    plan, _ = prune(keep_latest=0)
    assert plan.empty  # the cached run still links them
    Client().delete_pipeline_run(second.name)
    plan, result = prune(keep_latest=0)
    assert {v.uuid for v in plan.condemn} == {v.id for v in outputs}
    assert all(not Path(v.uri).exists() for v in outputs)
    third = chain(n=5)  # the cache entry's outputs are gone: the steps run for real
    assert not any(s.is_cached for s in third.steps.values())
    assert third.steps["consume"].output.load() == 10


def test_link_refuses_condemned_version(afs_home):
    v = save_artifact(1, "victim")
    save_artifact(2, "victim")
    backdate(v)
    run = chain(n=1)
    step_run_id = run.steps["produce"]._pk
    with get_index().write() as session:
        session.execute(update(VersionRow).where(VersionRow.id == v._pk).values(state="condemned", condemned_at=utcnow()))
    with pytest.raises(VersionNotLiveError, match="removed by the pruner"):
        with get_index().write() as session:
            link(session, step_run_id, v._pk, "input", "late")
    with pytest.raises(artifactfs.errors.NotFoundError):
        load_artifact("victim", 1)  # condemned versions vanish from the API at once


# -- the plan and the phases --------------------------------------------------------------


def test_condemn_rechecks_what_changed_after_the_plan(afs_home):
    """A version planned for condemning that a user protects before the pass
    runs (a keep tag) stays live: condemn re-checks inside its transaction."""
    v = save_artifact(1, "late-keep")
    save_artifact(2, "late-keep")
    backdate(v)
    index = get_index()
    plan = plan_prune(index, PrunePolicy(grace=HOUR))
    assert [r.id for r in plan.condemn] == [v._pk]
    v.add_tags(["keep"])
    with Lease(index) as lease:
        result = execute(index, plan, lease)
    assert result.condemned == [] and states()[v.id] == "live"


def test_sweep_rechecks_state_and_delay_after_the_plan(afs_home):
    """Versions planned for sweeping that changed before the sweep ran: one
    revived (``fsck --repair``) keeps its payload and stays live; one revived
    and condemned again waits out its new sweep delay."""
    revived, recondemned = save_artifact(1, "a"), save_artifact(1, "b")
    save_artifact(2, "a"), save_artifact(2, "b")
    backdate(revived, recondemned)
    prune(sweep_delay=dt.timedelta(minutes=10))  # condemned now, swept only after the delay
    with get_index().write() as session:
        session.execute(update(VersionRow).values(condemned_at=utcnow() - dt.timedelta(minutes=11))
                        .where(VersionRow.id.in_([revived._pk, recondemned._pk])))
    index = get_index()
    plan = plan_prune(index, PrunePolicy(grace=HOUR, sweep_delay=dt.timedelta(minutes=10)))
    assert sorted(r.id for r in plan.sweep) == sorted([revived._pk, recondemned._pk])
    with index.write() as session:
        gc_rows.revive(session, [revived._pk, recondemned._pk])
        session.execute(update(VersionRow).values(state="condemned", condemned_at=utcnow())
                        .where(VersionRow.id == recondemned._pk))
    with Lease(index) as lease:
        result = execute(index, plan, lease)
    assert result.swept == []
    assert Path(revived.uri).exists() and Path(recondemned.uri).exists()
    assert (states()[revived.id], states()[recondemned.id]) == ("live", "condemned")




def test_plan_equals_what_is_deleted(afs_home):
    versions = [save_artifact({"i": i}, f"n{i % 3}") for i in range(9)]
    ckpt = root() / "user" / "ckpt"
    ckpt.mkdir(parents=True)
    (ckpt / "w.bin").write_bytes(b"w" * 100)
    in_place = register_artifact(ckpt, "ckpt")
    save_artifact(1, "ckpt")
    orphan = make_orphan()
    chain(n=1)
    backdate_all()
    before = tree(root())
    index = get_index()
    policy = PrunePolicy(grace=HOUR)
    plan = plan_prune(index, policy)
    assert plan.stats.condemn == len(plan.condemn) == 7  # 6 old data versions + the registered one
    assert [v.uuid for v in plan.in_place] == [in_place.id]
    assert [o.uri for o in plan.orphans] == [str(orphan)]
    with Lease(index) as lease:
        result = execute(index, plan, lease)
    assert result.ok
    assert sorted(result.condemned) == sorted(v.id for v in plan.condemn)
    assert sorted(result.swept) == sorted(v.id for v in plan.sweep)
    assert sorted(result.forgotten) == sorted(v.id for v in plan.forget)
    assert result.orphans_deleted == [o.uri for o in plan.orphans]
    assert result.swept_bytes == plan.stats.bytes and result.swept_files == plan.stats.files
    removed = before - tree(root())
    targets = {str(Path(v.uri).relative_to(root())) for v in plan.sweep} | {str(orphan.relative_to(root()))}
    journals = {f".artifactfs-registered/{v.uuid}.manifest.json" for v in plan.sweep if v.in_place}
    for path in removed:  # nothing outside the planned payloads (and their manifest files) went
        assert path in journals or any(path in (t, t + ".manifest.json") or path.startswith(t + "/")
                                       for t in targets), path
    assert targets <= removed
    assert not ckpt.exists() and (root() / "user").exists()
    assert rows_count() == len(versions) + 2 + 2 - 7  # two pipeline outputs, two ckpt versions
    with get_index().read() as session:
        assert session.scalars(select(VersionRow.state)).all() == ["live"] * rows_count()


def test_dry_run_deletes_nothing(afs_home):
    for i in range(3):
        save_artifact(i, "d")
    make_orphan()
    backdate_all()
    before_tree, before_rows = tree(root()), states()
    result = CliRunner().invoke(cli, ["gc", "--dry-run", "--grace", "1h"])
    assert result.exit_code == 0, result.output
    assert "Prune plan" in result.output and "Dry run: nothing was deleted." in result.output
    assert "default" in result.output and "orphan" in result.output.lower()
    assert tree(root()) == before_tree and states() == before_rows
    with get_index().read() as session:
        assert session.get(GcLease, "pruner").holder is None  # a dry run takes no lease


def test_sweep_delay_hides_then_sweeps(afs_home):
    v = save_artifact(1, "s")
    save_artifact(2, "s")
    backdate(v)
    plan, result = prune(sweep_delay=dt.timedelta(minutes=10))
    assert result.condemned == [v._pk] and not result.swept and not result.forgotten
    assert [w.uuid for w in plan.waiting] == [v.id]
    assert states()[v.id] == "condemned" and Path(v.uri).exists()
    assert [x.version for x in Client().list_artifact_versions("s")] == ["2"]
    plan, result = prune(sweep_delay=dt.timedelta(minutes=10))
    assert not result.swept and len(plan.waiting) == 1  # still within the delay
    with get_index().write() as session:
        session.execute(update(VersionRow).values(condemned_at=utcnow() - dt.timedelta(minutes=11))
                        .where(VersionRow.id == v._pk))
    plan, result = prune(sweep_delay=dt.timedelta(minutes=10))
    assert result.swept == [v._pk] and result.forgotten == [v._pk]
    assert not Path(v.uri).exists() and v.id not in states()


def test_only_artifact_then_full(afs_home):
    v = save_artifact({"a": 1}, "oa")
    save_artifact({"a": 2}, "oa")
    backdate(v)
    plan, result = prune(only_artifact=True)
    assert result.swept == [v._pk] and not result.forgotten and not plan.forget
    assert not Path(v.uri).exists()
    with get_index().read() as session:
        row = session.get(VersionRow, v._pk)
        assert row.state == "condemned" and row.swept_at is not None
    assert [x.version for x in Client().list_artifact_versions("oa")] == ["2"]
    plan, result = prune()
    assert result.forgotten == [v._pk] and not result.swept
    assert v.id not in states()


def test_only_metadata_leaves_payloads_for_orphan_sweep(afs_home):
    v = save_artifact({"a": 1}, "om")
    save_artifact({"a": 2}, "om")
    ckpt = root() / "mine"
    ckpt.mkdir()
    (ckpt / "f.txt").write_text("mine")
    reg = register_artifact(ckpt, "mine")
    save_artifact(3, "mine")
    backdate(v, reg)
    plan, result = prune(only_metadata=True)
    assert not plan.sweep and not plan.orphans
    assert sorted(result.forgotten) == sorted([v._pk, reg._pk])
    assert Path(v.uri).exists() and ckpt.exists()
    assert v.id not in states()
    backdate_tree(Path(v.uri))
    plan, result = prune()
    assert [o.uri for o in plan.orphans] == [v.uri]
    assert not Path(v.uri).exists()
    assert ckpt.exists()  # a registered-in-place folder is not in the payload layout: never an orphan


def test_registered_in_place_shown_and_deleted(afs_home):
    file_path = root() / "exports" / "model.onnx"
    file_path.parent.mkdir()
    file_path.write_bytes(b"onnx" * 10)
    v = register_artifact(file_path, "onnx")
    save_artifact(1, "onnx")
    backdate(v)
    result = CliRunner().invoke(cli, ["gc", "--grace", "1h"], input="n\n")
    assert result.exit_code == 1  # declined
    assert "Registered in place" in result.output and "model.onnx" in result.output
    assert file_path.exists() and states()[v.id] == "live"
    result = CliRunner().invoke(cli, ["gc", "--grace", "1h"], input="y\n")
    assert result.exit_code == 0, result.output
    assert not file_path.exists() and file_path.parent.exists()
    assert "Freed 40 B" in result.output


def test_visualizations_go_with_their_version(afs_home):
    import pandas as pd

    v = save_artifact(pd.DataFrame({"a": [1, 2]}), "frame")
    save_artifact(pd.DataFrame({"a": [3]}), "frame")
    viz = Path(v.uri + ".viz")
    assert viz.is_dir() and v.visualizations
    backdate(v)
    _, result = prune()
    assert result.swept == [v._pk]
    assert not viz.exists() and not Path(v.uri).exists()
    # A stray .viz folder of a forgotten version is an orphan like any other.
    stray = make_orphan("frame", ORPHAN_UUID + ".viz")
    plan, _ = prune()
    assert [o.uri for o in plan.orphans] == [str(stray)] and not stray.exists()


def test_shared_payload_is_never_deleted(afs_home):
    """A condemned version whose payload folder holds a live registered
    version's files: the row goes, the payload stays."""
    v = save_artifact({"a": 1}, "outer")
    save_artifact({"a": 2}, "outer")
    inner = Path(v.uri) / "inner.txt"
    inner.write_text("owned by another version")
    with get_index().write() as session:  # what the API refuses, forced to test the re-check
        row = session.get(VersionRow, v._pk)
        session.add(VersionRow(artifact_id=row.artifact_id, version="inner", store_id=row.store_id, uri=str(inner),
                               payload_kind="file", size=24, file_count=1, save_type="registered"))
    backdate(v)
    plan, result = prune()
    assert result.swept == [v._pk] and result.shared and result.forgotten == [v._pk]
    assert inner.exists() and Path(v.uri, "data.json").exists()
    plan, result = prune()
    assert not plan.orphans  # the folder is named by the live row inside it


def test_orphan_rules(afs_home):
    save_artifact(1, "real")
    young = make_orphan("w", "1b6f1a3e-8c1d-4a7e-9f00-123456789abc", hours=None)
    old = make_orphan("w", "2b6f1a3e-8c1d-4a7e-9f00-123456789abc")
    old_viz = make_orphan("w", "3b6f1a3e-8c1d-4a7e-9f00-123456789abc.viz")
    not_uuid = make_orphan("w", "checkpoint-7")
    not_v4 = make_orphan("w", "2b6f1a3e-8c1d-1a7e-9f00-123456789abc")
    top_level = make_orphan("4b6f1a3e-8c1d-4a7e-9f00-123456789abc", "x")
    user_file = root() / "notes.txt"
    user_file.write_text("mine")
    deep = make_orphan("w/sub", "5b6f1a3e-8c1d-4a7e-9f00-123456789abc")
    registered = root() / "reg" / "6b6f1a3e-8c1d-4a7e-9f00-123456789abc"
    registered.mkdir(parents=True)
    (registered / "f").write_text("x")
    register_artifact(registered.parent, "regdir")
    backdate_tree(registered.parent)
    link_target = make_orphan("elsewhere", "7b6f1a3e-8c1d-4a7e-9f00-123456789abc")
    os.symlink(link_target, root() / "w" / "8b6f1a3e-8c1d-4a7e-9f00-123456789abc")
    plan, result = prune(keep_latest=5)
    assert sorted(o.uri for o in plan.orphans) == sorted([str(old), str(old_viz), str(link_target)])
    assert plan.stats.young_orphans == 1
    for kept in (young, not_uuid, not_v4, top_level, user_file, deep, registered):
        assert kept.exists(), kept
    assert not old.exists() and not old_viz.exists()
    assert (root() / "w" / "8b6f1a3e-8c1d-4a7e-9f00-123456789abc").is_symlink()  # never followed


def test_orphan_payloads_are_counted_once_each_by_plan_and_result(afs_home):
    """A folder, its .viz folder and its manifest file are one payload; two
    payload folders are two even when a copy gave them the same uuid (the
    plan once counted uuids, the CLI's result line folders)."""
    first = make_orphan("a")
    make_orphan("a", ORPHAN_UUID + ".viz")
    manifest = first.parent / (ORPHAN_UUID + ".manifest.json")
    manifest.write_text("{}")
    backdate_tree(manifest)
    make_orphan("b")  # the same folder copied under another name
    plan, result = prune()
    assert len(plan.orphans) == 4
    assert plan.stats.orphans == plan.stats.stores[0].orphans == 2
    assert count_payloads(result.orphans_deleted) == 2


def test_orphan_touched_after_plan_is_kept(afs_home):
    orphan = make_orphan()
    index = get_index()
    plan = plan_prune(index, PrunePolicy(grace=HOUR))
    assert len(plan.orphans) == 1
    (orphan / "more.bin").write_bytes(b"still writing")
    with Lease(index) as lease:
        result = execute(index, plan, lease)
    assert result.orphans_kept == [str(orphan)] and orphan.exists()


def test_runs_retention_in_gc_and_run_prune(afs_home):
    runs = [chain(n=i) for i in range(4)]
    with get_index().write() as session:
        session.execute(update(PipelineRun).values(start_time=utcnow() - dt.timedelta(days=40)))
    backdate_all()
    result = CliRunner().invoke(cli, ["run", "prune", "--older-than", "30d", "--keep-last", "2", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert runs[0].name in result.output and runs[1].name in result.output and runs[3].name not in result.output
    assert len(Client().list_pipeline_runs()) == 4
    result = CliRunner().invoke(cli, ["run", "prune", "--older-than", "30d", "--pipeline", "other", "-y"])
    assert result.exit_code == 1 and "no pipeline named 'other'" in result.output  # a typo is no "nothing to do"
    result = CliRunner().invoke(cli, ["run", "prune", "--older-than", "30d", "--keep-last", "3", "-y"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 run(s)" in result.output
    assert [r.name for r in Client().list_pipeline_runs()] == [r.name for r in runs[:0:-1]]
    # gc with run retention: drops one more run and its outputs in the same pass.
    plan, result = prune(keep_latest=0, runs_older_than=dt.timedelta(days=30), keep_last_runs=2)
    assert [r.name for r in plan.runs] == [runs[1].name]
    assert result.runs_deleted == [r.id for r in plan.runs]
    gone = {v.id for s in runs[:2] for v in list(s.steps["produce"].outputs.values())}
    assert gone and not gone & set(states())
    kept = [v for s in runs[2:] for v in s.steps["consume"].outputs.values()]
    assert all(Path(v.uri).exists() for v in kept)


def test_cancel_stops_between_steps_and_a_rerun_resumes(afs_home):
    import threading

    from artifactfs.index import get_generation

    versions = [save_artifact(i, "c") for i in range(5)]
    backdate(*versions)
    index = get_index()
    with index.read() as session:
        generation = get_generation(session)
    cancel = threading.Event()

    class CancelAtSweep:
        def start(self, phase, total):
            if phase == "sweep":
                cancel.set()  # SIGTERM arrives as the sweep begins

        def advance(self, phase, amount=1):
            pass

    plan = plan_prune(index, PrunePolicy(grace=HOUR))
    with Lease(index) as lease:
        result = execute(index, plan, lease, cancel=cancel, progress=CancelAtSweep())
    assert "asked to stop" in result.stopped and len(result.condemned) == 4 and not result.swept
    assert all(Path(v.uri).exists() for v in versions)  # condemned, hidden, payloads untouched
    assert [v.version for v in Client().list_artifact_versions("c")] == ["5"]
    with index.read() as session:
        assert get_generation(session) > generation  # pollers (the mount) see the change at once
    plan, result = prune()
    assert result.ok and len(result.swept) == 4 and len(result.forgotten) == 4
    assert not any(Path(v.uri).exists() for v in versions[:4])


# -- the lease ------------------------------------------------------------------------------


def test_lease_excludes_a_second_pruner(afs_home):
    index = get_index()
    first = Lease(index).acquire()
    try:
        with pytest.raises(LeaseHeldError, match="another pruner"):
            Lease(index).acquire()
        result = CliRunner().invoke(cli, ["gc", "-y"])
        assert result.exit_code == 1 and "another pruner" in result.output
    finally:
        first.release()
    with Lease(index):
        pass


def test_lease_of_a_dead_process_is_taken_over(afs_home):
    from artifactfs.index.holders import Holder
    from artifactfs.settings import machine_id

    index = get_index()
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    with index.write() as session:  # this machine, a process that is gone: taken at once
        row = session.get(GcLease, "pruner")
        row.holder = str(Holder("any-host", dead_pid, machine_id(), "deadbeef"))
        row.expires_at = utcnow() + dt.timedelta(hours=1)
    with Lease(index) as lease:
        assert lease.held
    with index.write() as session:  # another machine: must wait for the expiry
        row = session.get(GcLease, "pruner")
        row.holder = str(Holder("any-host", dead_pid, "another-machine", "deadbeef"))
        row.expires_at = utcnow() + dt.timedelta(hours=1)
    with pytest.raises(LeaseHeldError):
        Lease(index).acquire()
    with index.write() as session:
        session.get(GcLease, "pruner").expires_at = utcnow() - dt.timedelta(seconds=1)
    with Lease(index) as lease:
        assert lease.held


def test_pruner_that_lost_its_lease_stops_before_deleting(afs_home):
    v = save_artifact(1, "l")
    save_artifact(2, "l")
    backdate(v)
    index = get_index()
    lease = Lease(index, ttl=dt.timedelta(seconds=0.3), heartbeat=False).acquire()
    plan = plan_prune(index, PrunePolicy(grace=HOUR))
    assert len(plan.condemn) == 1
    time.sleep(0.4)
    with index.write() as session:  # expired: another pruner takes it over
        row = session.get(GcLease, "pruner")
        row.holder, row.expires_at = "other-host@1:cafe", utcnow() + dt.timedelta(minutes=5)
    result = execute(index, plan, lease)
    assert "another pruner took it" in result.stopped
    assert not result.condemned and states()[v.id] == "live" and Path(v.uri).exists()
    lease.release()
    with index.read() as session:
        assert session.get(GcLease, "pruner").holder == "other-host@1:cafe"  # not released by the loser


def test_heartbeat_keeps_the_lease(afs_home):
    index = get_index()
    with Lease(index, ttl=dt.timedelta(seconds=0.6)) as lease:
        time.sleep(1.5)
        with pytest.raises(LeaseHeldError):
            Lease(index).acquire()
        lease.check()


@pytest.mark.unmigrated_index
def test_migration_0003_upgrades_an_existing_index(afs_home):
    from alembic import command
    from sqlalchemy import inspect

    from artifactfs.index import reset_index_cache
    from artifactfs.index.db import Index
    from artifactfs.index.migrate import _alembic_config, current_revision, head_revision
    from artifactfs.settings import get_settings

    reset_index_cache()
    raw = Index(get_settings().index_url)
    config = _alembic_config()
    with raw.write_connection() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    with raw.engine.connect() as conn:
        assert "gc_lease" not in inspect(conn).get_table_names()
    raw.dispose()
    v = save_artifact(1, "migrated")  # get_index() brings the index to the head revision
    with get_index().engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert "swept_at" in {c["name"] for c in inspect(conn).get_columns("artifact_version")}
    with get_index().read() as session:
        assert session.get(GcLease, "pruner").holder is None
        assert session.get(VersionRow, v._pk).swept_at is None
    with get_index().write_connection() as conn:  # and back down
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    with get_index().engine.connect() as conn:
        assert "gc_lease" not in inspect(conn).get_table_names()
        assert "swept_at" not in {c["name"] for c in inspect(conn).get_columns("artifact_version")}


# -- durations and policies -------------------------------------------------------------------


def test_policy_file_and_cli_precedence(tmp_path):
    toml = tmp_path / "p.toml"
    toml.write_text('grace = "2h"\nkeep_latest = 3\nkeep_tags = ["keep", "prod"]\nruns_older_than = "30d"\n')
    policy = load_policy_file(toml)
    assert policy.grace == 2 * HOUR and policy.keep_latest == 3 and policy.keep_tags == {"keep", "prod"}
    assert policy.runs_older_than == dt.timedelta(days=30)
    js = tmp_path / "p.json"
    js.write_text(json.dumps({"sweep-delay": "5m", "only_artifact": True}))
    assert load_policy_file(js).sweep_delay == dt.timedelta(minutes=5)
    bad = tmp_path / "bad.toml"
    bad.write_text('grace = "2h"\nfoo = 1\n')
    with pytest.raises(PolicyError, match="unknown setting"):
        load_policy_file(bad)
    with pytest.raises(PolicyError, match="exclude each other"):
        PrunePolicy(only_artifact=True, only_metadata=True)


def test_cli_policy_file_and_flags(afs_home, tmp_path):
    for i in range(3):
        save_artifact(i, "pf")
    backdate_all()
    policy = tmp_path / "policy.toml"
    policy.write_text('grace = "1h"\nkeep_latest = 2\n')
    result = CliRunner().invoke(cli, ["gc", "--dry-run", "--policy", str(policy)])
    assert "keep latest 2" in result.output and "grace 1h" in result.output
    result = CliRunner().invoke(cli, ["artifact", "prune", "-y", "--policy", str(policy), "--keep-latest", "1"])
    assert result.exit_code == 0, result.output
    assert [v.version for v in Client().list_artifact_versions("pf")] == ["3"]
    result = CliRunner().invoke(cli, ["gc", "-a", "-m"])
    assert result.exit_code == 1 and "exclude each other" in result.output
    result = CliRunner().invoke(cli, ["gc", "--grace", "soon"])
    assert result.exit_code == 2 and "cannot read the duration" in result.output


# -- the daemon ------------------------------------------------------------------------------


def test_daemon_passes_and_stops_on_sigterm(afs_home, tmp_path):
    v = save_artifact(1, "dm")
    save_artifact(2, "dm")
    backdate(v)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"grace": "1h", "sweep_delay": "0"}))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from artifactfs.cli.main import main; main()",
         "gc", "daemon", "--every", "1s", "--policy", str(policy)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and states().get(v.id) is not None:
            time.sleep(0.2)
        time.sleep(1.5)  # at least one more pass
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = [line for line in err.splitlines() if "gc pass:" in line]
    assert len(lines) >= 2, err
    assert "forgot 1" in lines[0] or "forgot 1" in lines[1]
    assert "daemon stopped" in err
    with get_index().read() as session:
        assert session.get(GcLease, "pruner").holder is None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
