"""How a step takes its arguments, as in ZenML 0.98: called outside a
pipeline it validates and converts them and records a one-step run; inside
a pipeline its parameters are validated against their annotations (and
converted, pydantic models included), and a list or tuple of step outputs
passed as one argument reaches the step as a list of their values."""

from __future__ import annotations

from typing import Annotated, Tuple

import numpy as np
import pytest
from pydantic import BaseModel

from artifactfs import Client, pipeline, step
from artifactfs.enums import ArtifactSaveType
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
    assert [v.load() for v in [run.steps["total"].inputs["values"]]] == [1]  # the first of the list

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
