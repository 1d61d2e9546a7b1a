"""The store as a journal of the index: "newest" is the highest version
(whatever order rows were inserted in), the manifest file beside each
payload carries everything the index knows of its version, and ``fsck
--adopt`` rebuilds an index from it."""

import datetime as dt

from click.testing import CliRunner
from sqlalchemy import select, update

pytest_plugins = ["index_fixtures"]

from artifactfs import load_artifact, save_artifact  # noqa: E402
from artifactfs.cli.main import cli  # noqa: E402
from artifactfs.index import get_index  # noqa: E402
from artifactfs.index.models import ArtifactVersion as VersionRow  # noqa: E402
from artifactfs.index.models import utcnow  # noqa: E402
from gc_helpers import states  # noqa: E402


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
    from artifactfs import Client

    assert Client().get_artifact("x").latest_version_name == "6"
    assert Client().get_artifact("x").load() == 6
    with get_index().read() as session:
        from artifactfs.index import artifacts as rows
        from artifactfs.index import tree as q

        assert [s.newest for s in rows.list_artifacts(session) if s.name == "x"] == ["6"]
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
