"""@step / @pipeline: execution order, lineage, parameters, types, output
naming, caching, cross-pipeline use, failures, the Client and the CLI."""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Tuple

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

pytest_plugins = ["index_fixtures"]

from artifactfs import Client, load_artifact, pipeline, save_artifact, step  # noqa: E402
from artifactfs.cli.main import cli  # noqa: E402
from artifactfs.index import get_index  # noqa: E402
from artifactfs.index.models import VersionRow  # noqa: E402
from artifactfs.index.models import PipelineRun, StepRun  # noqa: E402
from artifactfs.pipelines import StepDefinitionError, get_step_context  # noqa: E402

CALLS: list[str] = []


@step
def make_numbers(n: int = 5) -> list:
    CALLS.append("make_numbers")
    return list(range(n))


@step
def total(numbers: list, scale: float = 1.0) -> float:
    CALLS.append("total")
    return sum(numbers) * scale


@pipeline
def simple(n: int = 5, scale: float = 1.0):
    total(make_numbers(n=n), scale=scale)


@pytest.fixture(autouse=True)
def clear_calls():
    CALLS.clear()


def count(model) -> int:
    with get_index().read() as session:
        return session.scalar(select(func.count()).select_from(model))


# -- running and lineage ----------------------------------------------------------------


def test_run_records_lineage(afs_home):
    run = simple(n=4, scale=2.0)
    assert run.status == "completed" and run.pipeline == "simple"
    assert run.parameters == {"n": 4, "scale": 2.0}
    assert list(run.steps) == ["make_numbers", "total"]
    make, tot = run.steps["make_numbers"], run.steps["total"]
    assert make.status == tot.status == "completed"
    assert make.parameters == {"n": 4} and tot.parameters == {"scale": 2.0}
    assert len(make.code_hash) == 64 and make.code_hash != tot.code_hash
    assert make.outputs["output"].name == "simple::make_numbers::output"
    assert make.outputs["output"].load() == [0, 1, 2, 3]
    assert tot.inputs["numbers"].id == make.outputs["output"].id
    assert tot.output.load() == 12.0
    assert CALLS == ["make_numbers", "total"]
    produced = tot.output
    assert produced.producer.name == "total" and produced.producer.run == run.name
    assert [c.name for c in make.output.consumers] == ["total"]
    assert [v.id for v in produced.upstream(1)] == [make.output.id]
    assert [v.id for v in make.output.downstream(1)] == [produced.id]
    fetched = Client().get_pipeline_run(run.name)
    assert fetched.steps["total"].outputs["output"].load() == 12.0
    assert Client().get_pipeline_run(run.id[:8]).name == run.name
    assert [r.name for r in Client().list_pipeline_runs(pipeline="simple")] == [run.name]


def test_step_outside_pipeline_runs_as_a_recorded_one_step_run(sqlite_home):
    assert total([1, 2], scale="3") == 9  # validated and converted, as ZenML does
    assert count(StepRun) == 1
    assert [r.pipeline.name for r in Client().list_pipeline_runs()] == ["total"]
    assert total.entrypoint([1, 2], scale=3) == 9 and count(StepRun) == 1  # the bare function


def test_non_json_parameter_fails_before_running(sqlite_home):
    @step
    def use(x: Any) -> int:
        return 1

    @pipeline
    def bad():
        use(x=np.zeros(3))

    with pytest.raises(StepDefinitionError, match="parameter 'x' is a ndarray.*pass it as an artifact"):
        bad()
    assert count(PipelineRun) == 0


def test_output_type_mismatch(sqlite_home):
    @step
    def liar() -> int:
        return "not an int"

    @pipeline
    def p():
        liar()

    with pytest.raises(StepDefinitionError, match="step 'liar': output 'output' is str, but .* int"):
        p()
    with get_index().read() as session:
        assert session.scalar(select(StepRun.status)) == "failed"
        assert session.scalar(select(PipelineRun.status)) == "failed"
    assert count(VersionRow) == 0


def test_input_type_mismatch(sqlite_home):
    @step
    def produce() -> str:
        return "text"

    @step
    def consume(value: int) -> int:
        return value

    @pipeline
    def p():
        consume(produce())

    with pytest.raises(StepDefinitionError, match="input 'value' is str .* expects int"):
        p()


# -- outputs and names ---------------------------------------------------------------------


def test_output_naming_rules(sqlite_home):
    @step
    def several() -> Tuple[int, Annotated[str, "label"]]:
        return 1, "a"

    @step
    def pair() -> tuple:
        return (1, 2)

    @step
    def stamped() -> Annotated[dict, "report_{date}_{team}"]:
        return {"ok": True}

    @pipeline
    def naming():
        several()
        pair()
        stamped.with_options(substitutions={"team": "vision"})()

    run = naming()
    assert set(run.steps["several"].outputs) == {"output_0", "label"}
    assert run.steps["several"].outputs["label"].name == "label"
    assert run.steps["several"].outputs["output_0"].name == "naming::several::output_0"
    assert run.steps["pair"].output.load() == (1, 2)
    report = run.steps["stamped"].output
    assert report.name.startswith("report_2") and report.name.endswith("_vision")


def test_missing_placeholder_and_duplicate_outputs_fail_early(sqlite_home):
    @step
    def stamped() -> Annotated[int, "x_{missing}"]:
        return 1

    @pipeline
    def p():
        stamped()

    with pytest.raises(StepDefinitionError, match="placeholder.*missing"):
        p()
    assert count(PipelineRun) == 0
    with pytest.raises(StepDefinitionError, match="duplicate output names: a"):
        @step
        def dup() -> Tuple[Annotated[int, "a"], Annotated[int, "a"]]:
            return 1, 2


@pytest.mark.parametrize("template, problem", [
    ("run}1", "Single '}'"), ("run{", "Single '{'"), ("run_{}", "placeholder {}"),
    ("run_{date.year}", "placeholder {date.year}"), ("run_{date!r}", "placeholder {date}"),
])
def test_a_name_template_str_format_cannot_fill_is_refused_before_the_run(sqlite_home, template, problem):
    """A lone brace or a placeholder that is not a plain name, in a run name
    or an output name, is refused with the fix (a ValueError, as ZenML's
    formatting raises), and no run is recorded; ``{{`` and ``}}`` are braces."""
    @step
    def named() -> Annotated[int, "out"]:
        return 1

    @step
    def badly_named() -> Annotated[int, template]:
        return 1

    @pipeline
    def by_run_name():
        named()

    @pipeline
    def by_output_name():
        badly_named()

    for run_it in (by_run_name.with_options(run_name=template), by_output_name):
        with pytest.raises(ValueError, match=re.escape(problem)) as caught:
            run_it()
        assert isinstance(caught.value, StepDefinitionError) and "{{ and }}" in caught.value.hint
    assert count(PipelineRun) == 0
    assert by_run_name.with_options(run_name="run{{1}}")().name == "run{1}"


def test_same_step_twice_gets_distinct_names(sqlite_home):
    @pipeline
    def twice():
        total(make_numbers(n=2))
        total(make_numbers(n=3), scale=10.0)

    run = twice()
    assert list(run.steps) == ["make_numbers", "total", "make_numbers_2", "total_2"]
    assert run.steps["total_2"].output.load() == 30.0


# -- caching -------------------------------------------------------------------------------


def test_cache_reuses_versions(afs_home):
    first = simple(n=5)
    CALLS.clear()
    second = simple(n=5)
    assert CALLS == []
    assert all(s.status == "cached" for s in second.steps.values())
    assert all(s.end_time >= s.start_time for s in second.steps.values())  # `run show` printed -0.00s
    assert second.steps["total"].output.id == first.steps["total"].output.id
    assert second.steps["total"].inputs["numbers"].id == first.steps["make_numbers"].output.id
    third = simple(n=6)  # a changed parameter runs again, and so does what follows
    assert [s.status for s in third.steps.values()] == ["completed", "completed"]
    assert CALLS == ["make_numbers", "total"]


def test_cache_can_be_turned_off(sqlite_home):
    simple()
    CALLS.clear()
    simple.with_options(enable_cache=False)()
    assert CALLS == ["make_numbers", "total"]

    @pipeline
    def partly():
        total.with_options(enable_cache=False)(make_numbers())

    partly()
    CALLS.clear()
    partly()
    assert CALLS == ["total"]


def test_changed_code_misses_the_cache(sqlite_home, tmp_path):
    source = tmp_path / "mod_v.py"
    for body, status in (("return 1", "completed"), ("return 2", "completed"), ("return 2", "cached")):
        source.write_text(
            "from artifactfs import step, pipeline\n"
            f"@step\ndef value() -> int:\n    {body}\n"
            "@pipeline\ndef p():\n    value()\n"
        )
        run = subprocess.run(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import mod_v; "
             "r = mod_v.p(); print(r.steps['value'].status, r.steps['value'].output.load())"],
            check=True, capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        assert run.stdout.split() == [status, body.split()[-1]]


def test_condemned_output_is_not_reused(sqlite_home):
    first = simple()
    with get_index().write() as session:
        session.execute(update(VersionRow).where(VersionRow.id == first.steps["total"].output._pk)
                        .values(state="condemned"))
    CALLS.clear()
    second = simple()
    assert second.steps["make_numbers"].status == "cached"
    assert second.steps["total"].status == "completed" and CALLS == ["total"]


# -- cross-pipeline use and manual links -----------------------------------------------------


def test_cross_pipeline_and_manual_links(sqlite_home):
    external = save_artifact([10, 20], "external_numbers")

    @step
    def reader() -> int:
        context = get_step_context()
        assert context.step == "reader"
        version = Client().get_artifact_version("external_numbers")
        save_artifact({"seen": version.version}, "side_output")
        return len(version.load())

    @pipeline
    def consumer(numbers_version=None):
        total(Client().get_artifact_version("external_numbers"))
        reader()

    run = consumer()
    assert run.steps["total"].inputs["numbers"].id == external.id
    assert run.steps["total"].output.load() == 30
    assert run.steps["reader"].inputs["external_numbers"].id == external.id
    assert run.steps["reader"].outputs["side_output"].load() == {"seen": "1"}
    assert [c.name for c in external.consumers] == ["total", "reader"]


# -- failures ----------------------------------------------------------------------------------


class BoomError(RuntimeError):
    pass


def test_failed_step_keeps_completed_outputs(sqlite_home):
    @step
    def explode(numbers: list) -> int:
        raise BoomError("boom")

    @pipeline
    def fragile():
        explode(make_numbers())

    with pytest.raises(BoomError) as info:
        fragile()
    assert any("step 'explode'" in note for note in getattr(info.value, "__notes__", []))
    run = Client().list_pipeline_runs(pipeline="fragile")[0]
    assert run.status == "failed"
    assert run.steps["make_numbers"].status == "completed"
    assert run.steps["explode"].status == "failed" and run.steps["explode"].outputs == {}
    assert run.steps["make_numbers"].output.load() == [0, 1, 2, 3, 4]
    assert count(VersionRow) == 1


# -- CLI and the example -------------------------------------------------------------------------


def test_run_cli(sqlite_home):
    run = simple()
    runner = CliRunner()
    out = runner.invoke(cli, ["pipeline", "list"])
    assert out.exit_code == 0 and "simple" in out.output
    out = runner.invoke(cli, ["run", "list"], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and run.name in out.output
    out = runner.invoke(cli, ["run", "show", run.name], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and "make_numbers" in out.output and "completed" in out.output
    out = runner.invoke(cli, ["run", "show", "nope"])
    assert out.exit_code == 1 and "no pipeline run named 'nope'" in out.output
    out = runner.invoke(cli, ["run", "delete", run.name, "-y"])
    assert out.exit_code == 0
    assert count(PipelineRun) == 0 and count(StepRun) == 0
    assert load_artifact("simple::total::output") == 10  # artifacts stay for the pruner


def test_example_pipeline_runs_and_caches(sqlite_home):
    example = Path(__file__).parents[1] / "examples" / "training_pipeline.py"
    first = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, check=True)
    assert "cached steps: none" in first.stdout
    assert "cached steps: load_data, split, train, evaluate" in second.stdout
    rmse = float(first.stdout.split("rmse=")[1].split(";")[0])
    assert 0.05 < rmse < 0.2  # noise 0.1: the fit recovers the true weights
    weights = load_artifact("model_weights")
    assert np.allclose(weights, [3, -2, 0.5], atol=0.05)
