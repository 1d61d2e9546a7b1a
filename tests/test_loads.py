"""What loading hands out cannot change what is stored, and tampered bytes
are never unpickled: a loaded Path is a private copy (or a read-only view
with zero_copy=True); a load that unpickles reads each file once, verified,
while an attacker swaps the stored bytes in a loop."""

import io
import mmap
import os
import pickle
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest_plugins = ["index_fixtures"]

from artifactfs import get_artifact_version, load_artifact, register_artifact, register_store, save_artifact  # noqa: E402
from artifactfs.api.artifacts import IntegrityError  # noqa: E402
from artifactfs.errors import ArtifactfsError  # noqa: E402


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def job_folder(tmp_path):
    folder = tmp_path / "job"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("original")
    (folder / "sub" / "b.bin").write_bytes(b"\x00" * 4096)
    (folder / "run.sh").write_text("#!/bin/sh\necho ok\n")
    (folder / "run.sh").chmod(0o755)
    return folder


# -- item 10: a loaded path is never the stored payload ------------------------------------------------


def test_writing_to_a_loaded_path_leaves_the_artifact_unchanged(sqlite_home, tmp_path, job_folder):
    save_artifact(job_folder, "f")
    q = load_artifact("f")
    (q / "a.txt").write_text("x")
    (q / "sub" / "b.bin").unlink()
    assert (load_artifact("f", verify=True) / "a.txt").read_text() == "original"
    get_artifact_version("f").verify()
    assert mode(q) == 0o700 and mode(q / "run.sh") == 0o755  # private, and a script stays executable

    # registered in place in a local store: the folder itself, and a single file
    root = tmp_path / "data"
    register_store("data", "local", str(root))
    (root / "exp").mkdir(parents=True)
    (root / "exp" / "a.txt").write_text("in place")
    (root / "model.pt").write_bytes(b"weights")
    register_artifact(root / "exp", "r")
    register_artifact(root / "model.pt", "m")
    q = load_artifact("r")
    (q / "a.txt").write_text("x")
    (q / "new.txt").write_text("added")
    m = load_artifact("m")
    assert m.name == "model.pt" and m.read_bytes() == b"weights"
    m.write_bytes(b"x")
    for name in ("r", "m"):
        load_artifact(name, verify=True)
        get_artifact_version(name).verify()
    assert (root / "exp" / "a.txt").read_text() == "in place" and (root / "model.pt").read_bytes() == b"weights"


def test_zero_copy_view_cannot_be_written_through(sqlite_home, tmp_path, job_folder):
    root = tmp_path / "data"
    register_store("data", "local", str(root))
    (root / "ckpt").mkdir(parents=True)
    (root / "ckpt" / "model.bin").write_bytes(os.urandom(10_000))
    register_artifact(root / "ckpt", "big")
    view = load_artifact("big", zero_copy=True)
    assert view.files == ["model.bin"] and view.size() == 10_000
    assert view.read_bytes() == (root / "ckpt" / "model.bin").read_bytes()
    with pytest.raises(ArtifactfsError, match="read-only view"):
        view.open("model.bin", "r+b")
    with view.open("model.bin") as f:
        with pytest.raises((io.UnsupportedOperation, OSError)):
            f.write(b"x")
        with pytest.raises(PermissionError):  # a shared writable mapping of a read-only descriptor
            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_WRITE)
        private = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)  # copy-on-write: never reaches the file
        private[:4] = b"XXXX"
        private.close()
    get_artifact_version("big").verify()

    save_artifact(job_folder, "f")  # a saved Path: the same view
    view = load_artifact("f", zero_copy=True, verify=True)
    assert view.files == ["a.txt", "run.sh", "sub/b.bin"] and view.read_text("a.txt") == "original"
    with pytest.raises(ArtifactfsError, match="name one"):
        view.open()
    save_artifact({"lr": 0.1}, "params")
    with pytest.raises(ArtifactfsError, match="files and folders"):
        load_artifact("params", zero_copy=True)


def test_private_copies_are_removed_when_the_process_exits(sqlite_home, job_folder):
    save_artifact(job_folder, "f")
    code = "import artifactfs; p = artifactfs.load_artifact('f'); print(p); assert (p / 'a.txt').exists()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    copy = Path(out.stdout.strip())
    assert copy.name.startswith("artifactfs-") and not copy.exists()


# -- item 11: verify, then unpickle, one copy of the bytes ----------------------------------------------


class Box:
    """Not JSON-able: stored by the cloudpickle fallback."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other) -> bool:
        return isinstance(other, Box) and other.value == self.value


class Evil:
    """A pickle that, when loaded, creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("value", [Box(42), {"model": Box(42), "rows": [1, 2]}], ids=["pickle", "container"])
def test_swapped_pickle_never_runs(sqlite_home, tmp_path, value):
    marker = tmp_path / "attacker-ran"
    version = save_artifact(value, "box")
    pickles = [Path(version.uri) / f.path for f in version.files if f.path.endswith("artifact.pkl")]
    assert len(pickles) == 1
    target = pickles[0]
    real, evil = target.read_bytes(), pickle.dumps(Evil(marker))
    stop = threading.Event()

    def attacker() -> None:  # swaps the stored bytes for its own pickle and back, as fast as it can
        swap = target.with_name(".swap")
        while not stop.is_set():
            for data in (evil, real):
                swap.write_bytes(data)
                os.replace(swap, target)

    thread = threading.Thread(target=attacker, daemon=True)
    thread.start()
    outcomes = {"real value": 0, "refused": 0}
    try:
        for _ in range(300):
            try:
                loaded = load_artifact("box")
            except IntegrityError:
                outcomes["refused"] += 1
            else:
                assert loaded == value
                outcomes["real value"] += 1
            assert not marker.exists(), f"the attacker's pickle ran ({outcomes})"
    finally:
        stop.set()
        thread.join(10)
    assert sum(outcomes.values()) == 300
    target.write_bytes(real)
    assert load_artifact("box", verify=True) == value


def test_numpy_loads_never_allow_pickles(sqlite_home):
    np = pytest.importorskip("numpy")
    version = save_artifact(np.arange(10), "arr")
    path = Path(version.uri) / "array.npy"
    with open(path, "wb") as f:  # an object array is a pickle inside a .npy
        np.save(f, np.array([Box(1)], dtype=object), allow_pickle=True)
    with pytest.raises((ValueError, IntegrityError)):
        load_artifact("arr")


def test_pickles_holding_large_arrays_roundtrip(sqlite_home):
    """cloudpickle writes large numpy buffers as PickleBuffer objects (protocol 5)."""
    np = pytest.importorskip("numpy")
    value = Box(np.arange(1_000_000))
    loaded = load_artifact(save_artifact(value, "blob").id, verify=True)
    assert isinstance(loaded, Box) and np.array_equal(loaded.value, value.value)
