"""Built-in materializers: every one round-trips on every store flavor (real
servers), writes files where third-party tools expect them, only inside its
version folder, and is recorded exactly in the manifest."""

from __future__ import annotations

import blake3
import collections
import dataclasses
import enum
import io
from fractions import Fraction
import json
import math
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from artifactfs.materializers import (
    BaseMaterializer,
    BuiltInMaterializer,
    BytesMaterializer,
    CloudpickleMaterializer,
    ContainerMaterializer,
    DataclassMaterializer,
    MaterializerError,
    NumpyMaterializer,
    PandasMaterializer,
    PathMaterializer,
    PydanticMaterializer,
    PythonVersionWarning,
    import_by_name,
    materializer_for_value,
    qualified_name,
    register_materializer,
    registry,
)
from artifactfs.materializers.numpy import _read_array
from artifactfs.stores.manifest import HashingReader, RecordingStore

pytest_plugins = ["store_fixtures"]

FOLDER = "art/v1"
VIZ = "art/v1.viz"


# -- values -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Line:
    start: Point
    end: Point
    tags: tuple[str, ...] = ()
    waypoints: list[Point] = dataclasses.field(default_factory=list)
    label: str | None = None


class Color(enum.IntEnum):
    RED = 1


Pair = collections.namedtuple("Pair", "array label")


class Outer:
    class Inner:
        pass


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": [1, 2, 3],
            "f": [0.5, math.nan, 2.5],
            "s": ["a", "b", None],
            "c": pd.Categorical(["x", "y", "x"]),
            "t": pd.date_range("2024-01-01", periods=3, tz="UTC"),
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )


def _pydantic_value():
    import pydantic

    class Inner(pydantic.BaseModel):
        v: list[float]

    class Outer(pydantic.BaseModel):
        name: str
        inner: Inner

    return Outer(name="o", inner=Inner(v=[1.0, 2.5]))


# (id, value factory, materializer picked, payload files)
CASES = [
    ("bool", lambda: True, BuiltInMaterializer, ["data.json"]),
    ("bigint", lambda: 2**70, BuiltInMaterializer, ["data.json"]),
    ("float", lambda: 0.1, BuiltInMaterializer, ["data.json"]),
    ("nonfinite", lambda: [math.nan, math.inf, -math.inf, -0.0], BuiltInMaterializer, ["data.json"]),
    ("str", lambda: "héllo ✓\n", BuiltInMaterializer, ["data.json"]),
    ("none", lambda: None, BuiltInMaterializer, ["data.json"]),
    ("dict", lambda: {"a": [1, 2.5, None], "b": {"c": True}}, BuiltInMaterializer, ["data.json"]),
    ("tuple-set", lambda: ((1, "x"), {3, 1, 2}, frozenset({"a"}), [()]), BuiltInMaterializer, ["data.json"]),
    ("tag-lookalike", lambda: {"__artifactfs__": "tuple", "items": [1]}, BuiltInMaterializer, ["data.json"]),
    ("ordereddict", lambda: collections.OrderedDict(b=1, a=2), BuiltInMaterializer, ["data.json"]),
    ("intenum", lambda: Color.RED, BuiltInMaterializer, ["data.json"]),
    ("bytes", lambda: bytes(range(256)), BytesMaterializer, ["data.bin"]),
    (
        "list-of-arrays",
        lambda: [np.arange(3), np.ones((2, 2), dtype=np.float32)],
        ContainerMaterializer,
        ["0/array.npy", "1/array.npy", "container.json"],
    ),
    (
        "dict-of-frames",
        lambda: {"train": _frame(), "a/b": _frame().head(1), "Train": pd.Series([1.5], name="s")},
        ContainerMaterializer,
        ["@2/data.parquet", "a%2Fb/data.parquet", "container.json", "train/data.parquet"],
    ),
    (
        "non-str-keys",
        lambda: {1: "a", (2, 3): [1.5], "x": None},
        ContainerMaterializer,
        ["@0/data.json", "@1/data.json", "container.json", "x/data.json"],
    ),
    (
        "nested",
        lambda: {"arrays": (np.arange(2), "s"), "n": None, ".hidden": b"\x00"},
        ContainerMaterializer,
        [
            "%2Ehidden/data.bin",
            "arrays/0/array.npy",
            "arrays/1/data.json",
            "arrays/container.json",
            "container.json",
            "n/data.json",
        ],
    ),
    ("set-of-dataclasses", lambda: {Point(1, 2), Point(3, 4)}, ContainerMaterializer,
     ["0/data.json", "1/data.json", "container.json"]),
    ("namedtuple-of-array", lambda: Pair(np.arange(2), "x"), ContainerMaterializer,
     ["0/array.npy", "1/data.json", "container.json"]),
    ("np-int2d", lambda: np.arange(12, dtype=np.int64).reshape(3, 4), NumpyMaterializer, ["array.npy"]),
    ("np-fortran", lambda: np.asfortranarray(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)),
     NumpyMaterializer, ["array.npy"]),
    ("np-bool", lambda: np.array([True, False]), NumpyMaterializer, ["array.npy"]),
    ("np-str", lambda: np.array(["a", "héllo"]), NumpyMaterializer, ["array.npy"]),
    ("np-struct", lambda: np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]), NumpyMaterializer, ["array.npy"]),
    ("np-0d", lambda: np.array(3.5), NumpyMaterializer, ["array.npy"]),
    ("np-empty", lambda: np.zeros((0, 3)), NumpyMaterializer, ["array.npy"]),
    ("np-scalars", lambda: [np.float32(1.5), np.int64(-7), np.bool_(True)], ContainerMaterializer,
     ["0/array.npy", "1/array.npy", "2/array.npy", "container.json"]),
    ("np-nan", lambda: np.array([math.nan, 1.0]), NumpyMaterializer, ["array.npy"]),
    ("dataframe", _frame, PandasMaterializer, ["data.parquet"]),
    ("multiindex", lambda: pd.DataFrame({"v": [1.0, 2.0]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)])),
     PandasMaterializer, ["data.parquet"]),
    ("series-named", lambda: pd.Series([1, 2, 3], name="count", index=[10, 20, 30]), PandasMaterializer,
     ["data.parquet"]),
    ("series-unnamed", lambda: pd.Series([0.5, math.nan]), PandasMaterializer, ["data.parquet"]),
    ("series-int-name", lambda: pd.Series(["a"], name=7), PandasMaterializer, ["data.parquet"]),
    ("dataclass", lambda: Line(Point(0, 1), Point(2, math.inf), ("a",), [Point(1, 1)]), DataclassMaterializer,
     ["data.json"]),
    ("pydantic", _pydantic_value, PydanticMaterializer, ["data.json"]),
    ("defaultdict", lambda: collections.defaultdict(list, {"a": [1]}), CloudpickleMaterializer,
     ["artifact.pkl", "python_version.json"]),
    ("complex", lambda: 1 + 2j, CloudpickleMaterializer, ["artifact.pkl", "python_version.json"]),
]


# -- helpers ------------------------------------------------------------------


def save(store, value, cls=None, folder=FOLDER, viz=VIZ):
    """Save as the API does; return (materializer, manifest)."""
    cls = cls or materializer_for_value(value)
    recording = RecordingStore(store, folder)
    materializer = cls(store.uri(folder), recording, visualization_uri=store.uri(viz) if viz else None)
    materializer.save(value)
    return materializer, recording.finish()


def load(store, cls, data_type, folder=FOLDER):
    return cls(store.uri(folder), store).load(data_type)


def assert_manifest(store, manifest, folder=FOLDER):
    """The manifest lists exactly the payload files, with true sizes and hashes."""
    files = store.find(folder)
    assert sorted(e.path for e in manifest) == files
    for entry in manifest:
        data = store.read_bytes(f"{folder}/{entry.path}")
        assert entry.size == len(data), entry.path
        assert entry.digest == blake3.blake3(data).hexdigest(), entry.path


def assert_same(a, b):
    """Equal values of the same types, NaN equal to NaN."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        assert a.flags.f_contiguous == b.flags.f_contiguous
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b)
    elif isinstance(a, np.generic):
        assert a == b
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


def check_third_party(store, cls, value):
    """Payload files read by the tool a user would reach for."""
    raw = lambda name: store.read_bytes(f"{FOLDER}/{name}")  # noqa: E731
    if cls in (BuiltInMaterializer, DataclassMaterializer, PydanticMaterializer):
        parsed = json.loads(raw("data.json"), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
        if cls is PydanticMaterializer:
            assert parsed == value.model_dump()
        elif cls is DataclassMaterializer:
            assert parsed["start"] == {"x": 0, "y": 1} and parsed["waypoints"] == [{"x": 1, "y": 1}]
        elif type(value) in (dict, list, str, int, bool, type(None)) and "__artifactfs__" not in json.dumps(parsed):
            assert parsed == value  # plain JSON, as any tool reads it
    elif cls is BytesMaterializer:
        assert raw("data.bin") == value
    elif cls is NumpyMaterializer:
        assert_same(value, np.load(io.BytesIO(raw("array.npy")), allow_pickle=False))
    elif cls is PandasMaterializer:
        table = pq.read_table(io.BytesIO(raw("data.parquet")))
        assert table.num_rows == len(value)
    elif cls is ContainerMaterializer:
        manifest = json.loads(raw("container.json"))
        assert manifest["type"] == qualified_name(type(value)) and len(manifest["elements"]) == len(value)
        assert manifest["kind"] in ("dict", "list", "tuple", "set", "frozenset")
    elif cls is CloudpickleMaterializer:
        assert_same(value, pickle.loads(raw("artifact.pkl")))  # plain pickle reads it
        assert json.loads(raw("python_version.json"))["python"].count(".") == 1


@pytest.fixture
def clean_registry():
    """Let a test register materializers without leaking them."""
    saved, default = dict(registry.materializer_types), registry.default
    yield registry
    registry.materializer_types.clear()
    registry.materializer_types.update(saved)
    registry.default = default


# -- round trips on every flavor ----------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_roundtrip(flavor_store, case):
    _, make, expected_cls, expected_files = case
    store, value = flavor_store, make()
    cls = materializer_for_value(value)
    assert cls is expected_cls

    materializer, manifest = save(store, value)
    assert store.find("") == sorted(f"{FOLDER}/{p}" for p in expected_files)  # nothing outside the folder
    assert_manifest(store, manifest)
    check_third_party(store, cls, value)
    json.dumps(materializer.extract_metadata(value), allow_nan=False)  # metadata is strict JSON

    loaded = load(store, cls, type(value))
    if cls is PydanticMaterializer:
        assert loaded == value and type(loaded) is type(value)
    else:
        assert_same(value, loaded)


def test_dataframe_visualization_outside_payload(flavor_store):
    store, frame = flavor_store, pd.DataFrame({"a": range(150), "b": [0.5] * 150})
    materializer, _ = save(store, frame)
    visualizations = materializer.save_visualizations(frame)
    manifest = RecordingStore(store, FOLDER).finish()

    # ZenML's two CSVs (statistics and the first rows), beside the payload, never in it.
    assert list(visualizations.values()) == ["csv", "csv"]
    describe, sample = visualizations
    assert store.relpath(describe) == f"{VIZ}/describe.csv" and store.relpath(sample) == f"{VIZ}/sample.csv"
    assert [e.path for e in manifest] == ["data.parquet"]
    stats = pd.read_csv(io.BytesIO(store.read_bytes(describe)), index_col=0)
    assert stats.loc["count", "a"] == 150 and list(stats.columns) == ["a", "b"]
    preview = pd.read_csv(io.BytesIO(store.read_bytes(sample)), index_col=0)
    assert len(preview) == 10 and list(preview.columns) == ["a", "b"]
    assert store.find(FOLDER) == ["data.parquet"]


def test_visualization_beside_payload_without_uri(flavor_store):
    """A materializer made with only its URI (ZenML's way) writes its
    visualizations beside the payload folder, never inside it."""
    materializer, _ = save(flavor_store, pd.DataFrame({"a": [1]}), viz=None)
    assert len(materializer.save_visualizations(pd.DataFrame({"a": [1]}))) == 2
    assert flavor_store.find(FOLDER) == ["data.parquet"]
    assert flavor_store.find(f"{FOLDER}.viz") == ["describe.csv", "sample.csv"]


def test_object_array_refused(flavor_store):
    with pytest.raises(MaterializerError, match="cloudpickle"):
        save(flavor_store, np.array([{"a": 1}, None], dtype=object), cls=NumpyMaterializer)
    assert flavor_store.find("") == []
    assert materializer_for_value(np.array([1, None], dtype=object)) is NumpyMaterializer


NPY_ARRAYS = [
    ("c-order", lambda: np.arange(12.0).reshape(3, 4)),
    ("fortran", lambda: np.asfortranarray(np.arange(12.0).reshape(3, 4))),
    ("0-d", lambda: np.array(5)),
    ("empty", lambda: np.zeros((0, 3))),
    ("text", lambda: np.array(["a", "bc"])),
    ("big-endian", lambda: np.arange(4).astype(">i4")),
    ("dates", lambda: np.arange(3).astype("datetime64[D]")),
    ("strided", lambda: np.arange(20)[::2]),  # not contiguous: np.save's own path
    ("structured", lambda: np.zeros(3, dtype=[("x", "i4"), ("y", "f8")])),
    ("large", lambda: np.random.default_rng(1).random(3_000_000)),  # 24 MB: hashed in slices beside the write
]


@pytest.mark.parametrize("make", [m for _, m in NPY_ARRAYS], ids=[n for n, _ in NPY_ARRAYS])
def test_npy_bytes_are_numpys_and_load_from_any_reader(flavor_store, make):
    array = make()
    _, manifest = save(flavor_store, array, cls=NumpyMaterializer)
    expected = io.BytesIO()
    np.save(expected, array, allow_pickle=False)
    assert flavor_store.read_bytes(f"{FOLDER}/array.npy") == expected.getvalue()
    assert_manifest(flavor_store, manifest)
    loaded = load(flavor_store, NumpyMaterializer, np.ndarray)  # remote flavors: not a plain file
    assert loaded.dtype == array.dtype and np.array_equal(loaded, array)
    with flavor_store.open(f"{FOLDER}/array.npy", "rb") as plain:
        reader = HashingReader(plain)
        assert np.array_equal(_read_array(reader), array)  # the verifying reader's path
        assert reader.finish() == (manifest[0].size, manifest[0].digest)


def _make_tree(root: pathlib.Path) -> dict[str, bytes]:
    files = {
        "config.json": b'{"layers": 2}',
        "weights/layer0.bin": os.urandom(3000),
        "weights/deep/er/layer1.bin": os.urandom(10),
        "empty.txt": b"",
        "name with space & ü.txt": b"x",
    }
    for relative, data in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return files


def _read_tree(root: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_path_folder_roundtrip(flavor_store, tmp_path):
    store, source = flavor_store, tmp_path / "ckpt"
    files = _make_tree(source)
    (source / "alias.json").symlink_to("config.json")  # a link inside the folder: stored as the file
    files["alias.json"] = files["config.json"]

    materializer, manifest = save(store, source)
    assert materializer_for_value(source) is PathMaterializer
    assert store.find(FOLDER) == sorted(files)  # the tree itself, no archive, nothing added
    assert_manifest(store, manifest)
    assert materializer.extract_metadata(source) == {}  # ZenML records only the size; the layout tells the kind

    loaded = load(store, PathMaterializer, type(source))
    assert isinstance(loaded, pathlib.Path) and loaded.is_dir()
    assert _read_tree(loaded) == files
    # a private copy, never the payload itself: writing to it cannot change the artifact
    assert not loaded.is_relative_to(tmp_path) and oct(loaded.stat().st_mode & 0o777) == oct(0o700)
    shutil.rmtree(loaded)


def test_path_file_roundtrip(flavor_store, tmp_path):
    store, source = flavor_store, tmp_path / "model.pt"
    source.write_bytes(os.urandom(5000))
    materializer, manifest = save(store, source)
    assert store.find(FOLDER) == ["model.pt"]  # kept under its own name
    assert_manifest(store, manifest)
    assert materializer.extract_metadata(source) == {}  # ZenML records only the size
    loaded = load(store, PathMaterializer, type(source))
    assert loaded.name == "model.pt" and loaded.read_bytes() == source.read_bytes()
    if not flavor_store.is_local:
        shutil.rmtree(loaded.parent)


def test_path_empty_folder_loads_as_empty_folder(flavor_store, tmp_path):
    source = tmp_path / "empty"
    source.mkdir()
    _, manifest = save(flavor_store, source)
    assert manifest == []
    loaded = load(flavor_store, PathMaterializer, type(source))
    assert loaded.is_dir() and not any(loaded.iterdir())
    if not flavor_store.is_local:
        loaded.rmdir()

def test_path_symlink_escape_refused(flavor_store, tmp_path):
    source = tmp_path / "ckpt"
    _make_tree(source)
    (tmp_path / "secret").write_text("no")
    (source / "weights" / "leak").symlink_to(tmp_path / "secret")
    with pytest.raises(MaterializerError, match="outside the folder"):
        save(flavor_store, source)
    assert flavor_store.find("") == []  # refused before anything was written


def test_path_special_file_and_loop_refused(tmp_path):
    from artifactfs.stores import ArtifactStore, get_flavor

    store = ArtifactStore("t", get_flavor("local"), str(tmp_path / "store"))
    source = tmp_path / "src"
    source.mkdir()
    (source / "sub").mkdir()
    (source / "sub" / "up").symlink_to(source)
    with pytest.raises(MaterializerError, match="loop"):
        save(store, source)
    (source / "sub" / "up").unlink()
    os.mkfifo(source / "pipe")
    with pytest.raises(MaterializerError, match="special file"):
        save(store, source)
    (source / "pipe").unlink()
    (source / "dangling").symlink_to(source / "gone")
    with pytest.raises(MaterializerError, match="points to nothing"):
        save(store, source)
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*"))


def test_cloudpickle_warns_on_python_mismatch(flavor_store):
    store = flavor_store
    save(store, collections.defaultdict(int), cls=CloudpickleMaterializer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(store, CloudpickleMaterializer, object)  # same Python: no warning

    version_file = f"{FOLDER}/python_version.json"
    recorded = json.loads(store.read_bytes(version_file))
    with store.open(version_file, "w") as f:
        f.write(json.dumps({**recorded, "python": "2.7"}))
    with pytest.warns(PythonVersionWarning, match=r"Python 2\.7"):
        loaded = load(store, CloudpickleMaterializer, object)
    assert loaded.default_factory is int


def test_container_element_type_missing_names_module(flavor_store):
    store = flavor_store
    save(store, [np.arange(2)])
    path = f"{FOLDER}/container.json"
    manifest = json.loads(store.read_bytes(path))
    manifest["elements"][0]["materializer"] = "artifactfs_plugin_gone.mats.ArrayMat"
    with store.open(path, "w") as f:
        f.write(json.dumps(manifest))
    with pytest.raises(MaterializerError, match="artifactfs_plugin_gone"):
        load(store, ContainerMaterializer, list)


# -- lookup and registration (no store needed) ---------------------------------


def test_import_by_name_missing_module():
    with pytest.raises(MaterializerError, match="'no_such_module_xyz'") as info:
        import_by_name("no_such_module_xyz.sub.Thing", "artifact 'a' version 3")
    assert "artifact 'a' version 3" in str(info.value)
    with pytest.raises(MaterializerError, match="has no 'Nope'"):
        import_by_name("numpy.Nope", "test")


@pytest.mark.parametrize(
    "data_type", [type(None), type(lambda: 0), int, np.ndarray, pd.DataFrame, Point, Outer.Inner]
)
def test_qualified_name_imports_back(data_type):
    assert import_by_name(qualified_name(data_type), "test") is data_type


def test_materializer_for_value_choices():
    cyclic: list = []
    cyclic.append(cyclic)

    @dataclasses.dataclass
    class Holder:
        array: np.ndarray

    assert materializer_for_value({"a": 1}) is BuiltInMaterializer
    assert materializer_for_value([1, (2, {3})]) is BuiltInMaterializer
    assert materializer_for_value({"a": np.arange(1)}) is ContainerMaterializer
    assert materializer_for_value([Color.RED]) is ContainerMaterializer  # nested enum keeps its type
    assert materializer_for_value({1: 2}) is ContainerMaterializer
    assert materializer_for_value({object(): 1}) is CloudpickleMaterializer
    assert materializer_for_value(cyclic) is CloudpickleMaterializer
    assert materializer_for_value(Holder(np.arange(1))) is CloudpickleMaterializer
    assert materializer_for_value(Point(1, 2)) is DataclassMaterializer
    assert materializer_for_value(collections.defaultdict(int)) is CloudpickleMaterializer
    assert materializer_for_value(np.float64(1.0)) is NumpyMaterializer  # not float's JSON one
    assert materializer_for_value(pd.Series([1])) is PandasMaterializer
    assert registry.lookup(dict) is BuiltInMaterializer
    assert registry.lookup(pathlib.PosixPath) is PathMaterializer
    assert registry.default is CloudpickleMaterializer


def test_json_materializer_refuses_non_json(tmp_path):
    from artifactfs.stores import ArtifactStore, get_flavor

    store = ArtifactStore("t", get_flavor("local"), str(tmp_path))
    with pytest.raises(MaterializerError, match="materializer_for_value"):
        save(store, Fraction(1, 3), cls=BuiltInMaterializer)
    # A container of non-JSON values is stored element-wise, as ZenML's built-in does.
    save(store, {"a": np.arange(2)}, cls=BuiltInMaterializer)
    loaded = load(store, BuiltInMaterializer, dict)
    assert list(loaded) == ["a"] and loaded["a"].tolist() == [0, 1]


class Thing:
    def __init__(self, value: str) -> None:
        self.value = value


class SubThing(Thing):
    pass


class Gadget:
    pass


def test_user_materializers_found_by_lookup(clean_registry, tmp_path):
    from artifactfs.stores import ArtifactStore, get_flavor

    class ThingMaterializer(BaseMaterializer):
        ASSOCIATED_TYPES = (Thing,)

        def save(self, data: Thing) -> None:
            with self.artifact_store.open(self.path("thing.txt"), "w") as f:
                f.write(data.value)

        def load(self, data_type: type) -> Thing:
            with self.artifact_store.open(self.path("thing.txt"), "r") as f:
                return data_type(f.read())

    @register_materializer(Gadget, collections.OrderedDict)
    class GadgetMaterializer(BaseMaterializer):
        pass

    class NotRegistered(BaseMaterializer):
        ASSOCIATED_TYPES = (Gadget,)
        SKIP_REGISTRATION = True

    assert registry.lookup(Thing) is ThingMaterializer
    assert registry.lookup(SubThing) is ThingMaterializer  # along the MRO
    assert materializer_for_value(SubThing("x")) is ThingMaterializer
    assert registry.lookup(Gadget) is GadgetMaterializer
    assert materializer_for_value(collections.OrderedDict(a=1)) is GadgetMaterializer  # beats built-in JSON
    assert registry.lookup(dict) is BuiltInMaterializer

    store = ArtifactStore("t", get_flavor("local"), str(tmp_path))
    _, manifest = save(store, SubThing("héllo"))
    assert [e.path for e in manifest] == ["thing.txt"]
    loaded = load(store, ThingMaterializer, SubThing)
    assert type(loaded) is SubThing and loaded.value == "héllo"



def test_pydantic_is_optional():
    code = (
        "import sys; sys.modules['pydantic'] = None\n"
        "import artifactfs.materializers as m\n"
        "assert m.PydanticMaterializer is None\n"
        "assert m.materializer_for_value({'a': 1}) is m.BuiltInMaterializer\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pandas_and_numpy_materializers_load_on_first_use():
    """Importing artifactfs (every CLI start) must not pay for pandas."""
    import subprocess
    import sys

    code = (
        "import sys, artifactfs\n"
        "assert 'pandas' not in sys.modules and 'numpy' not in sys.modules, 'imported eagerly'\n"
        "import pandas as pd\n"
        "from artifactfs.materializers import materializer_for_value\n"
        "print(materializer_for_value(pd.Series([1])).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PandasMaterializer"
