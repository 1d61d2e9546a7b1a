"""The store as a journal of the index: "newest" is the highest version
(whatever order rows were inserted in), the manifest file beside each
payload carries everything the index knows of its version, and ``fsck
--adopt`` rebuilds an index from it."""

import datetime as dt
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select, update

pytest_plugins = ["index_fixtures"]

from gc_helpers import states

from artifactfs import load_artifact, save_artifact
from artifactfs.cli.main import cli
from artifactfs.index import get_index
from artifactfs.index.models import VersionRow
from artifactfs.index.models import utcnow


def gc(*args: str):
    return CliRunner().invoke(cli, ["gc", "-y", *args])


# -- "newest" is the highest version, decided in one place --------------------------------


def shuffle_rows(name: str, order: list[int]) -> dict[str, str]:
    """Renumber the rows of ``name`` so that row ids no longer follow the
    versions (as ``fsck --adopt`` inserts rows, in uuid order): the row with
    the k-th smallest id gets version ``order[k]``, its value and its time.
    Returns version -> uuid."""
    with get_index().write() as session:
        rows = list(session.scalars(select(VersionRow).join(VersionRow.artifact)
                                    .where(VersionRow.artifact.has(name=name)).order_by(VersionRow.id)))
        for row in rows:  # out of the way of the unique (artifact, version)
            session.execute(update(VersionRow).where(VersionRow.id == row.id).values(version=f"tmp-{row.id}"))
        by_version = {}
        for row, number in zip(rows, order):
            # Version k's payload holds k: move the folder's identity with it.
            session.execute(update(VersionRow).where(VersionRow.id == row.id).values(
                version=str(number), version_number=number,
                created_at=utcnow() - dt.timedelta(hours=48 - number)))
            by_version[str(number)] = row.uuid
    return by_version


def test_newest_is_the_highest_version_not_the_highest_row(afs_home):
    order = [2, 6, 5, 1, 4, 3]  # row i (by id) holds version order[i]
    for number in order:
        save_artifact(number, "x")  # saved so that row k holds the value order[k]
    by_version = shuffle_rows("x", order)
    for _ in range(3):
        assert load_artifact("x") == 6

    assert Client().get_artifact("x").latest_version_name == "6"
    assert Client().get_artifact("x").load() == 6
    with get_index().read() as session:
        from artifactfs.index import artifacts as rows
        from artifactfs.index import summaries
        from artifactfs.index import tree as q

        assert [s.newest for s in summaries.list_artifacts(session) if s.name == "x"] == ["6"]
        artifact_id = rows.newest_version(session, "x").artifact_id
        assert q.newest_version(session, artifact_id).version == "6"
        from artifactfs.index import browse

        assert [a.newest_version for a in browse.list_artifacts(session).items] == ["6"]
    from artifactfs.mount import inodes
    from artifactfs.mount.fs import Tree

    tree = Tree(get_index())
    node = tree.getattr(inodes.ROOT)
    for part in (b"artifacts", b"x", b"latest"):
        node = tree.lookup(node.inode, part)
    assert tree.readlink(node.inode) == b"6"
    result = gc("--grace", "0", "--keep-latest", "1")
    assert result.exit_code == 0, result.output
    left = {v for v, u in by_version.items() if states().get(u) == "live"}
    assert left == {"6"}
    assert load_artifact("x") == 6


# -- a lost index comes back whole from the journal -------------------------------------------


import json
import os

import test_gc_never_lose as never_lose
from gc_helpers import backdate_tree, root

import artifactfs
from artifactfs import Client, log_metadata, pipeline, register_artifact, step


@step
def load_rows(n: int) -> list:
    return list(range(n))


@step
def clean(rows: list) -> list:
    return [r for r in rows if r % 2 == 0]


@step
def fit(rows: list, lr: float = 0.1) -> dict:
    log_metadata({"loss": 0.25, "shape": (2, 3)})
    return {"weights": rows, "lr": lr}


@step
def report(model: dict) -> None:  # reads, writes nothing: its link lives in its input's journal only
    log_metadata({"seen": len(model["weights"])})


@pipeline
def train(n: int = 6, lr: float = 0.1):
    model = fit(clean(load_rows(n=n)), lr=lr)
    report(model)


def cli_ok(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def build_history() -> dict:
    """Saves with tags and metadata, a folder registered in place, and runs
    with lineage (one of them cached), as a user would leave an index."""
    made = {}
    made["data"] = [save_artifact({"i": i}, "data", tags=["keep"] if i == 0 else [], metadata={"i": i, "pair": (i, i)})
                    for i in range(3)]
    made["golden"] = save_artifact([1, 2, 3], "data", version="golden", tags=["gold"])
    made["data"][1].add_tags(["reviewed"])
    log_metadata({"checked": True, "score": float("nan")}, artifact_name="data", artifact_version="2")
    folder = root() / "checkpoints" / "run-7"
    (folder / "optim").mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"m" * 300)
    (folder / "optim" / "state.bin").write_bytes(b"s" * 50)
    made["in_place"] = register_artifact(folder, "ckpt", tags=["keep"], metadata={"epoch": 7})
    made["runs"] = [train.with_options(run_name=name, quiet=True)(n=n)  # train-b: cached from train-a
                    for name, n in (("train-a", 6), ("train-b", 6), ("train-c", 8))]
    log_metadata({"note": "baseline"}, run_id_name_or_prefix="train-a")
    return made


def snapshot(made: dict, mount_at) -> dict:
    """What a user sees: lineage of every version, the artifact list, each
    version's tags, metadata and files, runs, and the mount's tree."""
    seen: dict = {"artifacts": cli_ok("artifact", "list"), "runs": cli_ok("run", "list")}
    with get_index().read() as session:
        labels = sorted(f"{name}:{version}" for name, version in session.execute(
            select(VersionRow.artifact.property.mapper.class_.name, VersionRow.version).join(VersionRow.artifact)))
    for label in labels:
        name, version = label.rsplit(":", 1)
        v = artifactfs.get_artifact_version(name, version)
        seen[label] = {"lineage": json.loads(cli_ok("lineage", label, "-f", "json")), "tags": v.tags,
                       "metadata": repr(v.metadata), "files": v.files, "uuid": v.id, "created": v.created_at,
                       "save_type": v.save_type, "uri": v.uri}
    for run in ("train-a", "train-b", "train-c"):
        seen[run] = cli_ok("run", "show", run)
    from test_mount_helpers import mounted, tree_of

    with mounted(mount_at):
        seen["mount"] = tree_of(mount_at)
        seen["latest"] = os.readlink(mount_at / "artifacts" / "data" / "latest")
    return seen


def test_a_lost_index_comes_back_whole_from_the_journal(request, afs_home, index_backend, monkeypatch, tmp_path):
    made = build_history()
    before = snapshot(made, tmp_path / "mnt-before")
    never_lose.lose_index(request, index_backend, monkeypatch)
    cli_ok("init")
    output = cli_ok("fsck", "--adopt")
    assert "rebuilt 3 run(s)" in output and "not rebuilt" not in output, output
    after = snapshot(made, tmp_path / "mnt-after")
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] == before[key], key
    from artifactfs.gc import fsck

    assert fsck(get_index(), deep=True).ok  # every manifest file, the in-place one too, agrees with the new index
    # Well past every grace: nothing tagged keep, nothing with lineage is deleted.
    with get_index().write() as session:
        session.execute(update(VersionRow).values(created_at=utcnow() - dt.timedelta(days=30)))
    for payload in root().iterdir():
        if payload.is_dir():
            backdate_tree(payload, hours=24 * 30)
    result = gc("--grace", "1d", "--orphan-grace", "1d", "--keep-latest", "0")
    assert result.exit_code == 0, result.output
    live = {u for u, s in states().items() if s == "live"}
    kept = [made["data"][0], made["in_place"]] + [v for r in made["runs"] for s in r.steps.values()
                                                  for v in s.outputs.values()]
    for v in kept:
        assert v.id in live, v
        artifactfs.get_artifact_version(v.id).load(verify=True)


# -- an index restored from a backup sweeps no orphans ---------------------------------------


def sqlite_copy(source, target) -> None:
    """A consistent copy of a SQLite database (WAL included), as a backup tool makes."""
    import sqlite3

    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def test_an_index_restored_from_a_backup_sweeps_no_orphans(sqlite_home, tmp_path):
    from artifactfs.index import reset_index_cache
    from artifactfs.settings import get_settings

    first = [save_artifact({"before": i}, "kept") for i in range(3)]
    index_db = get_settings().data_dir / "index.db"
    sqlite_copy(index_db, tmp_path / "backup.db")
    later = [save_artifact({"after": i}, "later", tags=["keep"] if i == 0 else []) for i in range(10)]
    for v in later:  # the restore happens two days on: every payload is older than any grace
        backdate_tree(root() / "later" / v.id, hours=48)
    reset_index_cache()
    for path in index_db.parent.glob("index.db*"):
        path.unlink()
    sqlite_copy(tmp_path / "backup.db", index_db)
    reset_index_cache()

    result = gc("--grace", "0", "--orphan-grace", "0")
    assert result.exit_code == 0, result.output
    assert "this index is older than store 'default'" in result.output, result.output
    assert all((root() / "later" / v.id).is_dir() for v in later)
    result = CliRunner().invoke(cli, ["fsck"])
    assert result.exit_code == 1 and "index-behind" in result.output, result.output
    from artifactfs.gc import fsck

    behind = [f for f in fsck(get_index()).findings if f.kind == "index-behind"]
    assert behind and "older than store 'default': run `artifactfs fsck --adopt" in behind[0].detail
    result = CliRunner().invoke(cli, ["fsck", "--adopt"])
    assert result.exit_code == 0 and "adopted 10 version(s)" in result.output, result.output
    for v in later + first[-1:]:  # (the first two of "kept" went to the grace-0 pass)
        back = artifactfs.get_artifact_version(v.id)
        assert (back.name, back.version) == (v.name, v.version)
        back.load(verify=True)
    assert artifactfs.get_artifact_version(later[0].id).tags == ["keep"]
    assert CliRunner().invoke(cli, ["fsck"]).exit_code == 0


# -- damaged manifest files: fsck notices, adopt never deletes -------------------------------


def journal_of(v) -> Path:
    return Path(v.uri).with_name(Path(v.uri).name + ".manifest.json")


def test_fsck_notices_edited_emptied_and_deleted_manifest_files_and_repairs_them(afs_home):
    from artifactfs.gc import fsck

    edited, emptied, deleted, fine = (save_artifact({"n": i}, "m", tags=["t"]) for i in range(4))
    text = journal_of(edited).read_text()
    journal_of(edited).write_text(text.replace('"version": "1"', '"version": "999"'))
    journal_of(emptied).write_text("")
    journal_of(deleted).unlink()
    for deep in (False, True):
        report = fsck(get_index(), deep=deep)
        found = {f.subject: f.kind for f in report.findings}
        assert found == {"m:1": "journal-unreadable", "m:2": "journal-unreadable", "m:3": "journal-missing"}, found
    # Edited through the API's own writer (sealed), but not by the index: out of date.
    artifactfs.get_artifact_version("m", "4")  # untouched
    with get_index().write() as session:
        from artifactfs.index.artifacts import add_tags

        add_tags(session, session.get(VersionRow, artifactfs.get_artifact_version("m", "4")._pk), ["silent"])
    assert {f.subject: f.kind for f in fsck(get_index()).findings}["m:4"] == "journal-differs"
    result = CliRunner().invoke(cli, ["fsck", "--repair"])
    assert result.exit_code == 0, result.output
    assert not fsck(get_index(), deep=True).findings
    assert json.loads(journal_of(edited).read_text())["version"] == "1"
    assert fine.id


def test_adopt_never_turns_a_damaged_manifest_file_into_a_deletion(request, afs_home, index_backend, monkeypatch):
    edited, emptied, deleted = (save_artifact({"n": i}, "m") for i in range(3))
    good = save_artifact({"n": 9}, "m")
    text = journal_of(edited).read_text()
    journal_of(edited).write_text(text.replace('"version": "1"', '"version": "999"')
                                  .replace('"version_number": 1', '"version_number": 999'))
    journal_of(emptied).write_text("")
    journal_of(deleted).unlink()
    for payload in root().iterdir():
        if payload.is_dir():
            backdate_tree(payload, hours=72)
    never_lose.lose_index(request, index_backend, monkeypatch)
    cli_ok("init")
    result = CliRunner().invoke(cli, ["fsck", "--adopt"])
    assert result.exit_code == 1, result.output
    assert "adopted 1 version(s)" in result.output and "left alone" in result.output, result.output
    assert "version 999" not in result.output and "m:999" not in result.output
    assert load_artifact("m") == {"n": 9} and artifactfs.get_artifact_version(good.id).version == "4"
    assert gc("--grace", "0", "--orphan-grace", "0", "--keep-latest", "0").exit_code == 0
    for v in (edited, emptied, deleted):
        assert Path(v.uri).is_dir(), v  # kept: never "never committed", never garbage
    result = CliRunner().invoke(cli, ["fsck", "--adopt", "--quarantine"])
    assert result.exit_code == 0 and result.output.count("quarantined quarantine::") == 3, result.output
    for v in (edited, emptied, deleted):
        back = artifactfs.get_artifact_version(f"quarantine::{v.id}")
        assert json.loads((back.load(verify=True) / "data.json").read_text()) == json.loads(
            (Path(v.uri) / "data.json").read_text())


def test_moonshot_at_suite_size_lineage_and_mount_identical_after_adopt(tmp_path):
    """bench/journal_adopt.py at 200 versions from 20 runs (the bench runs 10,000 from 500)."""
    import subprocess
    import sys

    script = Path(__file__).parent.parent / "bench" / "journal_adopt.py"
    env = {k: v for k, v in os.environ.items() if k not in ("ARTIFACTFS_HOME", "ARTIFACTFS_INDEX_URL")}
    done = subprocess.run([sys.executable, str(script), "--versions", "200", "--runs", "20", "--sample", "10",
                           "--keep", str(tmp_path)], capture_output=True, text=True, env=env, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "adopted 200 version(s)" in done.stdout and "identical" in done.stdout, done.stdout


def test_forgetting_a_row_but_keeping_its_payload_drops_its_journal(afs_home):
    """Else the folder, named by a manifest file and by no row, would prove
    the index behind the store and stop every orphan sweep there."""
    gone, kept = save_artifact(1, "f"), save_artifact(2, "f")
    Client().delete_artifact_version(gone.id, delete_metadata=True, delete_from_artifact_store=False)
    assert Path(gone.uri).is_dir() and not journal_of(gone).exists() and journal_of(kept).exists()
    backdate_tree(Path(gone.uri))
    result = gc("--orphan-grace", "1h")
    assert result.exit_code == 0 and "older than store" not in result.output, result.output
    assert not Path(gone.uri).exists() and load_artifact("f") == 2


def manifest_of(v) -> dict:
    return json.loads(journal_of(v).read_text())


def test_the_journal_follows_tags_metadata_links_and_runs(afs_home):
    data = save_artifact([1, 2, 3, 4], "rows", tags=["a"], metadata={"k": 1})
    data.add_tags(["b"])
    data.remove_tags(["a"])
    log_metadata({"checked": True}, artifact_version_id=data.id)
    run = train.with_options(run_name="follow", quiet=True)(n=4)
    fitted = run.steps["fit"].output
    record = manifest_of(data)
    assert record["tags"] == ["b"] and [m[0] for m in record["metadata"]][-2:] == ["k", "checked"]
    assert manifest_of(run.steps["load_rows"].output)["producers"][0]["step"]["run"]["status"] == "completed"
    consumers = manifest_of(fitted)["consumers"]
    assert [(c["name"], c["step"]["name"], c["step"]["status"]) for c in consumers] == [("model", "report", "completed")]
    assert consumers[0]["step"]["metadata"] == [["seen", {"v": 2}, "int"]]
    produced = manifest_of(fitted)["producers"][0]["step"]
    assert produced["metadata"][0][0] == "loss" and produced["run"]["name"] == "follow"
    assert not fsck_findings()
    cli_ok("run", "delete", "follow", "-y")
    assert manifest_of(fitted)["producers"] == [] and manifest_of(fitted)["consumers"] == []
    assert not fsck_findings()


def fsck_findings() -> list:
    from artifactfs.gc import fsck

    return [f for f in fsck(get_index()).findings if f.kind.startswith("journal")]
