"""How a step takes its arguments and records them, as in ZenML 0.98: called outside a
pipeline it validates and converts them and records a one-step run; inside
a pipeline its parameters are validated against their annotations (and
converted, pydantic models included), and a list or tuple of step outputs
passed as one argument reaches the step as a list of their values."""

from __future__ import annotations

import os
from typing import Annotated, Tuple

import numpy as np
import pytest
from pydantic import BaseModel

from artifactfs import (
    Client,
    ExternalArtifact,
    fileio,
    get_step_context,
    load_artifact,
    pipeline,
    save_artifact,
    step,
)
from artifactfs.enums import ArtifactSaveType, StepRunInputArtifactType
from artifactfs.materializers import BaseMaterializer
from artifactfs.pipelines import StepDefinitionError


class Settings(BaseModel):
    rate: float
    rounds: int = 2


@step
def add(a: int, b: float = 1.0) -> float:
    return a + b


@step
def pair() -> Tuple[Annotated[int, "left"], Annotated[int, "right"]]:
    return 1, 2


@step
def total(values: list, settings: Settings, offset: int) -> float:
    assert isinstance(settings, Settings) and isinstance(offset, int)
    return sum(values) * settings.rate + settings.rounds + offset


@step
def array_sum(values: np.ndarray) -> int:
    return int(values.sum())


def test_a_step_called_alone_validates_converts_and_records_a_run():
    assert add(2, b="3") == 5.0
    run = Client().get_pipeline_run(Client().list_pipeline_runs()[0].name)
    assert run.pipeline.name == "add" and list(run.steps) == ["add"]
    assert run.steps["add"].parameters == {"a": 2, "b": "3"}
    with pytest.raises(StepDefinitionError, match="expects int"):
        add("not a number")  # no parameter: saved as an external artifact, refused as the step's input


def test_a_value_that_is_no_parameter_goes_in_as_an_external_artifact():
    assert array_sum(np.ones(4)) == 4
    step_run = Client().list_pipeline_runs()[0].steps["array_sum"]
    assert step_run.inputs["values"].name == "array_sum::array_sum::values"


def test_several_outputs_come_back_as_a_tuple_and_manual_saves_are_left_out():
    assert pair() == (1, 2)
    outputs = Client().list_pipeline_runs()[0].steps["pair"].outputs
    assert all(v.save_type == ArtifactSaveType.STEP_OUTPUT for vs in outputs.values() for v in vs)


def test_parameters_are_validated_and_converted_inside_a_pipeline():
    @pipeline(quiet=True)
    def converted():
        total(pair(), settings={"rate": "0.5"}, offset="4")  # a tuple of outputs as one argument

    run = converted()
    assert run.steps["total"].outputs["output"].load() == 1.5 + 2 + 4
    assert run.steps["total"].parameters == {"settings": {"rate": "0.5"}, "offset": "4"}
    assert [v.load() for v in run.steps["total"].inputs["values"]] == [1, 2]  # the list's versions

    @pipeline(quiet=True)
    def model_given():
        left, right = pair()
        total([right, left], settings=Settings(rate=1.0), offset=0)

    assert model_given().steps["total"].outputs["output"].load() == 3 + 2

    @pipeline(quiet=True)
    def wrong():
        total(pair(), settings={"rate": "fast"}, offset=0)

    with pytest.raises(RuntimeError, match="parameter 'settings' expects Settings"):
        wrong()
    assert "wrong" not in [p.name for p in Client().list_pipelines()]  # refused before any run is recorded


def test_a_step_called_inside_a_running_step_is_the_validated_function():
    @step
    def outer() -> float:
        return add(1, b="2")

    assert outer() == 3.0
    assert [r.pipeline.name for r in Client().list_pipeline_runs()] == ["outer"]  # no nested run


@step
def produces() -> Annotated[int, "shared"]:
    save_artifact(41, "shared")
    return 42


@step
def consumes(shared: int, expected: int) -> None:
    assert shared == expected


@step
def loads_itself() -> None:
    assert load_artifact("shared", 1) == 41


def test_input_types():
    @pipeline(quiet=True)
    def typed():
        consumes(produces(), 42, id="from_step")
        consumes(ExternalArtifact(value=42), 42, id="external")
        consumes(Client().get_artifact_version("shared", 1), 41, id="lazy")
        loads_itself(after="lazy")

    for cache in (False, True):
        run = typed.with_options(enable_cache=cache)()
        assert run.steps["produces"].input_types == {}
        assert run.steps["from_step"].input_types == {"shared": StepRunInputArtifactType.STEP_OUTPUT}
        assert run.steps["external"].input_types == {"shared": StepRunInputArtifactType.EXTERNAL}
        assert run.steps["lazy"].input_types == {"shared": StepRunInputArtifactType.LAZY_LOADED}
        assert run.steps["loads_itself"].input_types == {"shared": StepRunInputArtifactType.MANUAL}
        assert run.steps["lazy"].inputs["shared"][0].input_type == StepRunInputArtifactType.LAZY_LOADED


def test_producer_ids_survive_the_cache():
    @pipeline(quiet=True)
    def once():
        counted_output()

    first, second = once(), once()
    assert second.steps["counted_output"].is_cached
    version = Client().get_pipeline_run(second.id).steps["counted_output"].output
    assert version.producer_pipeline_run_id == first.id
    assert version.producer_step_run_id == first.steps["counted_output"].id


@step
def counted_output() -> Annotated[int, "counted"]:
    return 3


class Labelled(BaseModel):
    name: str
    pipeline_name: str | None = None


class LabelledMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (Labelled,)

    def save(self, data: Labelled) -> None:
        super().save(data)
        data.pipeline_name = get_step_context().pipeline.name  # a materializer may ask for the step context
        with fileio.open(os.path.join(self.uri, "data.json"), "w") as f:
            f.write(data.model_dump_json())

    def load(self, data_type: type) -> Labelled:
        super().load(data_type)
        get_step_context()
        with fileio.open(os.path.join(self.uri, "data.json")) as f:
            return Labelled.model_validate_json(f.read())


def test_a_materializer_sees_the_step_context():
    @step(output_materializers=LabelledMaterializer)
    def make_labelled() -> Labelled:
        return Labelled(name="x")

    @step
    def read_labelled(item: Labelled) -> str:
        return item.pipeline_name

    @pipeline(name="labelled", quiet=True)
    def labelled():
        read_labelled(make_labelled())

    assert labelled().steps["read_labelled"].output.load() == "labelled"


class Marked:
    pass


class MarkedMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (Marked,)

    def save(self, data: Marked) -> None:
        with fileio.open(os.path.join(self.uri, "marked.txt"), "w") as f:
            f.write("marked")

    def load(self, data_type: type) -> Marked:
        return Marked()


class StrOnlyMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (str,)

    def save(self, data: str) -> None:
        with fileio.open(os.path.join(self.uri, "text.txt"), "w") as f:
            f.write(data)

    def load(self, data_type: type) -> str:
        with fileio.open(os.path.join(self.uri, "text.txt")) as f:
            return f.read()


def test_a_list_of_materializers_gives_each_output_the_first_that_fits():
    # ZenML 0.98: output_materializers may be a sequence (for every output or
    # per output name); each output is saved by the first materializer whose
    # associated types hold the value's class (else the first that can save it).
    @step(output_materializers=[StrOnlyMaterializer, MarkedMaterializer])
    def both() -> Tuple[Annotated[Marked, "m"], Annotated[str, "s"]]:
        return Marked(), "text"

    @step(output_materializers={"m": [StrOnlyMaterializer, MarkedMaterializer]})
    def one() -> Annotated[Marked, "m"]:
        return Marked()

    @pipeline(name="listed", quiet=True)
    def listed():
        both()
        one()

    run = listed()
    outputs = run.steps["both"].outputs
    assert outputs["m"].materializer.endswith("MarkedMaterializer")
    assert outputs["s"].materializer.endswith("StrOnlyMaterializer")
    assert run.steps["one"].outputs["m"].materializer.endswith("MarkedMaterializer")

    @step(output_materializers=[StrOnlyMaterializer])
    def unfit() -> Marked:
        return Marked()

    @pipeline(name="unfit", quiet=True)
    def unfit_pipeline():
        unfit()

    with pytest.raises(StepDefinitionError, match="StrOnlyMaterializer"):
        unfit_pipeline()
