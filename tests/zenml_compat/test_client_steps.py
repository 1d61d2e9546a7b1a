"""artifactfs's own tests of issue 19's gaps in the Client, run, step and
pipeline objects (not ported from ZenML): each asserts what a ZenML 0.98
user's code relies on."""

from __future__ import annotations

import warnings
from typing import Annotated, Tuple

import pytest

from artifactfs import (
    Client,
    ExternalArtifact,
    get_step_context,
    pipeline,
    save_artifact,
    step,
)
from artifactfs.errors import NotFoundError
from artifactfs.materializers import BaseMaterializer
from artifactfs.pipelines import StepDefinitionError

SEEN: dict = {}


@step
def make() -> Annotated[int, "number"]:
    SEEN["pipeline"] = get_step_context().pipeline
    return 3


@step
def double(number: int) -> int:
    return number * 2


@step
def reads(number: int) -> None:
    SEEN["inputs"] = get_step_context().inputs


@pipeline
def two_steps():
    double(make())


# -- 1. the Client ---------------------------------------------------------------------------


@pytest.mark.parametrize("getter", ["get_pipeline_run", "get_artifact", "get_artifact_version", "get_pipeline",
                                    "get_run_step"])
def test_client_getters_raise_a_key_error(getter):
    with pytest.raises(KeyError) as caught:
        getattr(Client(), getter)("nope")
    assert isinstance(caught.value, NotFoundError)
    assert "'nope'" in str(caught.value) and not str(caught.value).startswith('"')  # not KeyError's quoting


def test_run_steps_by_id_name_and_run():
    run = two_steps()
    first = two_steps.with_options(enable_cache=False)()
    step_run = run.steps["double"]
    assert Client().get_run_step(step_run.id).name == "double"
    assert Client().get_run_step(step_run.id).pipeline_run.id == run.id
    assert {s.name for s in Client().list_run_steps(pipeline_run_id=run.id)} == {"make", "double"}
    assert len(Client().list_run_steps(name="make")) == 2
    assert [s.status for s in Client().list_run_steps(pipeline_run_id=first.id, status="completed")] == [
        "completed", "completed"]
    page = Client().list_run_steps(size=3, page=2)
    assert (page.total, len(page), page.total_pages) == (4, 1, 2)
    assert [s.name for s in Client().list_run_steps(sort_by="desc:created", pipeline_run_id=first.id)] == [
        "double", "make"]


def test_pipelines_by_name_and_id():
    run = two_steps()
    found = Client().get_pipeline("two_steps")
    assert found.name == "two_steps" and found.id == run.pipeline.id
    assert Client().get_pipeline(found.id).name == "two_steps"
    assert Client().get_pipeline(found.id[:8]).name == "two_steps"
    assert found.last_run.id == run.id and [r.id for r in found.runs] == [run.id]
    assert [p.name for p in Client().list_pipelines()] == ["two_steps"]
    assert [p.name for p in Client().list_pipelines(name="other")] == []
    assert [p.name for p in Client().list_pipelines(latest_run_status="completed")] == ["two_steps"]


def test_create_run_metadata_on_each_resource():
    from artifactfs.api.metadata import (  # absent before issue 19
        MetadataResourceTypes,
        RunMetadataResource,
    )

    run = two_steps()
    version = save_artifact(1, "one")
    Client().create_run_metadata(
        {"k": 1},
        [RunMetadataResource(id=run.id, type=MetadataResourceTypes.PIPELINE_RUN),
         RunMetadataResource(id=run.steps["make"].id, type="step_runs"),
         RunMetadataResource(id=version.id, type=MetadataResourceTypes.ARTIFACT_VERSION)],
    )
    assert Client().get_pipeline_run(run.id).run_metadata["k"] == 1
    assert Client().get_run_step(run.steps["make"].id).run_metadata["k"] == 1
    assert Client().get_artifact_version("one").run_metadata["k"] == 1
    with pytest.raises(ValueError, match="model_versions"):
        Client().create_run_metadata({"k": 1}, [RunMetadataResource(id=run.id, type="model_versions")])


# -- 2. runs, pipelines and steps as objects ------------------------------------------------------


def test_pipeline_is_an_object_and_still_its_name():
    run = two_steps()
    assert run.pipeline.name == "two_steps" and run.pipeline.id
    assert run.pipeline == "two_steps" and str(run.pipeline) == "two_steps" and f"{run.pipeline}" == "two_steps"
    assert SEEN["pipeline"].name == "two_steps" and SEEN["pipeline"].id == run.pipeline.id
    assert run.steps["make"].pipeline.name == "two_steps"
    assert two_steps.model.last_run.id == run.id


def test_version_step_run_config_and_inputs():
    run = two_steps()
    number = Client().get_artifact_version("number")
    assert number.step.name == "make" and number.run.id == run.id
    with pytest.raises(RuntimeError, match="not produced by a step"):
        _ = save_artifact(1, "manual").step
    assert run.steps["double"].config.name == "double"
    assert run.steps["double"].config.enable_cache is True


def test_step_context_inputs():
    @pipeline
    def reading():
        reads(make())

    reading()
    assert {k: v.id for k, v in SEEN["inputs"].items()} == {"number": Client().get_artifact_version("number").id}


# -- 3. pipelines and steps behave as ZenML's ------------------------------------------------------


def test_configure_changes_the_pipeline_in_place():
    @pipeline
    def configured():
        make()

    assert configured.configure(enable_cache=False) is configured
    assert configured.enable_cache is False
    copy = configured.with_options(enable_cache=True)
    assert copy.enable_cache is True and configured.enable_cache is False


def test_unlisted_is_a_deprecated_no_op():
    with pytest.warns(DeprecationWarning, match="unlisted"):
        run = two_steps.with_options(unlisted=True)()
    assert run.status == "completed"
    with pytest.raises(StepDefinitionError, match="unknown pipeline option"):
        two_steps.with_options(unlistd=True)


@step
def a() -> int:
    return 1


@step
def b() -> int:
    return 2


@step
def pair() -> tuple[Annotated[int, "p"], Annotated[int, "q"]]:
    return 1, 2


def test_after_takes_step_outputs():
    @pipeline
    def ordered():
        first = a()
        both = pair()
        b(after=[first, both])

    run = ordered()
    assert list(run.steps) == ["a", "pair", "b"]


def test_variadic_steps_are_refused_where_defined():
    with pytest.raises(StepDefinitionError, match=r"\*args, \*\*kwargs"):
        @step
        def loose(*args, **kwargs) -> int:
            return 1


def test_unimportable_materializer_path_is_refused_where_defined():
    with pytest.raises(StepDefinitionError, match="no_such_module.Materializer.*cannot be imported"):
        @step(output_materializers="no_such_module.Materializer")
        def typo() -> int:
            return 1
    with pytest.raises(StepDefinitionError, match="not a BaseMaterializer"):
        @step(output_materializers="builtins.int")
        def not_one() -> int:
            return 1


def test_unpacking_one_output_is_a_clear_error():
    @pipeline
    def unpacks():
        _x, _y = a()

    with pytest.raises(StepDefinitionError, match="has one output .* cannot be unpacked"):
        unpacks()


def test_external_artifact_by_id_is_refused():
    with pytest.raises(ValueError, match="get_artifact_version"):
        ExternalArtifact(id="0123")
    with pytest.raises(ValueError):
        ExternalArtifact(name="x")


class Chained(BaseMaterializer):
    """Calls the base methods first, as ZenML's docs show."""

    ASSOCIATED_TYPES = (int,)

    def save(self, data: int) -> None:
        super().save(data)
        with self.artifact_store.open(self.path("n.txt"), "w") as f:
            f.write(str(data))

    def load(self, data_type: type) -> int:
        assert super().load(data_type) is None
        with self.artifact_store.open(self.path("n.txt")) as f:
            return int(f.read())


def test_base_materializer_save_and_load_are_no_ops():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert save_artifact(7, "chained", materializer=Chained).load() == 7


def test_load_artifact_visualization():
    import artifactfs
    from artifactfs.enums import VisualizationType
    from artifactfs.types import HTMLString

    version = save_artifact(HTMLString("<h1>hi</h1>"), "page")
    loaded = artifactfs.load_artifact_visualization(version)
    assert loaded.type == VisualizationType.HTML and "<h1>hi</h1>" in loaded.value
    with pytest.raises(KeyError, match="none at index 5"):
        artifactfs.load_artifact_visualization(version, index=5)


@step
def logs_bulk() -> tuple[Annotated[int, "left"], Annotated[int, "right"]]:
    import artifactfs

    artifactfs.bulk_log_metadata({"bulk": True}, infer_artifacts=True)
    return 1, 2


def test_bulk_log_metadata_on_runs_steps_versions_and_outputs():
    import artifactfs
    from artifactfs.api.metadata import (
        ArtifactVersionIdentifier,
        PipelineRunIdentifier,
        StepRunIdentifier,
    )

    @pipeline
    def bulk():
        logs_bulk()

    run = bulk()
    manual = save_artifact(1, "manual")
    artifactfs.bulk_log_metadata(
        {"k": 2},
        pipeline_runs=[PipelineRunIdentifier(name=run.name)],
        step_runs=[StepRunIdentifier(name="logs_bulk", run=PipelineRunIdentifier(id=run.id))],
        artifact_versions=[ArtifactVersionIdentifier(name="manual", version=manual.version),
                           ArtifactVersionIdentifier(id=Client().get_artifact_version("left").id)],
    )
    assert Client().get_pipeline_run(run.name).run_metadata["k"] == 2
    assert Client().get_run_step(run.steps["logs_bulk"].id).run_metadata["k"] == 2
    assert Client().get_artifact_version("manual").run_metadata["k"] == 2
    left = Client().get_artifact_version("left").run_metadata
    assert left["bulk"] is True and left["k"] == 2
    assert Client().get_artifact_version("right").run_metadata["bulk"] is True
    with pytest.raises(ValueError, match="no target"):
        artifactfs.bulk_log_metadata({"k": 1})
    with pytest.raises(ValueError, match="inside a running step"):
        artifactfs.bulk_log_metadata({"k": 1}, infer_artifacts=True)


def test_external_artifact_upload_by_value():
    version_id = ExternalArtifact(value=[1, 2]).upload_by_value()
    version = Client().get_artifact_version(version_id)
    assert version.load() == [1, 2] and version.name.startswith("external_")


def test_an_uploaded_external_value_is_saved_as_external():
    # ZenML 0.98 records ExternalArtifact values with ArtifactSaveType.EXTERNAL
    # (save_artifact(..., save_type=...)), both uploaded ones and the ones a
    # step run saves; a plain save_artifact stays MANUAL.
    from artifactfs.enums import ArtifactSaveType

    uploaded = Client().get_artifact_version(ExternalArtifact(value="foo").upload_by_value())
    assert uploaded.save_type == ArtifactSaveType.EXTERNAL
    assert save_artifact(1, "plain").save_type == ArtifactSaveType.MANUAL
    assert save_artifact(2, "told", save_type=ArtifactSaveType.EXTERNAL).save_type == ArtifactSaveType.EXTERNAL
    with pytest.raises(ValueError, match="save_type"):
        save_artifact(3, "wrong", save_type=ArtifactSaveType.STEP_OUTPUT)

    @step
    def takes(value: str) -> None:
        pass

    @pipeline
    def passes():
        takes(ExternalArtifact(value="bar"))

    run = passes()
    assert run.steps["takes"].inputs["value"][0].save_type == ArtifactSaveType.EXTERNAL


def test_a_version_knows_its_artifact_even_after_the_artifact_is_gone():
    client = Client()
    version = save_artifact(1, "owned")
    assert version.artifact.name == "owned"
    assert version.artifact.id == client.get_artifact("owned").id
    client.prune_artifacts(only_versions=True)
    # the version is gone, its artifact is kept (only_versions) and found by the id the version gave
    with pytest.raises(KeyError):
        client.get_artifact_version(version.id)
    assert client.get_artifact(version.artifact.id).name == "owned"
    client.prune_artifacts(only_versions=False)
    with pytest.raises(KeyError):
        client.get_artifact(version.artifact.id)


def test_last_successful_run_and_a_runs_artifact_versions():
    # ZenML's PipelineResponse.last_successful_run (newest completed run) and
    # PipelineRunResponse.artifact_versions (every version its steps output)
    @step(enable_cache=False)
    def two() -> Tuple[Annotated[int, "left"], Annotated[int, "right"]]:
        return 1, 2

    @step(enable_cache=False)
    def fails(left: int, boom: bool) -> None:
        if boom:
            raise RuntimeError("boom")

    @pipeline(name="partly")
    def partly(boom: bool):
        left, _ = two()
        fails(left, boom)

    good = partly(boom=False)
    with pytest.raises(Exception):
        partly(boom=True)
    view = Client().get_pipeline("partly")
    assert view.last_run.id != good.id  # the failed run is newer
    assert view.last_successful_run.id == good.id
    assert sorted(v.name for v in good.artifact_versions) == ["left", "right"]
    assert {v.id for v in good.artifact_versions} == {good.steps["two"].outputs["left"][0].id,
                                                      good.steps["two"].outputs["right"][0].id}
