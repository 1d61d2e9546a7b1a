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
    assert sorted(outputs) == ["fit-ckpt", "fit-ckpt:2", "fit-ckpt:3"]
    assert [outputs[k].version for k in sorted(outputs)] == ["1", "2", "3"]
    assert Client().get_artifact_version("fit-ckpt", 3).producer.name == "fit"


def test_lightning_adapter_without_lightning(monkeypatch):
    for name in ("lightning", "lightning.pytorch", "lightning.pytorch.callbacks",
                 "pytorch_lightning", "pytorch_lightning.callbacks"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.delitem(sys.modules, "artifactfs.checkpoints.lightning", raising=False)
    with pytest.raises(ImportError, match="needs PyTorch Lightning.*pip install lightning"):
        importlib.import_module("artifactfs.checkpoints.lightning")


def test_lightning_adapter(sqlite_home, tmp_path):
    pytest.importorskip("lightning", reason="PyTorch Lightning is not installed")
    import torch
    from lightning.pytorch import LightningModule, Trainer

    from artifactfs.checkpoints.lightning import ArtifactfsModelCheckpoint

    class Tiny(LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, _):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2), torch.randn(8, 1)),
                                       batch_size=4)
    callback = ArtifactfsModelCheckpoint(artifact_name="tiny", copy=True, dirpath=tmp_path, save_top_k=-1)
    Trainer(max_epochs=2, callbacks=[callback], logger=False, enable_progress_bar=False,
            enable_model_summary=False).fit(Tiny(), data)
    found = Client().list_artifact_versions(name="tiny")
    assert len(found) == 2 and {v.metadata["epoch"] for v in found} == {0, 1}
