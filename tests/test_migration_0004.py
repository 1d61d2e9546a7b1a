"""Migration 0004 on an index written before it (SQLite and PostgreSQL):
versions hashed with sha256 keep verifying, new ones use BLAKE3, ids are
never reused, and the index gets an identity of its own."""

import hashlib

import blake3
import pytest
from sqlalchemy import inspect, select, text

pytest_plugins = ["index_fixtures"]

from artifactfs import load_artifact, save_artifact  # noqa: E402
from artifactfs.api.artifacts import IntegrityError  # noqa: E402
from artifactfs.index import get_index, reset_index_cache  # noqa: E402
from artifactfs.index.db import Index  # noqa: E402
from artifactfs.index.migrate import current_revision, head_revision  # noqa: E402
from artifactfs.index.models import VersionRow, IndexState  # noqa: E402
from artifactfs.settings import get_settings  # noqa: E402
from index_fixtures import migrate_raw  # noqa: E402


def test_an_index_from_0003_upgrades_and_its_sha256_versions_still_verify(afs_home):
    url = get_settings().index_url
    v = save_artifact({"a": 1}, "old")  # saved at head, then the index is taken back to 0003
    payload = (load_artifact("old"), v.files[0].path)
    reset_index_cache()
    migrate_raw(url, "0003", downgrade=True)
    raw = Index(url)
    with raw.engine.begin() as conn:  # what 0003's code wrote: sha256 digests
        data = (afs_home / "data" / "store" / "old" / v.id / payload[1]).read_bytes()
        conn.execute(text("UPDATE version_file SET sha256 = :d"), {"d": hashlib.sha256(data).hexdigest()})
        assert "index_uuid" not in {c["name"] for c in inspect(conn).get_columns("index_state")}
    raw.dispose()

    with get_index().engine.connect() as conn:  # first use upgrades to the head
        assert current_revision(conn) == head_revision()
    with get_index().read() as session:
        row = session.get(VersionRow, v._pk)
        assert row.hash_algorithm == "sha256" and row.artifact_type == "DataArtifact"
        assert session.scalar(select(IndexState.index_uuid)) is not None
    assert load_artifact("old", verify=True) == payload[0]
    (afs_home / "data" / "store" / "old" / v.id / payload[1]).write_bytes(data + b" ")
    with pytest.raises(IntegrityError, match="sha256"):
        load_artifact("old", verify=True)

    new = save_artifact([1, 2], "new")
    assert new._pk > v._pk
    with get_index().read() as session:
        assert session.get(VersionRow, new._pk).hash_algorithm == "blake3"
    new_file = afs_home / "data" / "store" / "new" / new.id / new.files[0].path
    assert new.files[0].digest == blake3.blake3(new_file.read_bytes()).hexdigest()
    assert load_artifact("new", verify=True) == [1, 2]


def test_0004_keeps_sqlite_ids_from_being_reused(sqlite_home):
    first = save_artifact(1, "x")
    with get_index().write() as session:
        session.delete(session.get(VersionRow, first._pk))
    again = save_artifact(2, "x")
    assert again._pk > first._pk  # AUTOINCREMENT survived the column rename
