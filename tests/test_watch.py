"""Watched checkpoint folders: a fake training loop writes checkpoint files and
folders slowly, in chunks; the watcher registers each exactly once, in order,
never half-written; a restart catches up and registers nothing twice."""

import blake3
import os
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest_plugins = ["index_fixtures"]

from artifactfs import Client, get_artifact_version, register_store  # noqa: E402
from artifactfs.api.artifacts import IntegrityError  # noqa: E402
from artifactfs.checkpoints import CheckpointRegistrar  # noqa: E402
from artifactfs.cli.main import cli  # noqa: E402
from artifactfs.watch import Ledger, Watcher, is_candidate, metadata_from_name  # noqa: E402

SETTLE = 1.0


@pytest.fixture
def ckpt_dir(sqlite_home, tmp_path):
    """A checkpoint folder inside a registered local store."""
    return checkpoint_folder(tmp_path)


@pytest.fixture
def ckpt_dir_any_index(afs_home, tmp_path):
    """The same, with the index on SQLite or on PostgreSQL."""
    return checkpoint_folder(tmp_path)


def checkpoint_folder(tmp_path: Path) -> Path:
    root = tmp_path / "ckpt-store"
    register_store("ckpts", "local", str(root))
    folder = root / "run-1"
    folder.mkdir()
    return folder


def digest(path: Path) -> dict[str, str]:
    """relative path -> BLAKE3 of a file, or of every file below a folder (as manifests record it)."""
    if path.is_file():
        return {path.name: blake3.blake3(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): blake3.blake3(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def write_slowly(path: Path, chunks: int = 4, size: int = 64 * 1024, pause: float = 0.15) -> None:
    """One open, several chunks with pauses: what torch.save looks like from outside."""
    with open(path, "wb") as f:
        for i in range(chunks):
            f.write(os.urandom(size))
            f.flush()
            time.sleep(pause)


def versions(name: str):
    return sorted(Client().list_artifact_versions(name=name), key=lambda v: int(v.version))


def start(watcher: Watcher) -> threading.Thread:
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    return thread


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_names():
    assert metadata_from_name("epoch=3-step=1200.ckpt") == {"epoch": 3, "step": 1200}
    assert metadata_from_name("epoch=03-val_loss=0.21.ckpt") == {"epoch": 3, "val_loss": 0.21}
    assert metadata_from_name("model-step=7") == {"step": 7}
    assert metadata_from_name("last.ckpt") == {}
    assert is_candidate("epoch=1.ckpt", "*.ckpt") and not is_candidate("metrics.csv", "*.ckpt")
    assert not is_candidate(".epoch=1.ckpt") and not is_candidate("epoch=1.ckpt.tmp", "*")


def test_fake_training_loop_registers_each_checkpoint_once_in_order(ckpt_dir, caplog):
    caplog.set_level("INFO", logger="artifactfs.watch")
    watcher = Watcher(ckpt_dir, CheckpointRegistrar("ckpt"), Ledger("ckpt"), pattern="*.ckpt", settle=SETTLE)
    thread = start(watcher)
    expected = []
    try:
        for epoch in range(4):
            name = f"epoch={epoch}-step={(epoch + 1) * 100}.ckpt"
            if epoch % 2 == 0:  # a file, written in chunks through one handle
                write_slowly(ckpt_dir / name)
            else:  # a folder (sharded checkpoint): files appear one after another
                folder = ckpt_dir / name
                folder.mkdir()
                for shard in range(3):
                    write_slowly(folder / f"shard-{shard}.pt", chunks=2)
                    time.sleep(0.1)
                (folder / "meta").mkdir()
                (folder / "meta" / "state.json").write_text('{"epoch": %d}' % epoch)
            expected.append(name)
            (ckpt_dir / "metrics.csv").write_text(f"epoch,{epoch}\n")  # not a checkpoint
        # write-then-rename, as careful savers do: the temporary name never counts
        write_slowly(ckpt_dir / "final.ckpt.tmp", chunks=2)
        os.rename(ckpt_dir / "final.ckpt.tmp", ckpt_dir / "final.ckpt")
        expected.append("final.ckpt")
        wait_for(lambda: len(watcher.stats.registered) == len(expected))
        time.sleep(SETTLE + 0.3)  # nothing more may come
    finally:
        watcher.stop()
        thread.join(10)
    assert not thread.is_alive()
    found = versions("ckpt")
    assert [Path(v.uri).name for v in found] == expected
    assert [v.version for v in found] == ["1", "2", "3", "4", "5"]
    for v in found:  # complete: the manifest is the final content, nothing half-written
        manifest = {f.path: f.digest for f in v.files}
        assert manifest == digest(Path(v.uri))
        assert v.save_type == "preexisting" and v.payload_kind == ("file" if Path(v.uri).is_file() else "folder")
    assert found[1].metadata["epoch"] == 1 and found[1].metadata["step"] == 200
    assert found[1].file_count == 4 and "meta/state.json" in {f.path for f in found[1].files}
    assert watcher.stats.failed == [] and watcher.pending == []
    assert "changed after" not in caplog.text  # our own reads while hashing are not writes


def age(path: Path, seconds: float = 60.0) -> None:
    """Make a checkpoint look finished ``seconds`` ago."""
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_restart_catches_up_and_registers_nothing_twice(ckpt_dir_any_index):
    ckpt_dir = ckpt_dir_any_index
    for epoch in range(2):
        (ckpt_dir / f"epoch={epoch}.ckpt").write_bytes(os.urandom(1000))
        age(ckpt_dir / f"epoch={epoch}.ckpt")
    first = Watcher(ckpt_dir, CheckpointRegistrar("ckpt"), Ledger("ckpt"), settle=5)
    assert len(first.catch_up()) == 2

    # while "down": two more complete checkpoints, one still being written
    for epoch in range(2, 4):
        (ckpt_dir / f"epoch={epoch}.ckpt").write_bytes(os.urandom(1000))
        age(ckpt_dir / f"epoch={epoch}.ckpt", 60 - epoch)
    (ckpt_dir / "epoch=4.ckpt").write_bytes(b"half")
    second = Watcher(ckpt_dir, CheckpointRegistrar("ckpt"), Ledger("ckpt"), settle=5)
    registered = second.catch_up()
    assert [Path(r.path).name for r in registered] == ["epoch=2.ckpt", "epoch=3.ckpt"]
    assert sorted(Path(p).name for p in second.stats.skipped) == ["epoch=0.ckpt", "epoch=1.ckpt"]
    assert second.pending == [str(ckpt_dir / "epoch=4.ckpt")]  # not complete yet: left alone

    age(ckpt_dir / "epoch=4.ckpt")
    out = CliRunner().invoke(cli, ["watch", str(ckpt_dir), "--name", "ckpt", "--settle", "5s", "--once"])
    assert out.exit_code == 0, out.output
    assert "1 registered, 4 already registered" in out.output
    assert [v.metadata["epoch"] for v in versions("ckpt")] == [0, 1, 2, 3, 4]

    # The trainer deletes an old checkpoint: the version stays, and fsck reports its payload missing.
    (ckpt_dir / "epoch=0.ckpt").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        get_artifact_version("ckpt", "1").verify()
    out = CliRunner().invoke(cli, ["fsck"], env={"COLUMNS": "250"})
    assert out.exit_code == 1 and "missing-payload" in out.output and str(ckpt_dir / "epoch=0.ckpt") in out.output
    out = CliRunner().invoke(cli, ["watch", str(ckpt_dir), "--name", "ckpt", "--settle", "0s", "--once"])
    assert "0 registered, 4 already registered" in out.output

    # rewritten while no watcher ran: its new content is registered (a copy), once
    (ckpt_dir / "epoch=2.ckpt").write_bytes(os.urandom(1000))
    age(ckpt_dir / "epoch=2.ckpt")
    out = CliRunner().invoke(cli, ["watch", str(ckpt_dir), "--name", "ckpt", "--settle", "0s", "--once"])
    assert "1 registered, 3 already registered" in out.output, out.output
    assert versions("ckpt")[-1].metadata["copied_from"] == str(ckpt_dir / "epoch=2.ckpt")
    out = CliRunner().invoke(cli, ["watch", str(ckpt_dir), "--name", "ckpt", "--settle", "0s", "--once"])
    assert "0 registered, 4 already registered" in out.output, out.output


def test_copy_mode_outside_stores(sqlite_home, tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "step=10.ckpt").write_bytes(b"a" * 5000)
    runner = CliRunner()
    out = runner.invoke(cli, ["watch", str(folder), "--name", "c", "--settle", "0s", "--once"])
    assert out.exit_code == 1 and "not inside any registered store" in out.output and "--copy" in out.output
    args = ["watch", str(folder), "--name", "c", "--settle", "0s", "--once", "--copy", "--tag", "nightly"]
    out = runner.invoke(cli, args)
    assert out.exit_code == 0 and "1 registered" in out.output, out.output
    (folder / "step=20.ckpt").write_bytes(b"b" * 5000)
    out = runner.invoke(cli, args)
    assert "1 registered, 1 already registered" in out.output, out.output
    found = versions("c")
    assert [v.metadata["step"] for v in found] == [10, 20]
    assert found[0].metadata["copied_from"] == str(folder / "step=10.ckpt")
    assert found[0].tags == ["nightly"] and found[0].uri != str(folder / "step=10.ckpt")
    assert (folder / "step=10.ckpt").exists()  # the source stays


def test_changed_after_registration_is_reported(ckpt_dir, caplog):
    watcher = Watcher(ckpt_dir, CheckpointRegistrar("ckpt"), Ledger("ckpt"), settle=0.3)
    thread = start(watcher)
    try:
        (ckpt_dir / "last.ckpt").write_bytes(b"1" * 100)
        wait_for(lambda: len(watcher.stats.registered) == 1)
        with caplog.at_level("WARNING", logger="artifactfs.watch"):
            os.chmod(ckpt_dir / "last.ckpt", 0o600)  # attributes only, and a close with nothing written:
            open(ckpt_dir / "last.ckpt", "ab").close()  # the same content, nothing to register or warn about
            time.sleep(1.0)
            assert "changed after" not in caplog.text and watcher.pending == []
            (ckpt_dir / "last.ckpt").write_bytes(b"2" * 100)  # rewritten in place: new content, a new version
            wait_for(lambda: "changed after it was registered" in caplog.text, timeout=5)
            wait_for(lambda: len(watcher.stats.registered) == 2)
        time.sleep(0.5)
    finally:
        watcher.stop()
        thread.join(10)
    first, second = versions("ckpt")
    assert first.uri == str(ckpt_dir / "last.ckpt")  # adopted in place: fsck reports it changed
    assert second.uri != first.uri and second.metadata["copied_from"] == first.uri  # the new content, copied
    assert Path(second.uri, "last.ckpt").read_bytes() == b"2" * 100 if Path(second.uri).is_dir() \
        else Path(second.uri).read_bytes() == b"2" * 100


# -- completeness: a trainer that dies mid-write -------------------------------------------------------


def zip_checkpoint(members: int = 3, size: int = 3000) -> bytes:
    """A file as torch.save writes it: a zip of stored (uncompressed) members."""
    import io
    import random
    import zipfile

    rng = random.Random(7)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00." + bytes(rng.randrange(256) for _ in range(50)))
        for i in range(members):
            archive.writestr(f"archive/data/{i}", bytes(rng.randrange(256) for _ in range(size)))
    return out.getvalue()


def safetensors_checkpoint(floats: int = 1000) -> bytes:
    import json
    import struct

    header = json.dumps({"__metadata__": {"format": "pt"},
                         "w": {"dtype": "F32", "shape": [floats], "data_offsets": [0, 4 * floats]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + bytes(range(256)) * (4 * floats // 256) + b"\x01" * (4 * floats % 256)


def npy_checkpoint(n: int = 1000) -> bytes:
    import io

    import numpy as np

    out = io.BytesIO()
    np.save(out, np.arange(n, dtype=np.float32))
    return out.getvalue()


def test_format_checks_find_every_cut():
    """Every proper prefix of a zip, safetensors or .npy checkpoint is incomplete; the whole is not."""
    from artifactfs.checkpoints.complete import incomplete_reason

    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        for name, data in (("a.ckpt", zip_checkpoint(2, 300)), ("b.safetensors", safetensors_checkpoint(100)),
                           ("c.npy", npy_checkpoint(100))):
            path = os.path.join(folder, name)
            Path(path).write_bytes(data)
            assert incomplete_reason(path) is None, name
            for cut in range(len(data)):
                Path(path).write_bytes(data[:cut])
                assert incomplete_reason(path) is not None, (name, cut)
            Path(path).write_bytes(data + b"x")  # longer than its header says
            assert name == "a.ckpt" or incomplete_reason(path) is not None
        legacy = os.path.join(folder, "old.pt")  # a pickled (pre-zip) torch.save: no check, the settle time decides
        Path(legacy).write_bytes(b"\x80\x02\x8a\x0alegacy")
        assert incomplete_reason(legacy) is None
        os.makedirs(os.path.join(folder, "checkpoint-1"))
        Path(folder, "checkpoint-1", "model.safetensors").write_bytes(safetensors_checkpoint(10)[:-1])
        assert incomplete_reason(os.path.join(folder, "checkpoint-1")).startswith("model.safetensors: ")


def test_trainer_dies_mid_write_nothing_registered_until_complete(ckpt_dir, caplog):
    """Truncated zip, safetensors and .npy files (and a folder holding one) stay quiet far longer
    than --settle: they are reported and not registered; once the trainer finishes them they are."""
    caplog.set_level("INFO", logger="artifactfs.watch")
    settle = 0.3
    files = {"epoch=1.ckpt": zip_checkpoint(), "model.safetensors": safetensors_checkpoint(),
             "weights.npy": npy_checkpoint(), "checkpoint-100/model.safetensors": safetensors_checkpoint(500)}
    (ckpt_dir / "checkpoint-100").mkdir()
    (ckpt_dir / "checkpoint-100" / "optimizer.pt").write_bytes(zip_checkpoint(1))  # complete
    watcher = Watcher(ckpt_dir, CheckpointRegistrar("ckpt"), Ledger("ckpt"), settle=settle)
    thread = start(watcher)
    try:
        for name, data in files.items():  # the trainer dies two thirds into each file
            (ckpt_dir / name).write_bytes(data[: len(data) * 2 // 3])
        wait_for(lambda: watcher.stats.registered or len(getattr(watcher.stats, "incomplete", ())) == 4)
        time.sleep(5 * settle)  # down far longer than --settle
        assert [Path(r.path).name for r in watcher.stats.registered] == [] and versions("ckpt") == []
        assert sorted(Path(p).name for p in watcher.stats.incomplete) == [
            "checkpoint-100", "epoch=1.ckpt", "model.safetensors", "weights.npy"]
        assert "checkpoint-100/model.safetensors" not in watcher.stats.incomplete  # entries, not their files
        assert "model.safetensors: " in watcher.stats.incomplete[str(ckpt_dir / "checkpoint-100")]
        assert caplog.text.count("is not complete, not registered") == 4  # reported once each

        for name, data in files.items():  # the trainer resumes and finishes every file
            with open(ckpt_dir / name, "ab") as f:
                f.write(data[len(data) * 2 // 3:])
        wait_for(lambda: len(watcher.stats.registered) == 4)
    finally:
        watcher.stop()
        thread.join(10)
    assert watcher.stats.incomplete == {} and watcher.stats.failed == []
    for v in versions("ckpt"):  # what was registered is the finished content
        assert {f.path: f.digest for f in v.files} == digest(Path(v.uri))
    assert any({f.path for f in v.files} == {"model.safetensors", "optimizer.pt"} for v in versions("ckpt"))


def test_watch_once_reports_incomplete(ckpt_dir):
    data = zip_checkpoint()
    (ckpt_dir / "epoch=1.ckpt").write_bytes(data[:-10])
    age(ckpt_dir / "epoch=1.ckpt")
    out = CliRunner().invoke(cli, ["watch", str(ckpt_dir), "--name", "ckpt", "--settle", "1s", "--once"])
    assert out.exit_code == 0, out.output
    assert "0 registered, 0 already registered, 0 failed, 1 incomplete (not registered)" in out.output
    assert "epoch=1.ckpt is not complete" in out.output and versions("ckpt") == []


# -- a trainer that pauses longer than --settle, in its own process -------------------------------------

TRAINER = Path(__file__).with_name("checkpoint_trainer.py")
PAUSE = 0.6  # between the pieces of one file: twice the watcher's settle time
QUIET = 0.3  # the watcher's --settle


def run_trainer(mode: str, folder: Path, count: int, **env) -> list[dict]:
    """Run the simulated trainer to its end; what it finished, in order."""
    import json
    import subprocess
    import sys

    log_path = folder.parent / f"{mode}-trainer.log"
    subprocess.run([sys.executable, str(TRAINER), mode, str(folder), str(log_path), str(PAUSE), str(count)],
                   check=True, timeout=120, env={**os.environ, **env})
    return [json.loads(line) for line in log_path.read_text().splitlines()]


def manifest_digest(version) -> str:
    """The digest a version recorded of its one file."""
    (entry,) = version.files
    return entry.digest


def watching(folder: Path, **options) -> tuple[Watcher, threading.Thread]:
    registrar = CheckpointRegistrar("ckpt", folder_complete=options.pop("folder_complete", "closed"))
    watcher = Watcher(folder, registrar, Ledger("ckpt"), settle=QUIET, **options)  # the registrar's signal
    return watcher, start(watcher)


def stop(watcher: Watcher, thread: threading.Thread) -> None:
    time.sleep(1.5)  # anything still to come comes now
    watcher.stop()
    thread.join(10)
    assert not thread.is_alive()


def test_raw_files_written_in_pieces_are_registered_whole(ckpt_dir):
    """Raw-format files (no format check can tell their end) written through one handle with pauses
    longer than --settle: never registered half-written; each complete file registered once."""
    watcher, thread = watching(ckpt_dir, pattern="*.bin")
    try:
        finished = run_trainer("raw", ckpt_dir, 3)
    finally:
        stop(watcher, thread)
    found = versions("ckpt")
    assert [(v.uri, manifest_digest(v)) for v in found] == [(f["path"], f["digest"]) for f in finished]
    assert watcher.stats.failed == [] and watcher.pending == []


@pytest.mark.parametrize("signal, file_gap", [("closed", "0.05"), ("COMPLETE", str(PAUSE))])
def test_folders_of_five_files_are_never_registered_with_fewer(ckpt_dir, signal, file_gap):
    """Folders whose 5 files are each written in pieces with pauses longer than --settle; with a
    COMPLETE marker the trainer may also pause between files. Each folder is registered once, whole."""
    watcher, thread = watching(ckpt_dir, folder_complete=signal)
    try:
        run_trainer("folder", ckpt_dir, 2, TRAINER_FILE_GAP=file_gap)
    finally:
        stop(watcher, thread)
    found = versions("ckpt")
    assert [Path(v.uri).name for v in found] == ["checkpoint-0", "checkpoint-1"]
    for v in found:
        assert {f.path: f.digest for f in v.files} == digest(Path(v.uri))
        assert {f.path for f in v.files} == {f"part-{i}.bin" for i in range(5)} | {"COMPLETE"}


def test_rewritten_and_reused_names_register_every_content(ckpt_dir):
    """last.bin rewritten in place 8 times and best.bin replaced 3 times: each content is registered
    once (the first in place, later ones as copies); a restarted watcher registers only what changed
    while it was down."""
    watcher, thread = watching(ckpt_dir, pattern="*.bin")
    try:
        finished = run_trainer("rewrite", ckpt_dir, 8)
    finally:
        stop(watcher, thread)
    assert sum(f["path"].endswith("last.bin") for f in finished) == 8
    assert sum(f["path"].endswith("best.bin") for f in finished) == 3

    def registered() -> list[tuple[str, str]]:
        return [(v.metadata.get("copied_from", v.uri), manifest_digest(v)) for v in versions("ckpt")]

    assert sorted(registered()) == sorted((f["path"], f["digest"]) for f in finished)
    assert [v.uri for v in versions("ckpt")][:1] == [str(ckpt_dir / "last.bin")]  # the first in place
    assert watcher.stats.failed == []

    # restarted: nothing twice; then the trainer rewrites last.bin while no watcher runs
    assert Watcher(ckpt_dir, CheckpointRegistrar("ckpt"), Ledger("ckpt"), settle=0).catch_up() == []
    (ckpt_dir / "last.bin").write_bytes(b"while down")
    age(ckpt_dir / "last.bin")
    again = Watcher(ckpt_dir, CheckpointRegistrar("ckpt"), Ledger("ckpt"), settle=QUIET).catch_up()
    assert [r.path for r in again] == [str(ckpt_dir / "last.bin")]
    assert versions("ckpt")[-1].metadata["copied_from"] == str(ckpt_dir / "last.bin")
    out = CliRunner().invoke(cli, ["watch", str(ckpt_dir), "--name", "ckpt", "--settle", "0s", "--once"])
    assert out.exit_code == 0 and "0 registered" in out.output, out.output


def test_folder_marker_option_and_registrar_refuse_incomplete(ckpt_dir):
    """`--folder-complete FILE` and CheckpointRegistrar(folder_complete=FILE): a folder without its
    marker is not registered; the registrar refuses a file still open for writing, by any process."""
    from artifactfs.checkpoints import IncompleteCheckpointError

    (ckpt_dir / "checkpoint-1").mkdir()
    (ckpt_dir / "checkpoint-1" / "model.bin").write_bytes(b"m" * 100)
    age(ckpt_dir / "checkpoint-1" / "model.bin")
    age(ckpt_dir / "checkpoint-1")
    args = ["watch", str(ckpt_dir), "--name", "ckpt", "--settle", "0s", "--once", "--folder-complete", "COMPLETE"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0 and "0 registered" in out.output and "1 incomplete" in out.output, out.output
    assert "no completion marker COMPLETE" in out.output
    with pytest.raises(IncompleteCheckpointError, match="no completion marker COMPLETE"):
        CheckpointRegistrar("ckpt", folder_complete="COMPLETE").register(ckpt_dir / "checkpoint-1")
    (ckpt_dir / "checkpoint-1" / "COMPLETE").touch()
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0 and "1 registered" in out.output, out.output

    out = CliRunner().invoke(cli, [*args[:-1], "a/b"])
    assert out.exit_code != 0 and "not a folder completion signal" in out.output and "COMPLETE" in out.output

    with open(ckpt_dir / "step=5.bin", "wb") as writer:
        writer.write(b"half")
        writer.flush()
        with pytest.raises(IncompleteCheckpointError, match="still open for writing"):
            CheckpointRegistrar("ckpt").register(ckpt_dir / "step=5.bin")
    assert CheckpointRegistrar("ckpt").register(ckpt_dir / "step=5.bin").version == "2"
