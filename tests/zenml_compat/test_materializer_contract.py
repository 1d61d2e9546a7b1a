"""The materializer contract a ZenML user relies on, through artifactfs's
public materializer API: picked by type from ``registry``, made with only a
URI inside the active store, ``save`` writes files there, the full metadata
is ZenML's keys with ZenML's metadata types, visualizations are existing
files with a ``VisualizationType``, and ``load`` gives the value back as the
type asked for. Also the base class's interface checks, the registry's
selection rules and the cloudpickle fallback. artifactfs's own tests; the
byte-level file layout of every materializer on every store flavor is in
tests/test_materializers.py.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import sys
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pydantic
import pytest

from artifactfs import ArtifactType, Client, fileio, step
from artifactfs.enums import DType, MetadataTypeTuple, VisualizationType
from artifactfs.materializers import (
    BaseMaterializer,
    BuiltInMaterializer,
    BytesMaterializer,
    CloudpickleMaterializer,
    ContainerMaterializer,
    DataclassMaterializer,
    MaterializerInterfaceError,
    NumpyMaterializer,
    PandasMaterializer,
    PathMaterializer,
    PydanticMaterializer,
    UUIDMaterializer,
    registry,
)
from artifactfs.materializers.cloudpickle_fallback import PICKLE_FILE


@dataclasses.dataclass
class Outcome:
    """What one save/load cycle showed."""

    loaded: Any
    metadata: dict
    visualizations: dict
    files: list[str]


def cycle(value: Any, as_type: type | None = None, materializer: type | None = None,
          check: Callable[[str], None] | None = None) -> Outcome:
    """Save ``value`` into a fresh folder of the active store with the
    materializer the registry picks for ``as_type`` (or the one given), load it
    back as ``as_type``, and check the contract on the way."""
    as_type = as_type or type(value)
    cls = materializer or registry[as_type]
    root = Client().active_stack.artifact_store.path
    folder = os.path.join(root, f"cycle-{uuid.uuid4().hex[:8]}")
    os.makedirs(folder)
    m = cls(uri=folder)
    m.save(value)
    files = sorted(os.listdir(folder))
    assert files, f"{cls.__name__}.save wrote nothing"
    visualizations = m.save_visualizations(value)
    for where, kind in visualizations.items():
        assert isinstance(where, str) and "\\" not in where and os.path.exists(where)
        assert isinstance(kind, VisualizationType)
    metadata = m.extract_full_metadata(value)
    for key, item in metadata.items():
        assert isinstance(key, str) and isinstance(item, MetadataTypeTuple), (key, item)
    if check:
        check(folder)
    loaded = m.load(as_type)
    assert isinstance(loaded, as_type)
    return Outcome(loaded, metadata, visualizations, files)


# -- built-in types -------------------------------------------------------------


@pytest.mark.parametrize("value", [True, 0.0, 0, -7, 2.5])
def test_numbers_and_bools_carry_their_string_form_and_size(value):
    out = cycle(value)
    assert out.loaded == value and type(out.loaded) is type(value)
    assert set(out.metadata) == {"string_representation", "storage_size"}
    assert out.metadata["string_representation"] == str(value)


def test_a_string_carries_only_its_storage_size():
    out = cycle("")
    assert out.loaded == ""
    assert set(out.metadata) == {"storage_size"}


def test_bytes_go_through_the_bytes_materializer():
    assert registry[bytes] is BytesMaterializer
    out = cycle(b"")
    assert out.loaded == b"" and set(out.metadata) == {"storage_size"}


@pytest.mark.parametrize("value", [{}, [], (), {"a": 0, "b": 1}, [0, 1, 2], (0, 1, 2), [1, "a", None],
                                   (1, "a", None), {"key": None}])
def test_plain_containers_are_one_file_with_length_and_size(value):
    out = cycle(value, check=lambda folder: None)
    assert out.loaded == value and type(out.loaded) is type(value)
    assert len(out.files) == 1
    assert set(out.metadata) == {"length", "storage_size"} and out.metadata["length"] == len(value)


@pytest.mark.parametrize("value", [[b"0", b"1"], {"a": b"0", "b": b"1"}, (b"0", b"1"), set(), {1, 2, 3},
                                   {b"0", b"1"}])
def test_containers_of_bytes_and_sets_come_back_equal(value):
    out = cycle(value)
    assert out.loaded == value and type(out.loaded) is type(value)
    assert set(out.metadata) == {"length", "storage_size"}


def test_a_mixture_of_builtin_types_comes_back_equal():
    value = [{"a": (42, 1.0, "aa", True), "b": {"ba": ["x", "y"], "bb": [3.7]}, "c": b"ca"}, {1.0, 2.0, 4}]
    out = cycle(value, as_type=list)
    assert out.loaded == value
    assert type(out.loaded[0]["a"]) is tuple and type(out.loaded[1]) is set


def test_a_uuid_round_trips():
    assert registry[uuid.UUID] is UUIDMaterializer
    value = uuid.uuid4()
    out = cycle(value)
    assert out.loaded == value and len(out.metadata) == 2


class Cat:
    """A user type with its own materializer, kept inside a list."""

    name = "aria"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cat) and other.name == self.name


class Kitten(Cat):
    name = "axl"


class CatMaterializer(BaseMaterializer):
    """Writes a marker file and makes a fresh instance of the asked type."""

    ASSOCIATED_TYPES = (Cat,)

    def save(self, data: Cat) -> None:
        with fileio.open(os.path.join(self.uri, "cat.txt"), "w") as f:
            f.write(data.name)

    def load(self, data_type: type) -> Cat:
        return data_type()


def test_a_container_remembers_each_elements_materializer_and_type(monkeypatch):
    value = [Cat(), Kitten()]
    root = Client().active_stack.artifact_store.path
    folder = os.path.join(root, "cats")
    os.makedirs(folder)
    ContainerMaterializer(uri=folder).save(value)
    # Loading must not need the registry: the container recorded both.
    monkeypatch.setattr(registry, "materializer_types", {}, raising=True)
    loaded = ContainerMaterializer(uri=folder).load(list)
    assert [type(x) for x in loaded] == [Cat, Kitten]
    assert [x.name for x in loaded] == ["aria", "axl"] and loaded == value


# -- structured, numeric and path materializers ----------------------------------


@dataclasses.dataclass
class Address:
    street: str
    zip_code: int


@dataclasses.dataclass
class Person:
    name: str
    address: Address
    tags: tuple[str, str]
    scores: dict[str, int]
    nickname: str | None = None


@dataclasses.dataclass
class WithCallback:
    callback: Callable[[int], int]


def test_a_nested_dataclass_round_trips_with_schema_and_a_json_view():
    person = Person("zenml", Address("Main Street", 12345), ("core", "json"), {"quality": 10})
    out = cycle(person, materializer=DataclassMaterializer)
    assert out.loaded == person and type(out.loaded.address) is Address and type(out.loaded.tags) is tuple
    assert len(out.metadata) == 2 and "schema" in out.metadata
    assert list(out.visualizations.values()) == [VisualizationType.JSON]


def test_the_dataclass_materializer_refuses_what_is_no_json_dataclass():
    with pytest.raises(TypeError):
        DataclassMaterializer(uri="").validate_save_type_compatibility(dict)
    assert DataclassMaterializer.can_save_type(Person) is True
    assert DataclassMaterializer.can_save_type(WithCallback) is False


class Settings(pydantic.BaseModel):
    a: int = 1
    b: int = 2


def test_a_pydantic_model_round_trips():
    assert registry[Settings] is PydanticMaterializer
    out = cycle(Settings(a=2, b=3))
    assert (out.loaded.a, out.loaded.b) == (2, 3) and "schema" in out.metadata


def test_a_numeric_array_has_shape_dtype_and_statistics():
    arr = np.array([1, 2, 3])
    out = cycle(arr, materializer=NumpyMaterializer)
    assert np.array_equal(out.loaded, arr)
    md = out.metadata
    assert md["shape"] == (3,) and md["dtype"] == DType(arr.dtype.type)
    assert md["mean"] == 2.0 and md["min"] == 1 and md["max"] == 3
    assert md["std"] == pytest.approx(0.816496580927726, rel=1e-12)


def test_a_text_array_has_word_counts():
    arr = np.array(["Hello", "world", "hello", "zenml", "world", 0.35, 1])
    out = cycle(arr, materializer=NumpyMaterializer)
    assert np.array_equal(out.loaded, arr)
    md = out.metadata
    assert md["shape"] == (7,) and md["dtype"] == DType(arr.dtype.type)
    assert (md["unique_words"], md["total_words"]) == (6, 7)
    assert (md["most_common_word"], md["most_common_count"]) == ("world", 2)


@pytest.mark.parametrize("value", [pd.DataFrame([0, 1, 2, 3], columns=["c"]), pd.Series([0, 1, 2, 3])],
                         ids=["frame", "series"])
def test_frames_and_series_round_trip_with_views(value):
    out = cycle(value, materializer=PandasMaterializer)
    assert value.equals(out.loaded)
    assert out.visualizations and all(v is VisualizationType.CSV for v in out.visualizations.values())


def test_a_folder_path_round_trips_its_tree(tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "one.txt").write_text("first")
    (tree / "sub" / "two.py").write_text("print('second')")
    out = cycle(tree, as_type=Path, materializer=PathMaterializer)
    assert set(out.metadata) == {"storage_size"}
    assert (out.loaded / "one.txt").read_text() == "first"
    assert (out.loaded / "sub" / "two.py").read_text() == "print('second')"


@pytest.mark.parametrize("content", [b"plain text", b"\x00\x01\x02\xff\xfe"], ids=["text", "binary"])
def test_a_file_path_round_trips_as_a_file(tmp_path, content):
    f = tmp_path / "single.bin"
    f.write_bytes(content)
    out = cycle(f, as_type=Path, materializer=PathMaterializer)
    assert out.loaded.is_file() and out.loaded.read_bytes() == content
    assert set(out.metadata) == {"storage_size"}


# -- the cloudpickle fallback ----------------------------------------------------


class NoMaterializer:
    cat = "aria"


def test_a_type_without_materializer_falls_back_to_cloudpickle():
    assert registry[NoMaterializer] is CloudpickleMaterializer
    assert CloudpickleMaterializer not in registry.materializer_types.values()
    out = cycle(NoMaterializer())
    assert out.loaded.cat == "aria" and set(out.metadata) == {"storage_size"}


def test_cloudpickle_records_and_reads_the_python_version(tmp_path):
    m = CloudpickleMaterializer(uri=str(tmp_path))
    m._save_python_version()
    assert m._load_python_version() == ".".join(map(str, sys.version_info[:3]))


def test_cloudpickle_loads_a_plain_pickle(tmp_path):
    with open(tmp_path / PICKLE_FILE, "wb") as f:
        pickle.dump(NoMaterializer(), f)
    assert CloudpickleMaterializer(uri=str(tmp_path)).load(NoMaterializer).cat == "aria"


# -- the base class --------------------------------------------------------------


def test_associated_types_must_be_classes_and_the_artifact_type_an_artifact_type():
    class Fine(BaseMaterializer):
        ASSOCIATED_TYPES = (int,)
        ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    assert Fine.ASSOCIATED_TYPES == (int,)
    with pytest.raises(MaterializerInterfaceError):
        class NotAClass(BaseMaterializer):
            ASSOCIATED_TYPES = ("int",)
    with pytest.raises(MaterializerInterfaceError):
        class BadArtifactType(BaseMaterializer):
            ASSOCIATED_TYPES = (int,)
            ASSOCIATED_ARTIFACT_TYPE = "data"


class Animal:
    pass


class Dog(Animal):
    pass


class AnimalMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (Animal,)
    SKIP_REGISTRATION = True


class DogMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (Dog,)
    SKIP_REGISTRATION = True


def test_a_materializer_saves_its_types_and_their_subclasses_only():
    AnimalMaterializer(uri="").validate_save_type_compatibility(Animal)
    AnimalMaterializer(uri="").validate_save_type_compatibility(Dog)
    DogMaterializer(uri="").validate_save_type_compatibility(Dog)
    with pytest.raises(TypeError):
        DogMaterializer(uri="").validate_save_type_compatibility(Animal)
    assert DogMaterializer.can_save_type(Animal) is False


def test_loading_accepts_a_base_class_of_the_saved_type():
    # ZenML 0.98's can_load_type: the asked type may be a base of an associated
    # type (a Dog can be loaded where an Animal is asked for).
    DogMaterializer(uri="").validate_load_type_compatibility(Animal)
    DogMaterializer(uri="").validate_load_type_compatibility(Dog)
    AnimalMaterializer(uri="").validate_load_type_compatibility(Animal)
    with pytest.raises(TypeError):
        DogMaterializer(uri="").validate_load_type_compatibility(str)


def test_the_base_save_and_load_do_nothing(tmp_path):
    class Passing(BaseMaterializer):
        ASSOCIATED_TYPES = (Animal,)
        SKIP_REGISTRATION = True

        def save(self, data):
            super().save(data)

    Passing(uri=str(tmp_path)).save(Animal())
    assert os.listdir(tmp_path) == []


# -- the registry's selection -------------------------------------------------------


class First:
    pass


class Second:
    pass


class FirstMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (First,)


class SecondMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (Second,)


class Both(First, Second):
    pass


class Unrelated:
    pass


class Number(float, Unrelated):
    pass


class MyFloat(float):
    pass


def test_a_subclass_of_a_registered_type_gets_its_materializer():
    assert registry[MyFloat] is BuiltInMaterializer
    assert registry[Number] is BuiltInMaterializer  # only one base is registered


def test_the_first_registered_class_in_the_mro_wins():
    assert registry[Both] is FirstMaterializer
    assert registry[type("Reversed", (Second, First), {})] is SecondMaterializer


def test_steps_output_subclasses_and_conflicting_types():
    @step
    def floats() -> MyFloat:
        return MyFloat(3.0)

    @step
    def numbers() -> Number:
        return Number(2.0)

    @step
    def both() -> Both:
        return Both()

    assert floats() == 3.0
    assert numbers() == 2.0
    both.configure(output_materializers=FirstMaterializer)()
    latest = Client().list_pipeline_runs()[0]
    assert latest.steps["both"].output.materializer.endswith("FirstMaterializer")


def test_an_output_of_a_function_local_class_comes_back_as_its_materializers_type():
    class LocalFloat(float):  # never importable again: artifactfs loads it as a float
        pass

    def local() -> LocalFloat:
        return LocalFloat(1.5)

    local.__annotations__ = {"return": LocalFloat}  # this module's annotations are strings
    result = step(local)()
    assert result == 1.5 and type(result) is float
