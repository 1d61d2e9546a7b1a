"""save_artifact / load_artifact / log_metadata / register_artifact and
``download_files`` as a ZenML user's code calls them, in and out of steps.
artifactfs's own tests of the behaviour ZenML documents for these functions.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Optional, Tuple

import pytest

from artifactfs import (
    ArtifactSaveType,
    Client,
    ExecutionMode,
    load_artifact,
    log_artifact_metadata,
    log_metadata,
    pipeline,
    register_artifact,
    save_artifact,
    step,
)
from artifactfs.stores.base import COPY_CHUNK


def test_versions_count_up_and_a_named_version_is_found_by_name():
    save_artifact("first", "answer")
    save_artifact("second", "answer")
    assert load_artifact("answer") == "second"
    assert load_artifact("answer", version="1") == "first"
    save_artifact("named", "answer", version="44")
    assert load_artifact("answer") == "named"
    assert load_artifact("answer", version="44") == "named"
    assert load_artifact("answer", version="2") == "second"


@step
def saver(value: int, name: str, version: Optional[str] = None) -> None:
    save_artifact(value, name=name, version=version)


@step
def checker(expected: int, name: str, version: Optional[str] = None) -> None:
    got = load_artifact(name, version)
    if got != expected:
        raise AssertionError(f"{name}@{version}: {got} != {expected}")


@pipeline
def save_then_check(value: int, expected: int, version: Optional[str] = None,
                    check_version: Optional[str] = None):
    saver(value=value, name="in_run", version=version)
    checker(expected=expected, name="in_run", version=check_version, after="saver")


@pipeline
def only_check(expected: int, version: Optional[str] = None):
    checker(expected=expected, name="in_run", version=version)


def test_steps_save_and_load_named_versions_in_order():
    save_then_check(value=42, expected=42)
    save_then_check(value=43, expected=43)
    only_check(expected=42, version="1")
    save_then_check(value=44, expected=43, version="44", check_version="2")
    only_check(expected=44, version="44")
    with pytest.raises(AssertionError):
        only_check(expected=99)


def test_log_metadata_on_existing_versions_by_id_and_by_name():
    first = save_artifact(1, "described")
    log_metadata({"note": "by id"}, artifact_version_id=first.id)
    save_artifact(2, "described", version="two")
    log_metadata({"other": "by name"}, artifact_name="described", artifact_version="two")
    log_metadata({"f": 1.5, "i": 1, "s": "1.0", "ls": ["a", "b"], "lf": [1.0, 2.0]},
                 artifact_name="described", artifact_version="1")
    one = Client().get_artifact_version("described", version="1").run_metadata
    assert one["note"] == "by id"
    assert (one["f"], one["i"], one["s"], one["ls"], one["lf"]) == (1.5, 1, "1.0", ["a", "b"], [1.0, 2.0])
    assert type(one["i"]) is int and type(one["f"]) is float
    assert "other" not in one
    two = Client().get_artifact_version("described", version="two").run_metadata
    assert two["other"] == "by name" and "note" not in two and "f" not in two


@step
def one_output() -> str:
    log_artifact_metadata({"description": "single", "metrics": {"accuracy": 0.9}})
    return "42"


@step
def two_outputs() -> Tuple[Annotated[str, "text"], Annotated[int, "number"]]:
    log_metadata({"description": "for number"}, artifact_name="number", infer_artifact=True)
    return "42", 42


@step
def two_outputs_unclear() -> Tuple[Annotated[str, "text"], Annotated[int, "number"]]:
    log_artifact_metadata({"description": "whose?"})
    return "42", 42


def test_metadata_logged_in_a_step_goes_on_the_right_output():
    @pipeline
    def single():
        one_output()

    @pipeline
    def double():
        two_outputs()

    single()
    out = single.model.last_run.steps["one_output"].output
    assert out.run_metadata["description"] == "single"
    assert out.run_metadata["metrics"] == {"accuracy": 0.9}
    double()
    s = double.model.last_run.steps["two_outputs"]
    assert "description" not in s.outputs["text"][0].run_metadata
    assert s.outputs["number"][0].run_metadata["description"] == "for number"


def test_metadata_without_an_output_name_in_a_two_output_step_fails_the_run():
    @pipeline(execution_mode=ExecutionMode.FAIL_FAST)
    def unclear():
        two_outputs_unclear()

    with pytest.raises(ValueError):
        unclear()


@step
def seven() -> int:
    return 7


@pipeline(name="seven_pipeline")
def seven_pipeline():
    seven()


def test_download_files_zips_the_payload_and_keeps_an_existing_file(tmp_path):
    seven_pipeline()
    artifact = Client().get_artifact("seven_pipeline::seven::output")
    version = Client().get_artifact_version(list(artifact.versions.values())[0].id)
    target = tmp_path / "out.zip"
    version.download_files(path=str(target))
    with zipfile.ZipFile(target) as z:
        assert z.namelist() == ["data.json"] and z.read("data.json") == b"7"
    target.write_text("someone's file")
    with pytest.raises(FileExistsError):
        version.download_files(path=str(target))
    assert target.read_text() == "someone's file"
    version.download_files(path=str(target), overwrite=True)
    with zipfile.ZipFile(target) as z:
        assert z.read("data.json") == b"7"


def test_download_files_of_a_payload_larger_than_a_chunk(tmp_path):
    big = b"X" * COPY_CHUNK + b"Y" * 1_000_000 + b"Z" * 500_000  # more than one read of the copy loop
    save_artifact(big, name="big")
    target = tmp_path / "big.zip"
    Client().get_artifact_version("big").download_files(path=str(target))
    with zipfile.ZipFile(target) as z:
        (name,) = z.namelist()
        assert z.read(name) == big
    assert load_artifact("big") == big


def test_register_a_folder_in_the_store_as_it_is():
    root = Client().active_stack.artifact_store.path
    folder = os.path.join(root, "given_folder")
    os.makedirs(folder)
    Path(folder, "test.txt").write_text("test")
    register_artifact(folder_or_file_uri=folder, name="given_folder")
    version = Client().get_artifact_version("given_folder", version=1)
    assert version.uri == folder
    assert version.save_type == ArtifactSaveType.PREEXISTING
    loaded = version.load()
    assert isinstance(loaded, Path) and (loaded / "test.txt").read_text() == "test"


def test_register_a_folder_outside_every_store_is_refused():
    outside = tempfile.mkdtemp()
    try:
        with pytest.raises(FileNotFoundError):
            register_artifact(folder_or_file_uri=outside, name="outside")
    finally:
        os.rmdir(outside)


@step(enable_cache=False)
def make_and_register() -> None:
    folder = os.path.join(Client().active_stack.artifact_store.path, "step_folder")
    os.makedirs(folder, exist_ok=True)
    Path(folder, "test.txt").write_text("test")
    register_artifact(folder_or_file_uri=folder, name="step_folder")
    register_artifact(folder_or_file_uri=os.path.join(folder, "test.txt"), name="step_file")


@step(enable_cache=False)
def use_registered(folder: Path) -> None:
    store = Client().active_stack.artifact_store.path
    if (folder / "test.txt").read_text() != "test":
        raise AssertionError("folder content")
    if str(folder.absolute()).startswith(store):
        raise AssertionError(f"{folder} is the store's folder, not a private copy")
    if Path(Client().get_artifact_version("step_file").load()).read_text() != "test":
        raise AssertionError("file content")


def test_a_registered_folder_reaches_a_later_step_as_a_private_copy():
    @pipeline(enable_cache=False)
    def registered():
        make_and_register()
        use_registered(Client().get_artifact_version("step_folder", version=1), after=["make_and_register"])

    registered()
    assert registered.model.last_run.status == "completed"
