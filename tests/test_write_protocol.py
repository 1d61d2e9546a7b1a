"""The write side of "never lose" (DESIGN.md, write protocol), on SQLite and
PostgreSQL and, where a store is involved, on every store flavor:

- a check made under a lock reads the row fresh, so a step never links a
  version the pruner condemned (the race is forced with a fault point);
- a save records its write intent before its first payload byte, makes the
  payload durable, and commits only if the payload is still there;
- names and metadata are refused before anything is written;
- a failed save leaves no folder and no intent behind.
"""

import datetime as dt
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, Tuple

import pytest
from sqlalchemy import Engine, event, select, text, update

pytest_plugins = ["store_fixtures", "index_fixtures"]

from artifactfs import (  # noqa: E402
    get_store,
    load_artifact,
    pipeline,
    register_artifact,
    register_store,
    save_artifact,
    step,
)
from artifactfs.api.migrate import migrate  # noqa: E402
from artifactfs.api.writing import PayloadMissingError  # noqa: E402
from artifactfs.errors import AlreadyExistsError, PathEscapeError  # noqa: E402
from artifactfs.faults import fault_action  # noqa: E402
from artifactfs.gc import PrunePolicy, run_pass  # noqa: E402
from artifactfs.index import find_store_row, get_index  # noqa: E402
from artifactfs.index import gc as gc_rows  # noqa: E402
from artifactfs.index import migrate_store  # noqa: E402
from artifactfs.index.artifacts import InvalidMetadataError, InvalidNameError  # noqa: E402
from artifactfs.index.holders import alive_here, parse_holder, this_process  # noqa: E402
from artifactfs.index.intents import live_intent_folders  # noqa: E402
from artifactfs.index.models import GcLease, StepIO, WriteIntent, utcnow  # noqa: E402
from artifactfs.index.models import VersionRow  # noqa: E402
from artifactfs.index.pipelines import Link, VersionNotLiveError, create_run, create_step_run, link_all  # noqa: E402
from artifactfs.materializers import BaseMaterializer, MaterializerError  # noqa: E402
from artifactfs.stores.marker import MARKER_NAME  # noqa: E402

HOUR = dt.timedelta(hours=1)


def state_of(version) -> str:
    with get_index().read() as session:
        return session.scalar(select(VersionRow.state).where(VersionRow.id == version._pk))


def links_to(version) -> int:
    with get_index().read() as session:
        return len(session.scalars(select(StepIO.id).where(StepIO.version_id == version._pk)).all())


def condemn_behind_the_session(session, version_id: int) -> None:
    """What a pruner's committed condemn looks like to a transaction that read
    the row before it: the table changed, the session's copy did not."""
    session.connection().execute(
        update(VersionRow.__table__).where(VersionRow.__table__.c.id == version_id).values(state="condemned")
    )


# -- item 1: a check under a lock reads the row fresh ---------------------------------------


def test_linking_reads_the_row_not_the_sessions_cached_copy(afs_home):
    """``link_all`` (what a run calls to link inputs) checks the state it reads under its lock, not the
    session's copy from before a pruner's condemn."""
    version = save_artifact({"i": 1}, "data")
    with get_index().write() as session:
        step_run = create_step_run(session, create_run(session, "p", "p-1", {}).id, "s", "h", None, {})
        cached = session.get(VersionRow, version._pk)  # held, so the identity map keeps it
        assert cached.state == "live"
        condemn_behind_the_session(session, version._pk)
        with pytest.raises(VersionNotLiveError, match="removed by the pruner"):
            link_all(session, step_run.id, [Link(version._pk, "input", "data")])


def test_repoint_reads_the_row_fresh_under_its_lock(afs_home):
    version = save_artifact({"i": 1}, "data")
    with get_index().write() as session:
        row = session.get(VersionRow, version._pk)
        change = migrate_store.Repoint(version._pk, row.store_id, row.uri, row.store_id, row.uri + "-moved",
                                       row.payload_kind, [])
        condemn_behind_the_session(session, version._pk)
        assert migrate_store.repoint(session, change) is False


def test_the_lease_is_read_fresh_under_its_lock(afs_home):
    with get_index().write() as session:
        assert gc_rows.take_lease(session, "me", HOUR, lambda *_: False)[0]
    with get_index().write() as session:
        cached = session.get(GcLease, gc_rows.PRUNER_LEASE)
        assert cached.holder == "me"
        later = utcnow() + 2 * HOUR  # unexpired by the database's clock
        session.connection().execute(update(GcLease.__table__).values(holder="other", expires_at=later))
        taken, found, _ = gc_rows.take_lease(session, "me", HOUR, lambda *_: False)
        assert (taken, found.holder) == (False, "other")


LINK_AND_PAUSE = """
import sys
from artifactfs.index import get_index
from artifactfs.index.pipelines import Link, create_run, create_step_run, link_all
with get_index().write() as session:  # pauses with the versions checked live (link_checked), nothing linked yet
    step_run = create_step_run(session, create_run(session, "linker", "linker-1", {}).id, "s", "h", None, {})
    link_all(session, step_run.id, [Link(int(sys.argv[1]), "input", "data")])
"""


def test_a_pruner_never_condemns_a_version_a_run_is_linking(afs_home, tmp_path):
    """A run has checked a version live and is about to link it; a pruner
    pass meanwhile must leave that version alone (the run's share lock, the
    pruner's SKIP LOCKED), never end with a condemned version that a run
    links. PostgreSQL only: SQLite's writers take turns."""
    if get_index().is_sqlite:
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE): no interleaving to force")
    version = save_artifact({"i": 1}, "data")
    pause = tmp_path / "pause"
    pause.mkdir()
    env = {**os.environ, "ARTIFACTFS_PAUSE": "link_checked", "ARTIFACTFS_PAUSE_DIR": str(pause)}
    linker = subprocess.Popen([sys.executable, "-c", LINK_AND_PAUSE, str(version._pk)], env=env,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = dt.datetime.now() + dt.timedelta(seconds=60)
        while not list(pause.glob("link_checked.*.reached")):
            assert linker.poll() is None, linker.stderr.read()
            assert dt.datetime.now() < deadline, "the linker never reached link_checked"
            threading.Event().wait(0.02)
        policy = PrunePolicy(grace=dt.timedelta(0), keep_latest=0, keep_tags=frozenset(), sweep_delay=HOUR,
                             orphan_grace=HOUR)
        pruner = threading.Thread(target=run_pass, args=(get_index(), policy), daemon=True)
        pruner.start()
        pruner.join(10)  # a pruner that waits on the run's lock instead of skipping the row goes on below
    finally:
        (pause / "link_checked.go").touch()
        assert linker.wait(60) == 0, linker.stderr.read()
    pruner.join(60)
    assert not pruner.is_alive()
    assert (links_to(version), state_of(version)) == (1, "live")


@step
def read_data() -> int:
    return load_artifact("data")["i"]


@pipeline
def reader():
    read_data()


def prune_now() -> None:
    """A real pruner pass that condemns every unreferenced version at once
    (payloads stay an hour: the test looks at rows)."""
    policy = PrunePolicy(grace=dt.timedelta(0), keep_latest=0, keep_tags=frozenset(), sweep_delay=HOUR,
                         orphan_grace=HOUR)
    _, result = run_pass(get_index(), policy)
    assert result.condemned, "the pruner condemned nothing: the race was not forced"


def test_a_step_never_links_a_version_the_pruner_condemns_after_reading_it(afs_home):
    version = save_artifact({"i": 7}, "data")
    with fault_action("before_input_link", prune_now), pytest.raises(VersionNotLiveError, match="data:1"):
        reader()
    assert state_of(version) == "condemned"
    assert links_to(version) == 0
    save_artifact({"i": 8}, "data")
    assert reader().steps["read_data"].output.load() == 8


# -- item 2: the intent, the durable payload, the checked commit -----------------------------


def intents() -> list[tuple[str, str]]:
    """(folder, holder) of every write intent in the index."""
    with get_index().read() as session:
        return [tuple(r) for r in session.execute(select(WriteIntent.folder, WriteIntent.holder)).all()]


def payload_folders(store, name: str) -> list[str]:
    """``<uuid>`` and ``<uuid>.viz`` folders below ``<name>/`` in the store."""
    return store.listdir(name) if store.isdir(name) else []


def store_id_of(store) -> int:
    with get_index().read() as session:
        return find_store_row(session, store.name).id


def assert_protocol_order(store):
    """Save once, looking at the index and the store at each step."""
    seen = {}

    def after_intent():
        (folder, holder), = intents()
        name, _, uuid = folder.partition("/")
        with get_index().read() as session:  # live for the pruner, by the database clock
            assert live_intent_folders(session, store_id_of(store), HOUR) == {folder}
        seen["intent"] = (folder, holder, store.exists(folder))

    def before_commit():
        seen["before_commit"] = (intents(), store.isdir(seen["intent"][0]))

    with fault_action("after_write_intent", after_intent), fault_action("before_commit", before_commit):
        version = save_artifact({"a": 1}, "proto", store=store.name)
    folder, holder, existed = seen["intent"]
    assert folder == f"proto/{version.id}" and not existed  # recorded before the folder existed
    assert alive_here(holder) and parse_holder(holder).same_process(this_process())  # the one holder format
    assert seen["before_commit"] == ([(folder, holder)], True)  # written, intent still held
    assert intents() == []  # the commit cleared it
    assert load_artifact("proto") == {"a": 1}


def test_the_intent_comes_first_and_the_commit_clears_it(afs_home):
    assert_protocol_order(get_store())


def test_the_intent_comes_first_on_every_store_flavor(registered_store):
    assert_protocol_order(registered_store)


def assert_vanished_payload_is_refused(store):
    def pruner_deletes_it():
        (folder, _), = intents()
        store.rmtree(folder)

    with fault_action("before_commit", pruner_deletes_it), pytest.raises(PayloadMissingError, match="vanished"):
        save_artifact({"a": 1}, "gone", store=store.name)
    assert version_count() == 0 and intents() == [] and payload_folders(store, "gone") == []


def version_count() -> int:
    with get_index().read() as session:
        return len(session.scalars(select(VersionRow.id)).all())


def test_a_commit_refuses_a_payload_that_vanished(afs_home):
    assert_vanished_payload_is_refused(get_store())


def test_a_commit_refuses_a_vanished_payload_on_every_store_flavor(registered_store):
    assert_vanished_payload_is_refused(registered_store)


def test_a_payload_deleted_while_it_is_fsynced_is_refused_clearly(afs_home):
    store = get_store()
    deleted = threading.Event()

    def pruner_deletes_it():
        if not deleted.is_set():
            deleted.set()
            store.rmtree(intents()[0][0])

    with fault_action("before_fsync", pruner_deletes_it), pytest.raises(PayloadMissingError, match="vanished"):
        save_artifact({"a": 1}, "gone")
    assert deleted.is_set() and version_count() == 0 and intents() == []


def test_a_step_output_that_vanished_fails_the_step_and_commits_nothing(afs_home):
    store = get_store()

    def pruner_deletes_them():
        for folder, _ in intents():
            store.rmtree(folder)

    with fault_action("before_commit", pruner_deletes_them), pytest.raises(PayloadMissingError):
        two_outputs()
    assert version_count() == 0 and intents() == []


def test_register_copy_and_in_place_check_their_payload(afs_home, tmp_path):
    source = tmp_path / "weights.bin"
    source.write_bytes(b"w" * 1000)
    store = get_store()
    with fault_action("before_commit", lambda: store.rmtree(intents()[0][0])), pytest.raises(PayloadMissingError):
        register_artifact(source, "copied", copy=True)
    assert version_count() == 0 and intents() == [] and payload_folders(store, "copied") == []
    inside = Path(store.path) / "mine" / "ckpt.bin"  # a file registered in place: no intent, still checked
    inside.parent.mkdir()
    inside.write_bytes(b"c" * 10)
    with fault_action("before_commit", inside.unlink), pytest.raises(PayloadMissingError, match="ckpt.bin"):
        register_artifact(inside, "in-place")
    assert version_count() == 0 and inside.parent.is_dir()  # a user's folder is never removed
    version = register_artifact(source, "copied", copy=True)
    assert intents() == [] and (Path(version.uri) / "weights.bin").read_bytes() == b"w" * 1000


def test_a_commit_refuses_a_payload_folder_swapped_for_a_link(afs_home, tmp_path):
    """The commit's payload check reaches each file from the held folder
    descriptor without following a link on the way: a folder inside the
    payload moved out of the store and replaced by a link to it is refused,
    not committed as if the file were still there."""
    source = tmp_path / "run"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "w.bin").write_bytes(b"w" * 100)
    store = get_store()
    outside = tmp_path / "outside"

    def swap() -> None:
        inner = Path(store.path) / intents()[0][0] / "sub"
        os.rename(inner, outside)
        os.symlink(outside, inner)

    with fault_action("before_commit", swap), pytest.raises(PathEscapeError, match="sub"):
        register_artifact(source, "swapped", copy=True)
    assert version_count() == 0 and (outside / "w.bin").read_bytes() == b"w" * 100


def test_migrate_copies_under_an_intent_and_checks_the_copy(afs_home, tmp_path):
    version = save_artifact({"m": 1}, "moving")
    other = register_store("other", "local", str(tmp_path / "other"))
    seen = []
    with fault_action("migrate_before_repoint", lambda: seen.append(intents())):
        report = migrate("other")
    assert report.moved == ["moving:1"] and intents() == []
    assert seen == [[(f"moving/{version.id}", seen[0][0][1])]]

    def delete_copy():
        other_store = get_store("other")
        other_store.rmtree(intents()[0][0])

    save_artifact({"m": 2}, "moving")
    with fault_action("migrate_before_repoint", delete_copy):
        report = migrate("other")
    assert report.moved == [] and "vanished" in report.failed[0][1]
    assert intents() == [] and load_artifact("moving") == {"m": 2}
    assert other.name == "other"


def test_a_writer_killed_before_its_commit_leaves_a_live_intent(afs_home):
    env = {**os.environ, "ARTIFACTFS_FAULT": "before_commit"}
    code = "from artifactfs import save_artifact; save_artifact({'k': 1}, 'killed')"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (folder, holder), = intents()
    store = get_store()
    assert store.isfile(folder + "/data.json") and version_count() == 0
    # A crashed save: its manifest file is numbered, and its intent says so (and names its uuid).
    assert intent_versions() == [(folder, "1")]
    assert manifest_file_of(store, folder)["version"] == "1" and folder.endswith(manifest_file_of(store, folder)["uuid"])
    with get_index().read() as session:  # the pruner's question: still protected
        assert live_intent_folders(session, store_id_of(store), HOUR) == {folder}


# -- one write batch: numbered with the intent, one manifest file write ------------------------


def intent_versions() -> list[tuple[str, str | None]]:
    """(folder, version) of every write intent."""
    with get_index().read() as session:
        return [tuple(r) for r in session.execute(select(WriteIntent.folder, WriteIntent.version)).all()]


def manifest_file_of(store, folder: str) -> dict:
    import json

    return json.loads(store.read_bytes(folder + ".manifest.json"))


def test_the_version_is_numbered_with_its_intent_and_its_manifest_file_written_once(afs_home, monkeypatch):
    store = get_store()
    save_artifact({"v": 1}, "numbered")
    seen = {}
    writes = []
    real_open = os.open

    def counting_open(path, flags, *args, **kwargs):
        if str(path).endswith(".manifest.json") and flags & os.O_CREAT:
            writes.append(path)
        return real_open(path, flags, *args, **kwargs)

    def before_commit():
        (folder, version), = intent_versions()
        seen.update(folder=folder, version=version, manifest=manifest_file_of(store, folder))

    monkeypatch.setattr(os, "open", counting_open)
    with fault_action("before_commit", before_commit):
        version = save_artifact({"v": 2}, "numbered")
    assert version.version == "2" and seen["version"] == "2"
    assert seen["manifest"]["version"] == "2" and seen["manifest"]["uuid"] == version.id  # numbered before the commit
    assert len(writes) == 1  # and never rewritten after it
    after = manifest_file_of(store, seen["folder"])
    assert after == seen["manifest"] and after["created_at"] == version.created_at.isoformat()


def test_two_saves_in_flight_hold_their_own_numbers(afs_home):
    """A save that records its intent second gets the next number, even when
    it commits first; the first keeps the number its manifest file says."""
    inner = {}

    def second_save():
        if not inner:
            inner["started"] = True  # the second save passes this point too
            inner["version"] = save_artifact({"second": True}, "race")

    with fault_action("after_write_intent", second_save):
        first = save_artifact({"first": True}, "race")
    assert (first.version, inner["version"].version) == ("1", "2")
    assert load_artifact("race", 1) == {"first": True} and load_artifact("race", 2) == {"second": True}


def test_an_explicit_version_a_save_in_flight_holds_is_refused_before_writing(afs_home):
    store = get_store()
    refused = []

    def same_version():
        if not refused:
            refused.append("started")
            with pytest.raises(AlreadyExistsError, match="already has a version 'v1'") as info:
                save_artifact({"second": True}, "pinned", version="v1")
            refused.append(info.value)
            assert len(intents()) == 1 and payload_folders(store, "pinned") == []  # nothing of the second

    with fault_action("after_write_intent", same_version):
        version = save_artifact({"first": True}, "pinned", version="v1")
    assert len(refused) == 2 and version.version == "v1" and load_artifact("pinned", "v1") == {"first": True}


def test_a_payload_that_cannot_be_removed_keeps_its_intent_for_the_pruner(afs_home, monkeypatch):
    from artifactfs.api import writing

    def cannot(store, path):
        raise PermissionError(f"cannot delete {path}")

    monkeypatch.setattr(writing, "rmtree_quietly", cannot)
    with pytest.raises(RuntimeError, match="disk full"):
        save_artifact(1, "stuck", materializer=HalfWriting)
    (folder, _), = intents()  # the folder stays, and so does the intent that protects and explains it
    assert get_store().isdir(folder)


def test_a_link_where_a_name_folder_belongs_is_never_followed(afs_home):
    """The payload folder is made beneath the root's descriptor: a link
    planted as ``<root>/<name>`` (even one staying inside the root) is
    refused, and nothing is written through it."""
    root = Path(get_store().path)
    (root / "elsewhere").mkdir(parents=True)
    (root / "linked").symlink_to(root / "elsewhere")
    with pytest.raises(PathEscapeError, match="link"):
        save_artifact({"x": 1}, "linked")
    assert list((root / "elsewhere").iterdir()) == [] and intents() == [] and version_count() == 0


def test_registered_in_place_keeps_its_artifact_type(afs_home):
    inside = Path(get_store().path) / "mine" / "model.bin"
    inside.parent.mkdir()
    inside.write_bytes(b"m" * 10)
    version = register_artifact(inside, "adopted", artifact_type="ModelArtifact")
    assert version.artifact_type == "ModelArtifact" and version.payload_kind == "file"


# -- item 5: names and metadata refused before anything is written ----------------------------


def nothing_written(store, name: str) -> bool:
    return version_count() == 0 and intents() == [] and payload_folders(store, name) == []


@pytest.mark.parametrize(
    "metadata, problem",
    [
        (["not", "a", "dict"], "must be a dict"),
        ("text", "must be a dict"),
        ({1: "int key"}, "metadata key must be a string"),
        ({"a/b": 1}, "contains a slash"),
        ({"deep": functools.reduce(lambda inner, _: {"x": inner}, range(40), 0)}, "nested more than 32"),
        ({"obj": object()}, "not JSON-serializable"),
        ({"nan_inside": [float("nan")]}, "not JSON-serializable"),
        ({"\udcff": 1}, "lone surrogate"),
    ],
)
def test_bad_metadata_is_refused_before_anything_is_written(afs_home, metadata, problem):
    store = get_store()
    with pytest.raises((InvalidMetadataError, InvalidNameError), match=problem):
        save_artifact({"a": 1}, "meta", metadata=metadata)
    assert nothing_written(store, "meta")


def test_self_containing_metadata_is_refused_by_depth(afs_home):
    loop = []
    loop.append(loop)
    with pytest.raises(InvalidMetadataError, match="contains itself"):
        save_artifact(1, "loop", metadata={"loop": loop})
    assert nothing_written(get_store(), "loop")


def test_bad_names_tags_and_register_metadata_write_nothing(afs_home, tmp_path):
    store = get_store()
    with pytest.raises(InvalidNameError, match="400 bytes long in UTF-8"):
        save_artifact(1, "é" * 200)
    with pytest.raises(InvalidNameError, match="lone surrogate"):
        save_artifact({"n": "\udcff"}, "\udcff")
    with pytest.raises(InvalidNameError, match="tag"):
        save_artifact(1, "tagged", tags=["ok", "bad/tag"])
    source = tmp_path / "f.bin"
    source.write_bytes(b"x")
    with pytest.raises(InvalidMetadataError, match="must be a dict"):
        register_artifact(source, "reg", copy=True, metadata=[1])
    assert version_count() == 0 and intents() == [] and store.find("") == [MARKER_NAME]  # only the store marker
    save_artifact(1, "é" * 127)  # 254 bytes: fits


# -- item 6: a failed save leaves nothing behind ----------------------------------------------


def numbers():
    yield 1


class HalfWriting(BaseMaterializer):
    """Writes a file and a visualization, then fails."""

    ASSOCIATED_TYPES = ()

    def save(self, data):
        with self.artifact_store.open(self.path("part.bin"), "wb") as f:
            f.write(b"half")
        with self.artifact_store.open(self.visualization_uri + "/v.html", "w") as f:
            f.write("<p>")
        raise RuntimeError("disk full, say")


@pytest.mark.parametrize(
    "make_value, materializer, error",
    [
        (numbers, None, MaterializerError),
        (lambda: socket.socket(), None, MaterializerError),
        (threading.Lock, None, MaterializerError),
        (lambda: [b"x" * 100_000, threading.Lock()], None, MaterializerError),  # fails mid-pickle
        (lambda: 1, HalfWriting, RuntimeError),
    ],
    ids=["generator", "socket", "lock", "half-pickled", "materializer-raises"],
)
def test_a_failed_save_removes_its_folder_and_intent(afs_home, make_value, materializer, error):
    store = get_store()
    value = make_value()
    try:
        with pytest.raises(error):
            save_artifact(value, "failing", materializer=materializer)
    finally:
        if isinstance(value, socket.socket):
            value.close()
    assert nothing_written(store, "failing")


def test_a_half_written_save_leaves_nothing_on_every_flavor(registered_store):
    with pytest.raises(RuntimeError, match="disk full"):
        save_artifact(1, "half", materializer=HalfWriting, store=registered_store.name)
    assert nothing_written(registered_store, "half")


def test_a_failed_commit_removes_payload_and_visualizations_on_every_flavor(registered_store):
    def commit_fails():
        raise RuntimeError("index went away")

    store = registered_store
    with fault_action("before_commit", commit_fails), pytest.raises(RuntimeError, match="went away"):
        save_artifact(1, "viz", materializer=Visualized, store=store.name)
    assert nothing_written(store, "viz")


class Visualized(BaseMaterializer):
    ASSOCIATED_TYPES = ()

    def save(self, data):
        with self.artifact_store.open(self.path("n.txt"), "w") as f:
            f.write(str(data))

    def save_visualizations(self, data):
        uri = self.visualization_uri + "/n.md"
        with self.artifact_store.open(uri, "w") as f:
            f.write(f"# {data}")
        return {uri: "markdown"}


@step
def make_two() -> Tuple[Annotated[dict, "first"], Annotated[dict, "second"]]:
    return {"ok": 1}, {"also": 2}


@pipeline
def two_outputs():
    make_two()


@step
def second_fails() -> Tuple[Annotated[dict, "good"], Annotated[Any, "bad"]]:
    return {"ok": 1}, threading.Lock()


@pipeline
def failing_pipeline():
    second_fails()


def test_a_step_whose_second_output_fails_leaves_no_folder(afs_home):
    with pytest.raises(MaterializerError):
        failing_pipeline()
    store = get_store()
    assert nothing_written(store, "good") and nothing_written(store, "bad")


# -- item 7: durable payloads, durable index -------------------------------------------------


def test_sqlite_commits_are_durable(sqlite_home):
    index = get_index()
    with index.write() as session:
        assert session.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    with index.read() as session:
        assert session.execute(text("PRAGMA synchronous")).scalar() == 2
    with index.write(durable=False) as session:  # write intents only
        assert session.execute(text("PRAGMA synchronous")).scalar() == 1


def test_payload_files_and_folders_are_fsynced_before_the_commit(afs_home, monkeypatch):
    events = []
    real_fsync = os.fsync
    version_commit = threading.Event()

    def slow_fsync(fd):
        """An fsync that lasts until the version commits (or 0.5 s): if the
        commit did not wait for it, the COMMIT would be seen first."""
        version_commit.wait(0.5)
        real_fsync(fd)
        events.append(os.readlink(f"/proc/self/fd/{fd}"))

    def committing(conn):
        """The transaction about to commit holds the version (the save runs
        its statements through Core: ask the database, not the session)."""
        cursor = conn.connection.cursor()
        cursor.execute("SELECT 1 FROM artifact_version v JOIN artifact a ON a.id = v.artifact_id "
                       "WHERE a.name = 'fresh-name'")
        if cursor.fetchall() and not version_commit.is_set():
            events.append("COMMIT")
            version_commit.set()
        cursor.close()

    monkeypatch.setattr(os, "fsync", slow_fsync)
    event.listen(Engine, "commit", committing)
    try:
        version = save_artifact({"durable": True}, "fresh-name")
    finally:
        event.remove(Engine, "commit", committing)
    root = os.path.realpath(get_store().path)
    payload = os.path.realpath(version.uri)
    assert {payload + "/data.json", payload, os.path.dirname(payload), root} <= set(events[:events.index("COMMIT")])


def test_the_root_is_fsynced_until_a_name_folder_is_known_durable(afs_home, monkeypatch):
    """A name folder's entry in the store root is made durable by the first
    save of the name (the test above); the next saves skip the root's fsync,
    and a name folder removed and made again has it fsynced again."""
    save_artifact({"n": 0}, "again")
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        real_fsync(fd)
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    root = os.path.realpath(get_store().path)
    version = save_artifact({"n": 1}, "again")
    payload = os.path.realpath(version.uri)
    assert {payload + "/data.json", payload, os.path.dirname(payload)} <= set(synced)
    assert root not in synced
    shutil.rmtree(os.path.join(root, "again"))  # as if the pruner removed every version
    synced.clear()
    save_artifact({"n": 2}, "again")
    assert root in synced
