"""ZenML 0.98's artifact docs snippets, kept as tests: each snippet's text is
ZenML's, with only its ``zenml`` imports pointed at ``zenml_shim``.

Sources (zenml-io/zenml, docs at 0.98): docs/book/how-to/artifacts/artifacts.md,
materializers.md and visualizations.md. A snippet runs in the namespace of
the snippets before it on its page (the pages build on them); where a
snippet leaves a name "defined elsewhere" (``MyClass``), the test defines it
first, and where it expects an existing artifact or folder, the test makes
it first. Each test then checks what the page says the snippet does.

Snippets not kept, and why (the run/total count in docs/zenml.md excludes
them): placeholders such as ``"<PIPELINE_RUN_ID>"`` or ``"<ARTIFACT_NAME>"``
(artifacts.md "Accessing Artifacts After Pipeline Runs" and "Visualizing
Artifacts", visualizations.md "Notebook Visualizations"); packages that are
not dependencies (scikit-learn in artifacts.md "Materializers: How Data Gets
Stored", pytorch_lightning in "Register Framework Checkpoints", matplotlib in
visualizations.md's HTMLString and figure examples); names the page never
defines (``MyClass1Materializer`` in materializers.md "Multiple Outputs");
ZenML server features (curated visualizations); shell blocks.
"""

from __future__ import annotations

import itertools
import os
import sys
import textwrap
import types

import pytest

from artifactfs import Client, save_artifact
from artifactfs.materializers import registry


_numbers = itertools.count()


def run(*snippets: str, namespace: dict | None = None) -> dict:
    """Run snippets one after the other in one fresh module, as a reader's
    script would (classes they define must be importable by their module
    name when a later step loads an artifact of them)."""
    module = types.ModuleType(f"zenml_docs_snippet_{next(_numbers)}")
    sys.modules[module.__name__] = module
    module.__dict__.update(namespace or {})
    for snippet in snippets:
        code = compile(textwrap.dedent(snippet), f"<{module.__name__}>", "exec", dont_inherit=True)
        exec(code, module.__dict__)
    if namespace is not None:
        namespace.update(module.__dict__)
    return module.__dict__


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets write relative paths ("training_data")


# -- docs/book/how-to/artifacts/artifacts.md ------------------------------------------------

CREATE_DATA = '''
from zenml_shim import pipeline, step
import pandas as pd

@step
def create_data() -> pd.DataFrame:
    """Creates a dataframe that becomes an artifact."""
    return pd.DataFrame({
        "feature_1": [1, 2, 3],
        "feature_2": [4, 5, 6],
        "target": [10, 20, 30]
    })
'''

PROCESS_DATA = '''
@step
def process_data(df: pd.DataFrame) -> pd.DataFrame:
    """Takes an artifact as input and returns a new artifact."""
    df["feature_3"] = df["feature_1"] * df["feature_2"]
    return df

@pipeline
def simple_pipeline():
    """Pipeline that creates and processes artifacts."""
    data = create_data()  # Produces an artifact
    processed_data = process_data(data)  # Uses and produces artifacts
'''

ARTIFACTS_VS_PARAMETERS = '''
import pandas as pd
from zenml_shim import step, pipeline

@step
def train_model(data: pd.DataFrame, learning_rate: float) -> object:
    """Step with both artifact and parameter inputs."""
    # data is an artifact (output from another step)
    # learning_rate is a parameter (literal value)
    # Note: create_model would be your own model creation function
    model = create_model(learning_rate)
    model.fit(data)
    return model

@pipeline
def training_pipeline():
    # data is an artifact
    data = create_data()
    
    # data is passed as an artifact, learning_rate as a parameter
    model = train_model(data=data, learning_rate=0.01)
'''

TYPE_ANNOTATIONS = '''
from typing import Tuple
import numpy as np
import pandas as pd
from zenml_shim import step

@step
def preprocess_data(df: pd.DataFrame) -> np.ndarray:
    """Type annotation tells ZenML this returns a numpy array."""
    return df.values

@step
def split_data(data: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Type annotation tells ZenML this returns a tuple of numpy arrays."""
    split_point = len(data) // 2
    return data[:split_point], data[split_point:]
'''

MULTIPLE_OUTPUTS = '''
from typing import Tuple, Annotated
import numpy as np

@step
def split_data(
    data: np.ndarray, 
    target: np.ndarray
) -> Tuple[
    Annotated[np.ndarray, "X_train"],
    Annotated[np.ndarray, "X_test"],
    Annotated[np.ndarray, "y_train"],
    Annotated[np.ndarray, "y_test"]
]:
    """Split data into training and testing sets."""
    # Implement split logic
    X_train, X_test = data[:80], data[80:]
    y_train, y_test = target[:80], target[80:]
    
    return X_train, X_test, y_train, y_test
'''

NAMING = '''
from typing import Tuple
from typing import Annotated
import pandas as pd
from zenml_shim import step

@step
def split_dataset(
    df: pd.DataFrame
) -> Tuple[
    Annotated[pd.DataFrame, "train_data"],
    Annotated[pd.DataFrame, "test_data"]
]:
    """Split a dataframe into training and testing sets."""
    train = df.sample(frac=0.8, random_state=42)
    test = df.drop(train.index)
    return train, test
'''

DYNAMIC_NAMING = '''
from typing import Annotated
import pandas as pd
from zenml_shim import step, pipeline

@step
def extract_data(source: str) -> Annotated[pd.DataFrame, "{dataset_type}_data"]:
    """Extract data with a dynamically named output."""
    # Implementation...
    data = pd.DataFrame()  # Your data extraction logic here
    return data

@pipeline
def data_pipeline():
    # These will create artifacts named "train_data" and "test_data"
    train_df = extract_data.with_options(
        substitutions={"dataset_type": "train"}
    )(source="train_source")
    
    test_df = extract_data.with_options(
        substitutions={"dataset_type": "test"}
    )(source="test_source")
'''

CACHED_PIPELINE = '''
@pipeline
def cached_pipeline():
    # If create_data has been run before with the same code and inputs,
    # the cached artifact will be used
    data = create_data()
    
    # If process_data has been run before with the same code and inputs
    # (including the exact same data artifact), the cached output will be used
    processed_data = process_data(data)
'''

PREVIOUS_RUNS = '''
from zenml_shim import Client

# Get a specific artifact version
artifact = Client().get_artifact_version("my_model", "1.0")

# Get the latest version of an artifact
latest_artifact = Client().get_artifact_version("my_model")

# Load it into memory
model = latest_artifact.load()
'''

WITHIN_STEPS = '''
from zenml_shim import Client
from zenml_shim import step

@step
def evaluate_against_previous(model, X_test, y_test) -> float:
    """Compare current model with the previous best model."""
    client = Client()
    
    # Get the previous best model
    best_model = client.get_artifact_version("best_model")
    
    # Use it for comparison
    previous_accuracy = best_model.data.score(X_test, y_test)
    current_accuracy = model.score(X_test, y_test)
    
    return current_accuracy - previous_accuracy
'''

CROSS_PIPELINE = '''
from zenml_shim import Client
from zenml_shim import step, pipeline

@step
def use_trained_model(data: pd.DataFrame, model) -> pd.Series:
    """Use a model loaded from a previous pipeline run."""
    return pd.Series(model.predict(data))

@pipeline
def inference_pipeline():
    # Load data
    data = load_data()
    
    # Get the latest model from another pipeline
    model = Client().get_artifact_version("trained_model")
    
    # Use it for predictions
    predictions = use_trained_model(data=data, model=model)
'''

REGISTER_FOLDER = '''
from zenml_shim import Client
from zenml_shim import register_artifact
import os
from pathlib import Path

# Path to an existing folder in your artifact store
prefix = Client().active_stack.artifact_store.path
existing_folder = os.path.join(prefix, "my_folder")

# Register it as a ZenML artifact
register_artifact(
    folder_or_file_uri=existing_folder,
    name="my_folder_artifact"
)

# Later, load the artifact
folder_path = Client().get_artifact_version("my_folder_artifact").load()
assert isinstance(folder_path, Path)
assert os.path.isdir(folder_path)
'''

REGISTER_FILE = '''
from zenml_shim import Client
from zenml_shim import register_artifact
import os
from pathlib import Path

# Path to an existing file in your artifact store
prefix = Client().active_stack.artifact_store.path
existing_file = os.path.join(prefix, "my_folder/model.pkl")

# Register it as a ZenML artifact
register_artifact(
    folder_or_file_uri=existing_file,
    name="my_model_artifact"
)

# Later, load the artifact
file_path = Client().get_artifact_version("my_model_artifact").load()
assert isinstance(file_path, Path)
assert not os.path.isdir(file_path)
'''


def test_creating_artifacts():
    ns = run(CREATE_DATA)
    assert ns["create_data"]() is not None  # a step outside a pipeline runs as a one-step pipeline


def test_consuming_artifacts():
    ns = run(CREATE_DATA, PROCESS_DATA)
    run_ = ns["simple_pipeline"]()
    assert list(run_.steps["process_data"].output.load().columns)[-1] == "feature_3"


def test_artifacts_vs_parameters():
    ns = run(CREATE_DATA, ARTIFACTS_VS_PARAMETERS)
    assert ns["training_pipeline"].name == "training_pipeline"  # create_model is the reader's own


def test_type_annotations():
    ns = run(TYPE_ANNOTATIONS)
    assert [s.name for s in ns["split_data"].outputs] == ["output_0", "output_1"]


def test_returning_multiple_outputs():
    ns = run(MULTIPLE_OUTPUTS, namespace={"step": __import__("artifactfs").step})
    assert [s.name for s in ns["split_data"].outputs] == ["X_train", "X_test", "y_train", "y_test"]


def test_naming_artifacts():
    ns = run(NAMING)
    assert [s.name for s in ns["split_dataset"].outputs] == ["train_data", "test_data"]


def test_dynamic_naming():
    ns = run(DYNAMIC_NAMING)
    ns["data_pipeline"]()
    assert {"train_data", "test_data"} <= {a.name for a in Client().list_artifacts()}


def test_lineage_and_caching():
    ns = run(CREATE_DATA, PROCESS_DATA, CACHED_PIPELINE)
    ns["cached_pipeline"]()
    second = ns["cached_pipeline"]()
    assert all(s.is_cached for s in second.steps.values())


def test_accessing_artifacts_from_previous_runs():
    save_artifact({"weights": [1, 2]}, "my_model", version="1.0")
    ns = run(PREVIOUS_RUNS)
    assert ns["artifact"].version == "1.0" and ns["model"] == {"weights": [1, 2]}


def test_accessing_artifacts_within_steps():
    ns = run(WITHIN_STEPS)
    assert ns["evaluate_against_previous"].name == "evaluate_against_previous"


def test_cross_pipeline_artifact_usage():
    ns = run(CREATE_DATA, CROSS_PIPELINE)
    assert ns["inference_pipeline"].name == "inference_pipeline"  # load_data is the reader's own


def _make_my_folder() -> None:
    folder = os.path.join(Client().active_stack.artifact_store.path, "my_folder")
    os.makedirs(folder)
    with open(os.path.join(folder, "model.pkl"), "wb") as f:
        f.write(b"pickled model")


def test_register_an_existing_folder():
    _make_my_folder()
    ns = run(REGISTER_FOLDER)
    assert (ns["folder_path"] / "model.pkl").read_bytes() == b"pickled model"


def test_register_an_existing_file_after_its_folder():
    _make_my_folder()
    ns = run(REGISTER_FOLDER, REGISTER_FILE)  # the page's two examples, one after the other
    assert ns["file_path"].read_bytes() == b"pickled model"


# -- docs/book/how-to/artifacts/materializers.md --------------------------------------------

DATACLASS = '''
from dataclasses import dataclass

from zenml_shim import step

@dataclass
class TrainingConfig:
    learning_rate: float
    epochs: int

@step
def make_config() -> TrainingConfig:
    return TrainingConfig(learning_rate=0.01, epochs=10)
'''

PATHS = '''
from pathlib import Path
from typing import Annotated

from zenml_shim import step, pipeline


@step
def prepare_dataset(num_samples: int = 100) -> Annotated[Path, "dataset_dir"]:
    """Prepare a dataset directory with training files."""
    output_dir = Path("training_data")
    output_dir.mkdir(exist_ok=True)

    # Write training files into the directory
    (output_dir / "features.csv").write_text("feature1,feature2\\n1.0,2.0\\n")
    (output_dir / "labels.csv").write_text("label\\n1\\n")

    # ZenML will tar.gz this directory and upload it to the artifact store
    return output_dir


@step
def train_model(dataset_dir: Path) -> None:
    """Train a model using the dataset directory."""
    # dataset_dir points to a local temp directory with the extracted contents
    features = (dataset_dir / "features.csv").read_text()
    labels = (dataset_dir / "labels.csv").read_text()
    print(f"Training with features: {features}")


@pipeline
def training_pipeline():
    dataset = prepare_dataset()
    train_model(dataset)
'''

MY_CLASS_MATERIALIZER = '''
import os
import json
from typing import Type, Any, Dict
from zenml_shim import BaseMaterializer
from zenml_shim import ArtifactType, VisualizationType
from zenml_shim import MetadataType

# Assume MyClass is your custom class defined elsewhere
# from mymodule import MyClass

class MyClassMaterializer(BaseMaterializer):
    """Materializer for MyClass objects."""
    
    # List the data types this materializer can handle
    ASSOCIATED_TYPES = (MyClass,)
    
    # Define what type of artifact this is (usually DATA or MODEL)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA
    
    def load(self, data_type: Type[Any]) -> MyClass:
        """Load MyClass from storage."""
        # Implementation here
        filepath = os.path.join(self.uri, "data.json")
        with self.artifact_store.open(filepath, "r") as f:
            data = json.load(f)
        
        # Create and return an instance of MyClass
        return MyClass(**data)
    
    def save(self, data: MyClass) -> None:
        """Save MyClass to storage."""
        # Implementation here
        filepath = os.path.join(self.uri, "data.json")
        with self.artifact_store.open(filepath, "w") as f:
            json.dump(data.to_dict(), f)
    
    def save_visualizations(self, data: MyClass) -> Dict[str, VisualizationType]:
        """Generate visualizations for the dashboard."""
        # Optional - generate visualizations
        vis_path = os.path.join(self.uri, "visualization.html")
        with self.artifact_store.open(vis_path, "w") as f:
            f.write(data.to_html())
        
        return {vis_path: VisualizationType.HTML}
    
    def extract_metadata(self, data: MyClass) -> Dict[str, MetadataType]:
        """Extract metadata for tracking."""
        # Optional - extract metadata
        return {
            "name": data.name,
            "created_at": data.created_at,
            "num_records": len(data.records)
        }
'''

USING_MY_CLASS_MATERIALIZER = '''
from zenml_shim import step, pipeline
# from mymodule import MyClass, MyClassMaterializer

@step(output_materializers=MyClassMaterializer)
def create_my_class() -> MyClass:
    """Create an instance of MyClass."""
    return MyClass(name="test", records=[1, 2, 3])

@step
def use_my_class(my_obj: MyClass) -> None:
    """Use the MyClass instance."""
    print(f"Name: {my_obj.name}, Records: {my_obj.records}")

@pipeline
def custom_pipeline():
    data = create_my_class()
    use_my_class(data)
'''

REGISTER_GLOBALLY = '''
from zenml_shim import materializer_registry
from zenml_shim import BaseMaterializer
import pandas as pd

# Create a custom pandas materializer
class FastPandasMaterializer(BaseMaterializer):
    # Implementation here
    ...

# Register it for pandas DataFrames globally
materializer_registry.register_and_overwrite_type(
    key=pd.DataFrame, 
    type_=FastPandasMaterializer
)
'''

COMPLETE_MATERIALIZER = '''
import os
import json
from typing import Type, Any, Dict
from zenml_shim import BaseMaterializer
from zenml_shim import ArtifactType

class MyObj:
    def __init__(self, name: str):
        self.name = name
    
    def to_dict(self):
        return {"name": self.name}
    
    @classmethod
    def from_dict(cls, data):
        return cls(name=data["name"])

class MyMaterializer(BaseMaterializer):
    """Materializer for MyObj objects."""
    
    ASSOCIATED_TYPES = (MyObj,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA
    
    def load(self, data_type: Type[Any]) -> MyObj:
        """Load MyObj from storage."""
        filepath = os.path.join(self.uri, "data.json")
        with self.artifact_store.open(filepath, "r") as f:
            data = json.load(f)
        
        return MyObj.from_dict(data)
    
    def save(self, data: MyObj) -> None:
        """Save MyObj to storage."""
        filepath = os.path.join(self.uri, "data.json")
        with self.artifact_store.open(filepath, "w") as f:
            json.dump(data.to_dict(), f)

# Usage in a pipeline
@step(output_materializers=MyMaterializer)
def create_my_obj() -> MyObj:
    return MyObj(name="my_object")

@step
def use_my_obj(my_obj: MyObj) -> None:
    print(f"Object name: {my_obj.name}")

@pipeline
def my_pipeline():
    obj = create_my_obj()
    use_my_obj(obj)
'''

UNMATERIALIZED = '''
from typing import Annotated
from typing import Dict, List, Tuple

from zenml_shim import UnmaterializedArtifact
from zenml_shim import pipeline, step


@step
def step_1() -> Tuple[
    Annotated[Dict[str, str], "dict_"],
    Annotated[List[str], "list_"],
]:
    return {"some": "data"}, []


@step
def step_2() -> Tuple[
    Annotated[Dict[str, str], "dict_"],
    Annotated[List[str], "list_"],
]:
    return {"some": "data"}, []


@step
def step_3(dict_: Dict, list_: List) -> None:
    assert isinstance(dict_, dict)
    assert isinstance(list_, list)


@step
def step_4(
        dict_: UnmaterializedArtifact,
        list_: UnmaterializedArtifact,
) -> None:
    print(dict_.uri)
    print(list_.uri)


@pipeline
def example_pipeline():
    step_3(*step_1())
    step_4(*step_2())


example_pipeline()
'''


class MyClass:
    """The ``MyClass`` the page says is "defined elsewhere"."""

    def __init__(self, name: str, records: list, created_at: str = "2025-01-01") -> None:
        self.name, self.records, self.created_at = name, records, created_at

    def to_dict(self) -> dict:
        return {"name": self.name, "records": self.records, "created_at": self.created_at}

    def to_html(self) -> str:
        return f"<h1>{self.name}</h1>"


@pytest.fixture
def saved_registry():
    """Snippets register materializers globally: keep that inside the test."""
    saved = dict(registry.materializer_types)
    yield
    registry.materializer_types.clear()
    registry.materializer_types.update(saved)


def test_dataclass_artifacts():
    ns = run(DATACLASS)
    ns["pipeline"] = __import__("artifactfs").pipeline
    run('''
@pipeline
def config_pipeline():
    make_config()
''', namespace=ns)
    version = ns["config_pipeline"]().steps["make_config"].output
    assert version.materializer.endswith("DataclassMaterializer") and version.load().epochs == 10


def test_passing_files_and_directories_between_steps():
    ns = run(PATHS)
    produced = ns["training_pipeline"]().steps["prepare_dataset"].outputs["dataset_dir"][0]
    assert sorted(f.path for f in produced.files) == ["features.csv", "labels.csv"]


def test_define_your_materializer_class(saved_registry):
    ns = run(MY_CLASS_MATERIALIZER, namespace={"MyClass": MyClass})
    assert registry[MyClass] is ns["MyClassMaterializer"]


def test_using_your_custom_materializer(saved_registry):
    ns = run(MY_CLASS_MATERIALIZER, USING_MY_CLASS_MATERIALIZER, namespace={"MyClass": MyClass})
    version = ns["custom_pipeline"]().steps["create_my_class"].output
    assert version.run_metadata["num_records"] == 3
    assert [v["kind"] for v in version.visualizations] == ["html"]


def test_registering_a_materializer_globally(saved_registry):
    import pandas as pd

    ns = run(REGISTER_GLOBALLY)
    assert registry[pd.DataFrame] is ns["FastPandasMaterializer"]


def test_a_complete_materializer(saved_registry):
    import artifactfs

    ns = run(COMPLETE_MATERIALIZER, namespace={"step": artifactfs.step, "pipeline": artifactfs.pipeline})
    assert ns["my_pipeline"]().steps["create_my_obj"].output.load().name == "my_object"


def test_unmaterialized_artifacts(capsys):
    run(UNMATERIALIZED)
    printed = capsys.readouterr().out.split()
    assert len(printed) == 2 and all(os.path.isdir(uri) for uri in printed)


# -- docs/book/how-to/artifacts/visualizations.md -------------------------------------------

CSV_STRING = '''
from zenml_shim import step
from zenml_shim import CSVString

@step
def my_step() -> CSVString:
    some_csv = "a,b,c\\n1,2,3"
    return CSVString(some_csv)
'''

MATPLOTLIB_CLASS = '''
from typing import Any
from pydantic import BaseModel

class MatplotlibVisualization(BaseModel):
    """Custom class to hold matplotlib figures."""
    figure: Any  # This will hold the matplotlib figure
'''

MATPLOTLIB_MATERIALIZER = '''
import os
from typing import Dict
from zenml_shim import BaseMaterializer
from zenml_shim import VisualizationType
from zenml_shim import fileio

class MatplotlibMaterializer(BaseMaterializer):
    """Materializer that handles matplotlib figures."""
    ASSOCIATED_TYPES = (MatplotlibVisualization,)

    def save_visualizations(
        self, data: MatplotlibVisualization
    ) -> Dict[str, VisualizationType]:
        """Create and save visualizations for the matplotlib figure."""
        visualization_path = os.path.join(self.uri, "visualization.png")
        with fileio.open(visualization_path, 'wb') as f:
            data.figure.savefig(f, format='png', bbox_inches='tight')
        return {visualization_path: VisualizationType.IMAGE}
'''


def test_visualization_via_special_return_types():
    import artifactfs

    ns = run(CSV_STRING, namespace={"pipeline": artifactfs.pipeline})
    run('''
@pipeline
def csv_pipeline():
    my_step()
''', namespace=ns)
    version = ns["csv_pipeline"]().steps["my_step"].output
    assert version.load() == "a,b,c\n1,2,3"
    assert [v["kind"] for v in version.visualizations] == ["csv"]


def test_visualization_via_materializers(saved_registry):
    ns = run(MATPLOTLIB_CLASS, MATPLOTLIB_MATERIALIZER)
    assert registry[ns["MatplotlibVisualization"]] is ns["MatplotlibMaterializer"]
