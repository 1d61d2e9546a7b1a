"""Store migration: local -> S3 -> Azure on real servers, killed in the middle
(SIGKILL at fault points) and resumed; bytes identical afterwards, no
duplicates, sources deleted only with --delete-source and only after the
re-point. Plus filters, dry runs and a corrupted source on both index backends."""

import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
from click.testing import CliRunner

pytest_plugins = ["store_fixtures", "index_fixtures"]

import servers  # noqa: E402

from artifactfs import Client, get_store, load_artifact, register_artifact, register_store, save_artifact  # noqa: E402
from artifactfs.api.migrate import migrate, plan_migration  # noqa: E402
from artifactfs.cli.main import cli  # noqa: E402
from artifactfs.index import get_generation, get_index  # noqa: E402


def all_versions():
    return sorted(Client().list_artifact_versions(), key=lambda v: v.id)


def stored_digests(version) -> dict[str, str]:
    """sha256 of every payload file, read from wherever the version lives now."""
    store = version.open_store()
    return {f.path: hashlib.sha256(store.read_bytes(version.file_uri(f.path))).hexdigest() for f in version.files}


def make_artifacts(local_root: Path) -> None:
    save_artifact(np.arange(200_000), "array")  # 1.6 MB, one file
    save_artifact({"lr": 0.1}, "config")
    save_artifact({"lr": 0.2}, "config")
    shards = local_root / "ckpts" / "epoch=1"
    shards.mkdir(parents=True)
    for i in range(3):
        (shards / f"shard-{i}.bin").write_bytes(os.urandom(300_000 + i))
    register_artifact(shards, "sharded")  # a folder adopted in place
    (local_root / "ckpts" / "last.ckpt").write_bytes(os.urandom(50_000))
    register_artifact(local_root / "ckpts" / "last.ckpt", "single")  # a file adopted in place


def run_killed(fault: str, *args: str, delete_source: bool = False) -> None:
    """Run a migration in a child process that SIGKILLs itself at ``fault``."""
    code = f"from artifactfs.api.migrate import migrate; migrate(*{args!r}, delete_source={delete_source!r})"
    child = subprocess.run([sys.executable, "-c", code],
                           env={**os.environ, "ARTIFACTFS_FAULT": fault}, capture_output=True, text=True)
    assert child.returncode == -9, child.stderr


def payload_folders(store, names) -> list[str]:
    found = []
    for name in names:
        if store.isdir(name):
            found += [f"{name}/{entry}" for entry in store.listdir(name) if store.isdir(f"{name}/{entry}")]
    return sorted(found)


def test_local_s3_azure_with_kills_and_resume(sqlite_home, tmp_path, moto_server, azurite_server):
    tag = uuid.uuid4().hex[:8]
    servers.s3_bucket(moto_server, f"mig-{tag}")
    servers.azure_container(azurite_server, f"mig-{tag}")
    local_root = Path(get_store().path)
    make_artifacts(local_root)
    s3 = register_store("s3", "s3", f"s3://mig-{tag}/p", dict(moto_server.options))
    azure = register_store("azure", "azure", f"az://mig-{tag}/p", dict(azurite_server.options))
    before = {v.id: stored_digests(v) for v in all_versions()}
    loaded_before = load_artifact("array")
    names = ["array", "config", "sharded", "single"]

    # local -> S3, killed twice: in the middle of a multi-file copy, then between copy and re-point.
    assert len(plan_migration("s3")) == 5
    run_killed("migrate_mid_copy", "s3", "sharded")
    assert {v.store for v in all_versions()} == {"default"}  # nothing re-pointed
    run_killed("migrate_before_repoint", "s3")
    assert {v.store for v in all_versions()} == {"default"}
    generation = get_generation_now()
    code, out = invoke("migrate", "--to", "s3")
    assert code == 0, out
    assert "Moved 5 version(s)" in out and "already there from an interrupted run" in out
    assert get_generation_now() >= generation + 5
    after = all_versions()
    assert {v.store for v in after} == {"s3"}
    assert all(v.uri == s3.uri(f"{v.name}/{v.id}") and v.payload_kind == "folder" for v in after)
    assert {v.id: stored_digests(v) for v in after} == before  # bytes identical
    assert payload_folders(s3, names) == sorted(f"{v.name}/{v.id}" for v in after)  # no duplicates
    assert all(s3.isfile(f"{v.name}/{v.id}.manifest.json") for v in after)  # fsck --adopt can re-index them
    assert (local_root / "ckpts" / "last.ckpt").exists()  # no --delete-source: sources stay
    assert next(v for v in after if v.name == "single").metadata["migrated_from"] == [
        str(local_root / "ckpts" / "last.ckpt")]
    assert invoke("migrate", "--to", "s3")[1].startswith("0 version(s)")

    # S3 -> Azure with --delete-source, killed after a re-point but before its delete.
    run_killed("migrate_before_delete", "azure", delete_source=True)
    moved_one = [v for v in all_versions() if v.store == "azure"]
    assert len(moved_one) == 1 and s3.isdir(f"{moved_one[0].name}/{moved_one[0].id}")  # not deleted yet
    code, out = invoke("migrate", "--to", "azure", "--delete-source")
    assert code == 0, out
    assert "Moved 4 version(s)" in out and "Deleted 5 source payload(s)" in out
    final = all_versions()
    assert {v.store for v in final} == {"azure"}
    assert {v.id: stored_digests(v) for v in final} == before
    assert payload_folders(s3, names) == []  # deleted, after the re-point
    assert payload_folders(azure, names) == sorted(f"{v.name}/{v.id}" for v in final)
    assert np.array_equal(load_artifact("array"), loaded_before)
    assert load_artifact("config") == {"lr": 0.2}
    history = next(v for v in final if v.name == "single").metadata["migrated_from"]
    assert history == [str(local_root / "ckpts" / "last.ckpt"), s3.uri(f"single/{history[1].rsplit('/', 1)[1]}")]


def invoke(*args: str):
    """Run the CLI; returns (exit code, output with line wraps undone)."""
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, " ".join(result.output.split())


def get_generation_now() -> int:
    with get_index().read() as session:
        return get_generation(session)


def test_filters_dry_run_and_damaged_source(afs_home, tmp_path):
    local_root = Path(get_store().path)
    make_artifacts(local_root)
    other = register_store("other", "local", str(tmp_path / "other"))
    code, out = invoke("migrate", "--to", "other", "--artifact", "config", "--dry-run")
    assert code == 0 and "2 version(s) to move to other (2 from default)" in out
    assert {v.store for v in all_versions()} == {"default"}

    code, out = invoke("migrate", "--to", "other", "--artifact", "single", "--delete-source")
    assert code == 0, out
    single = Client().get_artifact_version("single")
    assert single.store == "other" and single.payload_kind == "folder"
    loaded = load_artifact("single")  # a private copy of the folder holding the file
    assert sorted(p.name for p in loaded.iterdir()) == ["last.ckpt"] and not loaded.is_relative_to(other.path)
    assert [f.path for f in single.files] == ["last.ckpt"]
    assert not (local_root / "ckpts" / "last.ckpt").exists()

    (local_root / "ckpts" / "epoch=1" / "shard-1.bin").write_bytes(b"bit rot")
    report = migrate("other", from_store="default")
    assert sorted(report.moved) == ["array:1", "config:1", "config:2"]
    assert [label for label, _ in report.failed] == ["sharded:1"]
    assert "differs from its manifest" in report.failed[0][1]
    assert Client().get_artifact_version("sharded").store == "default"
    assert not Path(other.path, "sharded").exists() or not any(Path(other.path, "sharded").rglob("shard-1.bin"))
    code, out = invoke("migrate", "--to", "other", "--from", "other")
    assert code == 1 and "both name store" in out
