"""``artifactfs fsck``: findings against real indexes and the local store,
and which of them ``--repair`` fixes (only the safe ones)."""

import datetime as dt
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import update

pytest_plugins = ["index_fixtures"]

from artifactfs import load_artifact, pipeline, save_artifact, step  # noqa: E402
from artifactfs.cli.main import cli  # noqa: E402
from artifactfs.gc import Lease, PrunePolicy, fsck, repair, run_pass  # noqa: E402
from artifactfs.index import get_index  # noqa: E402
from artifactfs.index.models import VersionRow  # noqa: E402
from artifactfs.index.models import GcLease, utcnow  # noqa: E402
from gc_helpers import backdate_all, backdate_tree, root, states  # noqa: E402


@step
def make(n: int) -> dict:
    return {"n": n}


@pipeline
def one(n: int = 1):
    make(n=n)


def kinds(report) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in report.findings:
        found.setdefault(f.kind, set()).add(f.subject)
    return found


def test_clean_index_has_no_findings(afs_home):
    save_artifact({"a": 1}, "clean")
    one(n=2)
    report = fsck(get_index(), deep=True)
    assert report.ok and not report.findings
    assert report.versions == 2 and report.files == 2
    result = CliRunner().invoke(cli, ["fsck", "--deep"])
    assert result.exit_code == 0 and "0 problem(s)" in result.output


def test_findings_and_safe_repairs(afs_home):
    missing = save_artifact({"m": 1}, "missing")
    referenced = one(n=5).steps["make"].output
    resized = save_artifact({"s": 1}, "resized")
    rehashed = save_artifact({"h": 1}, "rehashed")
    extra = save_artifact({"e": 1}, "extra")
    stuck = save_artifact({"c": 1}, "stuck")
    swept = save_artifact({"w": 1}, "swept")
    old_orphan = root() / "lost" / "0b6f1a3e-8c1d-4a7e-9f00-123456789abc"
    old_orphan.mkdir(parents=True)
    (old_orphan / "part").write_text("x")
    backdate_tree(old_orphan)
    young_orphan = root() / "lost" / "1b6f1a3e-8c1d-4a7e-9f00-123456789abc"
    young_orphan.mkdir()

    import shutil

    shutil.rmtree(missing.uri)
    shutil.rmtree(referenced.uri)
    (Path(resized.uri) / "data.json").write_text('{"s": 12345}')
    data = (Path(rehashed.uri) / "data.json").read_bytes()
    (Path(rehashed.uri) / "data.json").write_bytes(data.replace(b"1", b"2"))
    (Path(extra.uri) / "notes.txt").write_text("added later")
    with get_index().write() as session:
        session.execute(update(VersionRow).where(VersionRow.uuid == stuck.id)
                        .values(state="condemned", condemned_at=utcnow() - dt.timedelta(hours=5)))
        session.execute(update(VersionRow).where(VersionRow.uuid == swept.id)
                        .values(state="condemned", condemned_at=utcnow(), swept_at=utcnow()))
    shutil.rmtree(swept.uri)
    # A condemned version that a step run links: never produced by the pruner, repaired by going live again.
    linked = one(n=9).steps["make"].output
    with get_index().write() as session:
        session.execute(update(VersionRow).where(VersionRow.uuid == linked.id)
                        .values(state="condemned", condemned_at=utcnow()))

    report = fsck(get_index())
    found = kinds(report)
    assert found["missing-payload"] == {"missing:1", f"{referenced.name}:{referenced.version}"}
    assert found["size-mismatch"] == {"resized:1"}
    assert "hash-mismatch" not in found  # same size: only --deep sees it
    assert found["extra-file"] == {"extra:1"}
    assert found["stuck-condemned"] == {"stuck:1"}
    assert found["payload-removed"] == {"swept:1"}
    assert found["referenced-condemned"] == {f"{linked.name}:{linked.version}"}
    assert found["orphan"] == {str(old_orphan)} and found["young-orphan"] == {str(young_orphan)}
    assert "hash-mismatch" in kinds(fsck(get_index(), deep=True))

    result = CliRunner().invoke(cli, ["fsck"])
    assert result.exit_code == 1 and "fsck --repair" in result.output

    with Lease(get_index()) as lease:
        report = repair(get_index(), report, lease)
    repaired = {(f.kind, f.subject) for f in report.findings if f.repaired}
    assert repaired == {
        ("missing-payload", "missing:1"), ("stuck-condemned", "stuck:1"),
        ("referenced-condemned", f"{linked.name}:{linked.version}"), ("orphan", str(old_orphan)),
    }
    left = states()
    assert missing.id not in left and stuck.id not in left and not Path(stuck.uri).exists()
    assert left[linked.id] == "live" and linked.load() == {"n": 9}
    assert left[referenced.id] == "live"  # linked by a run: reported, never hidden
    assert not old_orphan.exists() and young_orphan.exists()
    assert (Path(resized.uri) / "data.json").read_text() == '{"s": 12345}'  # changed bytes are only reported
    assert (Path(extra.uri) / "notes.txt").exists()

    after = kinds(fsck(get_index()))
    assert set(after) == {"missing-payload", "size-mismatch", "extra-file", "payload-removed", "young-orphan"}
    assert after["missing-payload"] == {f"{referenced.name}:{referenced.version}"}


def test_fsck_cli_repair(afs_home):
    v = save_artifact({"a": 1}, "gone")
    save_artifact({"a": 2}, "gone")
    import shutil

    shutil.rmtree(v.uri)
    result = CliRunner().invoke(cli, ["fsck"])
    assert result.exit_code == 1 and "missing-payload" in result.output
    result = CliRunner().invoke(cli, ["fsck", "--repair"])
    assert result.exit_code == 0, result.output
    assert "repaired" in result.output and v.id not in states()
    assert load_artifact("gone") == {"a": 2}
    with get_index().read() as session:
        assert session.get(GcLease, "pruner").holder is None
    result = CliRunner().invoke(cli, ["fsck"])
    assert result.exit_code == 0 and "0 problem(s)" in result.output


def test_only_artifact_leftovers_are_notes_not_problems(afs_home):
    v = save_artifact(1, "oa")
    save_artifact(2, "oa")
    backdate_all(hours=48)
    run_pass(get_index(), PrunePolicy(only_artifact=True))
    report = fsck(get_index())
    assert report.ok and kinds(report) == {"payload-removed": {"oa:1"}}
    assert states()[v.id] == "condemned"


def test_many_leftovers_of_an_interrupted_pass_are_one_row_naming_the_command(afs_home):
    """Versions swept but not yet forgotten (as a pass killed between sweep
    and forget leaves them) are summarised in one row that says what
    happened and which command finishes it, not one row each."""
    for n in range(10):
        save_artifact(n, "left")
    save_artifact("keep", "left")  # the newest stays
    backdate_all(hours=48)
    run_pass(get_index(), PrunePolicy(only_artifact=True, keep_latest=1))
    assert sum(state == "condemned" for state in states().values()) == 10
    result = CliRunner().invoke(cli, ["fsck"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert result.output.count("payload-removed") == 1
    assert "10 versions" in result.output and "stopped between sweep and forget" in result.output
    assert "`artifactfs gc` forgets it" in result.output and "10 note(s)" in result.output
