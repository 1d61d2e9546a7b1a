"""The pruner on every store flavor against the real servers (local, S3 on
moto, GCS on fake-gcs-server, Azure on Azurite): payload deletion, registered
in-place payloads, orphans by object age, fsck; and --ignore-errors with one
store down."""

import datetime as dt
import time

import pytest
from click.testing import CliRunner

pytest_plugins = ["store_fixtures", "index_fixtures"]

import artifactfs  # noqa: E402
from artifactfs import Client, load_artifact, register_artifact, save_artifact  # noqa: E402
from artifactfs.cli.main import cli  # noqa: E402
from artifactfs.gc import Lease, PrunePolicy, execute, fsck, plan_prune, run_pass  # noqa: E402
from artifactfs.index import get_index  # noqa: E402
from artifactfs.index.models import utcnow  # noqa: E402
from gc_helpers import backdate_all, states  # noqa: E402

ORPHAN = "lost/0b6f1a3e-8c1d-4a7e-9f00-123456789abc"


def test_payload_deletion_on_every_flavor(registered_store):
    store = registered_store
    old = [save_artifact({"i": i, "pad": "x" * 100}, "remote") for i in range(3)]
    with store.open("user/ckpt/weights.bin", "wb") as f:
        f.write(b"w" * 500)
    with store.open("user/ckpt/meta/config.json", "wb") as f:
        f.write(b"{}")
    in_place = register_artifact(store.uri("user/ckpt"), "ckpt")
    save_artifact("newer", "ckpt")
    with store.open("user/ckpt/epoch=2.ckpt", "wb") as f:  # written after the registration
        f.write(b"later")
    with store.open(ORPHAN + "/part.bin", "wb") as f:
        f.write(b"half written")
    with store.open("notes/readme.txt", "wb") as f:
        f.write(b"the user's own file")
    backdate_all()
    assert all(store.isdir(v.uri) for v in old) and store.isdir(in_place.uri)

    plan, result = run_pass(get_index(), PrunePolicy(grace=dt.timedelta(hours=1)))
    assert result.ok, result
    assert {v.uuid for v in plan.condemn} == {old[0].id, old[1].id, in_place.id}
    assert [v.uuid for v in plan.in_place] == [in_place.id]
    assert not plan.orphans and plan.stats.young_orphans == 1  # just written: too young
    for v in (old[0], old[1]):
        assert not store.exists(v.uri), v.uri
    assert store.find(in_place.uri) == ["epoch=2.ckpt"]  # only what its manifest listed went
    assert result.kept_extra == [(f"ckpt:{in_place.version}", in_place.uri, ["epoch=2.ckpt"])]
    assert store.isdir(old[2].uri) and load_artifact("remote") == {"i": 2, "pad": "x" * 100}
    assert store.exists(ORPHAN + "/part.bin") and store.exists("notes/readme.txt")
    assert set(states()) == {old[2].id, Client().get_artifact_version("ckpt").id}
    assert not fsck(get_index()).problems

    # No flag makes an orphan younger than the floor (1h) old enough: a save may still be writing it.
    plan, result = run_pass(get_index(), PrunePolicy(grace=dt.timedelta(0), orphan_grace=dt.timedelta(0)))
    assert not plan.orphans and store.exists(ORPHAN + "/part.bin")
    # Objects cannot be back-dated: the pass is told it is two hours later (an API for tests, no flag).
    index = get_index()
    with Lease(index) as lease:
        plan = plan_prune(index, PrunePolicy(grace=dt.timedelta(hours=1)), now=utcnow() + dt.timedelta(hours=2))
        result = execute(index, plan, lease)
    assert [o.uri for o in plan.orphans] == [store.uri(ORPHAN)] and plan.orphans[0].files == 1
    assert result.orphans_deleted == [store.uri(ORPHAN)]
    assert not store.exists(ORPHAN + "/part.bin") and store.exists("notes/readme.txt")

    # fsck sees a payload file that vanished behind the index's back.
    store.remove(old[2].uri + "/data.json")
    report = fsck(get_index())
    kinds = {(f.kind, f.subject) for f in report.problems}
    assert ("missing-payload", "remote:3") in kinds, report.findings


def test_one_unreachable_store_never_blocks_the_others(artifactfs_home):
    """gc and fsck work on every reachable store, name the unreachable one
    with the reason (no secret), exit 0; --strict exits 3."""
    import servers

    from artifactfs.index import reset_index_cache

    reset_index_cache()
    server = servers.start_moto()
    try:
        servers.s3_bucket(server, "gcdown")
        artifactfs.register_store("flaky", "s3", "s3://gcdown/x", dict(server.options))
        remote = [save_artifact(i, "far", store="flaky") for i in range(2)]
        local = [save_artifact(i, "near") for i in range(2)]
        backdate_all()
        server.kill()

        started = time.monotonic()
        result = CliRunner().invoke(cli, ["gc", "-y", "--grace", "1h"])
        assert result.exit_code == 0, result.output
        assert "Skipped store flaky" in result.output or "Store flaky failed" in result.output
        assert "testing" not in result.output  # no credential in the message
        assert local[0].id not in states()  # the healthy store was pruned
        assert states()[remote[0].id] == "condemned"  # hidden, its payload waits for the store
        assert [v.version for v in Client().list_artifact_versions("far")] == ["2"]

        result = CliRunner().invoke(cli, ["gc", "-y", "--grace", "1h", "--strict"])
        assert result.exit_code == 3, result.output
        assert "flaky" in result.output

        result = CliRunner().invoke(cli, ["fsck"])
        assert result.exit_code == 0, result.output
        assert "Store flaky not checked" in result.output and "testing" not in result.output
        assert "1 store(s) not reachable" in result.output
        result = CliRunner().invoke(cli, ["fsck", "--strict"])
        assert result.exit_code == 3, result.output
        assert time.monotonic() - started < 120

        server.restart()  # back, empty: the payload is gone, which the sweep accepts
        servers.s3_bucket(server, "gcdown")
        result = CliRunner().invoke(cli, ["gc", "-y", "--grace", "1h", "--strict"])
        assert result.exit_code == 0, result.output
        assert remote[0].id not in states() and states()[remote[1].id] == "live"
    finally:
        server.stop()
        reset_index_cache()


@pytest.mark.parametrize("store_flavor", ["s3"])
def test_gc_cli_on_a_remote_store(registered_store):
    v = save_artifact([1, 2, 3], "listed")
    save_artifact([4], "listed")
    backdate_all()
    result = CliRunner().invoke(cli, ["gc", "--dry-run", "--grace", "1h"])
    assert result.exit_code == 0 and registered_store.name in result.output
    assert registered_store.isdir(v.uri)
    result = CliRunner().invoke(cli, ["artifact", "prune", "-y", "--grace", "1h"])
    assert result.exit_code == 0, result.output
    assert "Freed" in result.output and not registered_store.exists(v.uri)


@pytest.mark.parametrize("store_flavor", ["s3"])
def test_orphan_scan_of_a_remote_store_is_bounded_and_remembers_what_it_listed(registered_store):
    """A pass lists at most scan_limit name folders of a remote store, those
    listed longest ago first (a dry run remembers nothing); a stale write
    intent's folder is found even in a name folder the pass does not list."""
    from artifactfs.index.intents import record_intent
    from artifactfs.index.models import WriteIntent
    from sqlalchemy import update as sql_update

    store = registered_store
    for i in range(5):
        save_artifact(i, f"n{i}")
    with store.open(f"n4/{ORPHAN.split('/')[1]}/part.bin", "wb") as f:
        f.write(b"junk")
    crashed = "n3/1b6f1a3e-8c1d-4a7e-9f00-123456789abc"
    with store.open(crashed + "/part.bin", "wb") as f:
        f.write(b"half")
    index = get_index()
    with index.write() as session:
        record_intent(session, store.index_id, crashed, "host=x pid=1 machine=gone token=t")
    with index.write() as session:
        session.execute(sql_update(WriteIntent).values(started_at=utcnow() - dt.timedelta(days=2)))
    policy = PrunePolicy(grace=dt.timedelta(hours=1), scan_limit=2)
    later = utcnow() + dt.timedelta(hours=2)

    def one_pass(dry: bool = False):
        with Lease(index) as lease:
            plan = plan_prune(index, policy, now=later)
            return plan, (None if dry else execute(index, plan, lease))

    plan, _ = one_pass(dry=True)
    assert dict(plan.scanned)[store.index_id] == ("n0", "n1")
    assert any("listed 2 of 5 name folders" in str(n) for n in plan.notes)
    plan, result = one_pass()
    assert dict(plan.scanned)[store.index_id] == ("n0", "n1")  # the dry run remembered nothing
    assert result.orphans_deleted == [store.uri(crashed)] and result.intents_cleared == 1  # found by its intent
    plan, result = one_pass()
    assert dict(plan.scanned)[store.index_id] == ("n2", "n3") and not result.orphans_deleted
    plan, result = one_pass()
    assert dict(plan.scanned)[store.index_id] == ("n4", "n0")
    assert result.orphans_deleted == [store.uri(ORPHAN.replace("lost", "n4"))]
    full = PrunePolicy(grace=dt.timedelta(hours=1), scan_limit=None)
    assert not plan_prune(index, full, now=later).notes  # --full-scan: every name folder, nothing left
    assert {v.name for v in Client().list_artifacts()} >= {f"n{i}" for i in range(5)}
