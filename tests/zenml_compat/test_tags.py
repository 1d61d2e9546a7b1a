"""Tags as ZenML 0.98 has them (zenml.utils.tag_utils): objects with a
``.name`` (each also its name as a ``str``), ``Tag(name, exclusive,
cascade)``, ``add_tags``/``remove_tags`` for runs, artifacts and versions,
``@pipeline(tags=...)`` with cascading tags, and exclusive tags held by one
version of an artifact / one run of a pipeline at a time. Both index
databases: the exclusive rule is SQL."""

from __future__ import annotations

import pytest

pytest_plugins = ["index_fixtures"]

from artifactfs import Client, Tag, add_tags, pipeline, remove_tags, save_artifact, step  # noqa: E402


def test_tags_are_objects_with_a_name_and_still_compare_as_names(afs_home):
    version = save_artifact(1, "a", tags=["x"])
    assert [t.name for t in version.tags] == ["x"]
    assert version.tags == ["x"] and str(version.tags[0]) == "x"
    assert Tag(name="y").name == "y" and Tag("y", exclusive=True).exclusive


def test_add_and_remove_tags_on_versions_artifacts_and_runs(afs_home):
    version = save_artifact(1, "a")
    add_tags(["v1"], artifact_name="a", artifact_version="1")
    add_tags("v2", artifact_version_id=version.id)
    assert [t.name for t in version.tags] == ["v1", "v2"]
    remove_tags(["v1"], artifact_name="a", artifact_version="1")
    assert [t.name for t in version.tags] == ["v2"]
    add_tags(["whole"], artifact="a")
    assert [t.name for t in Client().get_artifact("a").tags] == ["whole"]
    remove_tags("whole", artifact="a")
    assert Client().get_artifact("a").tags == []
    with pytest.raises(ValueError, match="outside a step"):
        add_tags(["nowhere"])


@step
def tags_its_run() -> int:
    add_tags(["from_step"])  # bare, inside a step: the run
    add_tags(["on_output"], infer_artifact=True)
    save_artifact(5, "manual")
    return 3


def test_pipeline_tags_go_on_the_run_and_cascading_ones_on_every_output(afs_home):
    @pipeline(tags=[Tag("everywhere", cascade=True), "run_only"], quiet=True)
    def tagged():
        tags_its_run()

    run = Client().get_pipeline_run(tagged().name)
    assert sorted(t.name for t in run.tags) == ["everywhere", "from_step", "run_only"]
    outputs = run.steps["tags_its_run"].outputs
    assert sorted(t.name for t in outputs["output"].tags) == ["everywhere", "on_output"]
    assert [t.name for t in outputs["manual"].tags] == ["everywhere"]
    add_tags(["later"], run=run.name)
    remove_tags(["run_only"], run=run.id)
    assert sorted(t.name for t in Client().get_pipeline_run(run.name).tags) == ["everywhere", "from_step", "later"]


def test_an_exclusive_tag_has_one_holder_per_artifact_and_per_pipeline(afs_home):
    first = save_artifact(1, "a", tags=[Tag("best", exclusive=True)])
    other = save_artifact(1, "b", tags=["best"])  # a name takes the tag as it is: exclusive
    second = save_artifact(2, "a", tags=["best"])
    assert first.tags == [] and second.tags == ["best"] and other.tags == ["best"]
    assert second.tags[0].exclusive

    @pipeline(tags=[Tag("current", exclusive=True)], quiet=True, enable_cache=False)
    def runs():
        tags_its_run()

    one, two = runs(), runs()
    assert "current" not in Client().get_pipeline_run(one.name).tags
    assert "current" in Client().get_pipeline_run(two.name).tags
    with pytest.raises(ValueError, match="exclusive"):
        add_tags([Tag("best", exclusive=False)], artifact_version_id=first.id)
    with pytest.raises(ValueError, match="exclusive"):
        add_tags(["best"], artifact="a")  # an artifact as a whole cannot hold one


def test_client_tags(afs_home):
    Client().create_tag("t", exclusive=True)
    assert Client().get_tag("t").exclusive
    save_artifact(1, "a", tags=["shared"])
    save_artifact(2, "a", tags=["shared"])
    with pytest.raises(ValueError, match="several versions"):
        Client().update_tag("shared", exclusive=True)
    assert [t.name for t in Client().list_tags(exclusive=True)] == ["t"]
    Client().delete_tag("shared")
    assert Client().get_artifact_version("a", "1").tags == []


def test_list_runs_by_tag_filters(afs_home):
    @pipeline(quiet=True, enable_cache=False)
    def filtered():
        tags_its_run()

    first = filtered.with_options(tags=["cpu", Tag("current", exclusive=True)])()
    second = filtered.with_options(tags=["gpu", Tag("current", exclusive=True)])()
    found = Client().list_pipeline_runs(tags=["startswith:c", "equals:current"])
    assert [r.id for r in found.items] == [second.id]  # the exclusive tag moved off the first run
    assert [r.id for r in Client().list_pipeline_runs(tags="cpu")] == [first.id]
    assert Client().list_pipeline_runs(tags=["startswith:wrong"]).items == []
    assert [r.id for r in Client().list_pipeline_runs(sort_by="created")] == [first.id, second.id]


@step
def counted() -> int:
    return 7


def test_a_step_run_without_cache_serves_a_later_cached_run(afs_home):
    @pipeline(quiet=True, enable_cache=False)
    def uncached():
        counted()

    first = uncached()
    assert first.steps["counted"].config.enable_cache is False
    second = uncached.configure(enable_cache=True)()
    assert second.steps["counted"].is_cached and second.steps["counted"].config.enable_cache is True
    assert second.steps["counted"].output.id == first.steps["counted"].output.id
