"""The mount during and after a migration (local -> S3): the same tree and the
same bytes while versions are re-pointed under it, and after the sources are
deleted and the index is mounted again."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest_plugins = ["index_fixtures"]

import servers  # noqa: E402
from test_mount_helpers import mounted, file_digest, tree_of, wait_for  # noqa: E402

from artifactfs import get_store, pipeline, register_artifact, register_store, save_artifact, step  # noqa: E402
from artifactfs.cli.main import cli  # noqa: E402

pytestmark = pytest.mark.fuse


@step
def make_table(rows: int = 1000) -> dict:
    return {"rows": list(range(rows))}


@pipeline
def tiny():
    make_table()


def snapshot(root: Path) -> tuple[dict, dict]:
    """(tree with the JSON documents' sizes masked, sha256 of every payload file)."""
    tree = tree_of(root)
    shown = {path: ("json" if path.endswith(".json") and not path.endswith("/data.json") else kind)
             for path, kind in tree.items()}
    digests = {path: file_digest(root / path) for path, kind in tree.items()
               if isinstance(kind, int) and shown[path] != "json" and "/latest/" not in path}
    return shown, digests


def test_mount_shows_the_same_tree_before_and_after(sqlite_home, tmp_path, moto_server):
    bucket = f"mnt-{uuid.uuid4().hex[:8]}"
    servers.s3_bucket(moto_server, bucket)
    save_artifact(np.arange(100_000), "array")
    tiny()
    checkpoint = Path(get_store().path) / "ckpts" / "epoch=1.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(os.urandom(200_000))
    register_artifact(checkpoint, "ckpt")  # a single file adopted in place
    register_store("s3", "s3", f"s3://{bucket}/p", dict(moto_server.options))

    with mounted(tmp_path / "mnt", refresh="0.2s") as mount:
        before = snapshot(mount.path)
        assert "artifacts/ckpt/1/epoch=1.ckpt" in before[1] and "pipelines/tiny" in before[0]
        out = CliRunner().invoke(cli, ["migrate", "--to", "s3"])
        assert out.exit_code == 0, out.output
        document = mount.path / "artifacts/ckpt/1.json"
        # the mount has caught up with the re-points (the document shows the new metadata)
        wait_for(lambda: "migrated_from" in json.loads(document.read_text())["metadata"], timeout=5)
        assert snapshot(mount.path) == before

    out = CliRunner().invoke(cli, ["migrate", "--to", "s3", "--delete-source"])  # sources left behind
    assert out.exit_code == 0 and "Deleted 3 source payload(s)" in " ".join(out.output.split()), out.output
    assert not checkpoint.exists()
    with mounted(tmp_path / "mnt2", refresh="0.2s", cache_dir=tmp_path / "cache2") as mount:
        assert snapshot(mount.path) == before  # now read from S3


def test_delete_source_while_mounted(sqlite_home, tmp_path):
    save_artifact(np.arange(50_000), "array")
    register_store("other", "local", str(tmp_path / "other"))
    with mounted(tmp_path / "mnt", refresh="0.2s", timeout="1s") as mount:
        payload = mount.path / "artifacts/array/1/array.npy"
        before = file_digest(payload)
        out = CliRunner().invoke(cli, ["migrate", "--to", "other", "--delete-source"])
        assert out.exit_code == 0, out.output
        document = mount.path / "artifacts/array/1.json"
        wait_for(lambda: "migrated_from" in json.loads(document.read_text())["metadata"], timeout=5)
        assert file_digest(payload) == before
