"""artifactfs's own tests of the ZenML gaps issue 12 names (not ported from
ZenML): each asserts the behaviour a ZenML user's code relies on."""

from __future__ import annotations

import os
import uuid
import zipfile
from typing import Annotated, Tuple

import pytest

from artifactfs import (
    ArtifactConfig,
    ArtifactSaveType,
    ArtifactType,
    Client,
    ExternalArtifact,
    get_step_context,
    load_artifact,
    log_metadata,
    pipeline,
    register_artifact,
    save_artifact,
    step,
)
from artifactfs import fileio
from artifactfs.errors import ArtifactfsError
from artifactfs.index.gc import VersionInUseError
from artifactfs.materializers import BaseMaterializer, BuiltInMaterializer, registry


class TenTimes(BaseMaterializer):
    """A user's materializer for int, defined after the built-in one."""

    ASSOCIATED_TYPES = (int,)

    def save(self, data: int) -> None:
        with self.artifact_store.open(self.path("ten.txt"), "w") as f:
            f.write(str(data * 10))

    def load(self, data_type: type) -> int:
        with self.artifact_store.open(self.path("ten.txt")) as f:
            return int(f.read()) // 10


def test_defining_a_materializer_keeps_the_builtin_default():
    assert registry[int] is BuiltInMaterializer
    assert save_artifact(5, "five").materializer.endswith("BuiltInMaterializer")
    custom = save_artifact(5, "five", materializer=TenTimes)
    assert custom.materializer.endswith("TenTimes") and custom.load() == 5
    by_path = save_artifact(5, "five", materializer=f"{TenTimes.__module__}.TenTimes")  # ZenML takes a source path too
    assert by_path.materializer.endswith("TenTimes")
    with pytest.raises(ArtifactfsError, match="cannot save"):
        save_artifact("text", "five", materializer=TenTimes)  # not a type it handles


@step(output_materializers=TenTimes)
def make_int() -> int:
    return 4


@step
def make_pair() -> Tuple[Annotated[int, "a"], Annotated[int, "b"]]:
    return 1, 2


def test_output_materializers_on_step_configure_and_with_options():
    @pipeline
    def p():
        make_int()
        make_pair.with_options(output_materializers={"b": TenTimes})()

    run = p()
    assert run.steps["make_int"].output.materializer.endswith("TenTimes")
    assert run.steps["make_pair"].outputs["a"][0].materializer.endswith("BuiltInMaterializer")
    assert run.steps["make_pair"].outputs["b"].materializer.endswith("TenTimes")  # one version: the list stands for it
    assert not make_pair.output_materializers  # with_options left the original alone
    make_pair.configure(output_materializers={"a": TenTimes})
    try:
        assert make_pair.output_materializers == {"a": TenTimes}
    finally:
        make_pair.output_materializers = {}


def test_save_artifact_takes_zenml_positional_order():
    v = save_artifact([1], "typed", None, ArtifactType.MODEL, ["t"])
    assert v.type == ArtifactType.MODEL and v.tags == ["t"] and v.version == "1"
    assert load_artifact(uuid.UUID(v.id)) == [1]
    assert Client().get_artifact_version(uuid.UUID(v.id)).id == v.id
    with pytest.raises(ArtifactfsError, match="uri"):
        save_artifact(1, "x", uri="/somewhere")


def test_register_folder_then_file_inside_it():
    root = Client().active_stack.artifact_store.path
    folder = os.path.join(root, "my_folder")
    os.makedirs(folder)
    with open(os.path.join(folder, "model.pkl"), "wb") as f:
        f.write(b"weights")
    outer = register_artifact(folder_or_file_uri=folder, name="folder")
    inner = register_artifact(os.path.join(folder, "model.pkl"), "file")
    assert outer.save_type == ArtifactSaveType.PREEXISTING and inner.uri.endswith("model.pkl")
    # Deleting the folder's version keeps the file another live version owns.
    Client().delete_artifact_version("folder", delete_from_artifact_store=True)
    assert os.path.exists(os.path.join(folder, "model.pkl"))
    with pytest.raises(Exception):
        Client().get_artifact_version("folder")


@step
def reads(value: int) -> int:
    return value


def test_delete_refuses_a_version_a_run_read_and_sweeps_otherwise():
    used = save_artifact(3, "used")
    spare = save_artifact(4, "spare")

    @pipeline(enable_cache=False)
    def consume():
        reads(Client().get_artifact_version("used"))

    consume()
    with pytest.raises(VersionInUseError, match="delete that run first"):
        Client().delete_artifact_version("used", delete_from_artifact_store=True)
    assert fileio.exists(used.uri) and load_artifact("used") == 3
    Client().delete_artifact_version(spare.id, delete_from_artifact_store=True)
    assert not fileio.exists(spare.uri)
    assert Client().list_artifact_versions(name="spare") == []


def test_prune_artifacts_removes_unused_versions_only():
    kept, dropped = save_artifact(1, "kept"), save_artifact(2, "dropped")

    @pipeline(enable_cache=False)
    def consume():
        reads(Client().get_artifact_version("kept"))

    consume()
    Client().prune_artifacts(only_versions=False, delete_from_artifact_store=True)
    assert load_artifact("kept") == 1 and fileio.exists(kept.uri)
    assert not fileio.exists(dropped.uri)
    assert "dropped" not in [a.name for a in Client().list_artifacts()]


@step
def produce() -> Annotated[int, "late"]:
    return 7


def test_pipeline_body_lookup_resolves_when_the_step_runs():
    @pipeline(enable_cache=False)
    def p():
        produce()
        reads(Client().get_artifact_version("late"), after="produce")

    run = p()
    assert run.steps["reads"].output.load() == 7


@step
def configured() -> Annotated[str, ArtifactConfig(name="cfg_{kind}", version="v1", tags=["a"],
                                                  run_metadata={"k": 1}, is_model_artifact=True)]:
    get_step_context().add_output_metadata({"extra": 2})
    get_step_context().add_output_tags(["b"])
    return "model"


def test_artifact_config_and_step_context_helpers():
    @pipeline
    def p():
        configured.with_options(substitutions={"kind": "x"})()

    p()
    v = Client().get_artifact_version("cfg_x", "v1")
    assert v.type == ArtifactType.MODEL and {"a", "b"} <= set(v.tags)
    assert v.run_metadata["k"] == 1 and v.run_metadata["extra"] == 2


@step
def total(values: list) -> int:
    return sum(values)


def test_external_artifact_and_run_metadata():
    @pipeline
    def p():
        total(ExternalArtifact(value=[1, 2, 3]))

    run = p()
    assert run.steps["total"].output.load() == 6
    log_metadata({"note": "ok"}, run_id_name_or_prefix=run.name)
    assert Client().get_pipeline_run(run.name).run_metadata == {"note": "ok"}


def test_numpy_metadata_keys_and_download_files(tmp_path):
    import numpy as np

    v = save_artifact(np.arange(6).reshape(2, 3), "arr")
    assert v.run_metadata["shape"] == (2, 3)  # a tuple, as ZenML gives it
    assert v.run_metadata["dtype"] == "<class 'numpy.int64'>"
    v.download_files(tmp_path / "a.zip")
    assert zipfile.ZipFile(tmp_path / "a.zip").namelist() == ["array.npy"]
    with pytest.raises(FileExistsError):
        v.download_files(tmp_path / "a.zip")


def test_active_stack_is_a_view_of_the_active_store():
    stack = Client().active_stack
    assert stack.artifact_store.path == Client().get_store().path
    with pytest.raises(AttributeError):
        stack.artifact_store = None


def test_migrate_keeps_a_file_another_version_adopted_inside(tmp_path):
    """Nested adoption (allowed above) must not let ``migrate --delete-source``
    delete a file that another live version owns."""
    from artifactfs import register_store
    from artifactfs.api.migrate import migrate

    root = Client().active_stack.artifact_store.path
    folder = os.path.join(root, "ckpts")
    os.makedirs(folder)
    for name in ("a.bin", "b.bin"):
        with open(os.path.join(folder, name), "wb") as f:
            f.write(name.encode())
    register_artifact(folder, "outer")
    register_artifact(os.path.join(folder, "a.bin"), "inner")
    register_store("other", "local", str(tmp_path / "other"))
    migrate("other", artifact="outer", delete_source=True)
    assert load_artifact("outer") is not None and Client().get_artifact_version("outer").store == "other"
    assert os.path.exists(os.path.join(folder, "a.bin"))  # inner still owns it
    assert load_artifact("inner").read_bytes() == b"a.bin"
