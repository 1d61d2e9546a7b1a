"""artifactfs's own tests of dynamic output names (issue 19, not ported from
ZenML): a step's outputs are keyed by the resolved artifact name, and custom
substitutions come from the step, the pipeline and ``with_options``."""

from __future__ import annotations

import re

import pytest
from typing import Annotated

from artifactfs import Client, pipeline, step


@step
def dated() -> Annotated[str, "x_{date}"]:
    return "hello"


@step
def takes(text: str) -> Annotated[str, "plain"]:
    return text.upper()


@pipeline
def dated_pipeline():
    takes(dated())


def test_outputs_are_keyed_by_the_resolved_name():
    run = dated_pipeline()
    (key,) = run.steps["dated"].outputs
    assert re.fullmatch(r"x_\d{4}_\d{2}_\d{2}", key)
    assert run.steps["dated"].outputs[key].name == key
    assert run.steps["takes"].outputs["plain"].load() == "HELLO"  # a fixed name stays as it is
    assert run.steps["takes"].inputs["text"].name == key


def test_a_cached_run_keys_outputs_the_same_way():
    dated_pipeline()
    run = dated_pipeline()  # same day, same code: cached, and the next step still finds its input
    assert run.steps["dated"].is_cached
    (key,) = run.steps["dated"].outputs
    assert re.fullmatch(r"x_\d{4}_\d{2}_\d{2}", key)
    assert run.steps["takes"].outputs["plain"].load() == "HELLO"


@step(substitutions={"who": "step"})
def custom() -> tuple[Annotated[str, "by_{who}"], Annotated[str, "for_{team}"]]:
    return "a", "b"


@pipeline(substitutions={"team": "search", "who": "pipeline"})
def custom_pipeline():
    custom()


def test_custom_substitutions_from_step_pipeline_and_with_options():
    run = custom_pipeline()
    assert set(run.steps["custom"].outputs) == {"by_step", "for_search"}  # the step's own value wins
    run = custom_pipeline.with_options(substitutions={"team": "ads"})()
    assert set(run.steps["custom"].outputs) == {"by_step", "for_ads"}
    custom.configure(substitutions={"who": "configured"})
    try:
        run = custom_pipeline()
        assert set(run.steps["custom"].outputs) == {"by_configured", "for_search"}
    finally:
        custom.configure(substitutions={"who": "step"})
    assert Client().get_artifact_version("for_ads").load() == "b"


def test_substitutions_are_recorded_on_the_run():
    run = dated_pipeline()
    (key,) = run.steps["dated"].outputs
    substitutions = run.config.substitutions
    assert key == f"x_{substitutions['date']}" and re.fullmatch(r"\d{2}_\d{2}_\d{2}_\d+", substitutions["time"])
    assert run.config.enable_cache is True
    run = custom_pipeline.with_options(substitutions={"team": "ads"}, enable_cache=False)()
    assert run.config.substitutions["team"] == "ads" and run.config.substitutions["who"] == "pipeline"
    assert Client().get_pipeline_run(run.name).config.enable_cache is False


@step
def timed() -> Annotated[str, "t_{date}_{time}"]:
    return "then"


@pipeline(quiet=True)
def timed_pipeline():
    timed()


def test_a_cached_run_keeps_the_names_its_original_gave_dated_outputs():
    first = timed_pipeline()
    second = timed_pipeline()  # a later {time}: the cache still finds the first run's version
    assert second.steps["timed"].is_cached
    assert list(second.steps["timed"].outputs) == list(first.steps["timed"].outputs)


def test_a_missing_substitution_is_a_key_error_naming_the_template():
    @step
    def needs_team() -> Annotated[str, "for_{team}"]:
        return "x"

    @pipeline(quiet=True)
    def missing():
        needs_team()

    with pytest.raises(KeyError, match="Could not format the name template `for_{team}`. Missing key: 'team'"):
        missing()
    with pytest.raises(RuntimeError):  # ZenML 0.98 surfaces it as its failed run's RuntimeError
        missing()
    assert "missing" not in [p.name for p in Client().list_pipelines()]  # refused before any run


def test_a_step_run_records_the_run_substitutions_and_its_own():
    run = custom_pipeline()
    assert run.config.substitutions["who"] == "pipeline"  # the run's own
    step_values = run.steps["custom"].config.substitutions
    assert step_values["who"] == "step" and step_values["team"] == "search"
    assert step_values["date"] == run.config.substitutions["date"]
