"""CheckpointRegistrar from a plain training loop (no torch, no Lightning), inside
a step, and the Lightning adapter's import guard."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["index_fixtures"]

from artifactfs import Client, pipeline, register_store, step  # noqa: E402
from artifactfs.checkpoints import CheckpointRegistrar  # noqa: E402
from artifactfs.errors import AlreadyExistsError  # noqa: E402


def train_loop(folder: Path, registrar: CheckpointRegistrar, epochs: int = 3) -> list:
    """A stand-in for a training loop: 'weights' are a numpy array saved per epoch."""
    weights, found = np.zeros(4), []
    for epoch in range(epochs):
        weights = weights + 1
        path = folder / f"epoch={epoch}.npy"
        np.save(path, weights)
        loss = np.float32(1.0 / (epoch + 1))  # numpy scalars, as frameworks hand them out
        found.append(registrar.register(path, step=(epoch + 1) * 10, epoch=epoch,
                                        metrics={"val/loss": loss, "lr": 0.1}))
    return found


def test_plain_loop_in_place(afs_home, tmp_path):
    root = tmp_path / "store"
    register_store("ckpts", "local", str(root))
    (root / "run").mkdir(parents=True)
    registrar = CheckpointRegistrar("model-ckpt", tags=["exp1"])
    found = train_loop(root / "run", registrar)
    assert [v.version for v in found] == ["1", "2", "3"]
    last = found[-1]
    assert last.uri == str(root / "run" / "epoch=2.npy") and last.payload_kind == "file"
    assert last.metadata["epoch"] == 2 and last.metadata["step"] == 30
    assert last.metadata["val.loss"] == pytest.approx(1 / 3) and last.metadata["lr"] == 0.1
    assert last.tags == ["exp1"]
    assert np.array_equal(np.load(last.load()), np.full(4, 3.0))
    with pytest.raises(AlreadyExistsError):  # one path, one version
        registrar.register(root / "run" / "epoch=2.npy")


def test_plain_loop_copy(sqlite_home, tmp_path):
    registrar = CheckpointRegistrar("copied", copy=True)
    found = train_loop(tmp_path, registrar, epochs=2)
    assert found[0].metadata["copied_from"] == str(tmp_path / "epoch=0.npy")
    assert np.array_equal(np.load(found[1].load() / "epoch=1.npy"), np.full(4, 2.0))


def test_inside_a_step_every_checkpoint_is_an_output(sqlite_home, tmp_path):
    @step
    def fit(epochs: int = 3) -> None:
        train_loop(tmp_path, CheckpointRegistrar("fit-ckpt", copy=True), epochs)

    @pipeline
    def training():
        fit()

    run = training()
    outputs = run.steps["fit"].outputs
    assert list(outputs) == ["fit-ckpt"]  # every checkpoint under the one name, as ZenML's output lists
    assert [v.version for v in outputs["fit-ckpt"]] == ["1", "2", "3"]
    assert Client().get_artifact_version("fit-ckpt", 3).producer.name == "fit"


def test_lightning_adapter_without_lightning(monkeypatch):
    for name in ("lightning", "lightning.pytorch", "lightning.pytorch.callbacks",
                 "pytorch_lightning", "pytorch_lightning.callbacks"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.delitem(sys.modules, "artifactfs.checkpoints.lightning", raising=False)
    with pytest.raises(ImportError, match="needs PyTorch Lightning.*pip install lightning"):
        importlib.import_module("artifactfs.checkpoints.lightning")


# No test runs the Lightning adapter (checkpoints/lightning.py) itself: Lightning needs PyTorch, which
# is in no extra of this project and too heavy for its test environment (about 2 GB of wheels), so a
# test of it was skipped on every run and checked nothing. What it does is CheckpointRegistrar.register
# (tested above and in test_watch.py) called from ModelCheckpoint._save_checkpoint; the import
# error without Lightning is tested above. README says the adapter is untested here.
