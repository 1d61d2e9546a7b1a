"""A step that saves one name several times links every version (ZenML's
outputs are lists), on SQLite and PostgreSQL, and an index from before
migration 0012 upgrades with its links intact. Each reader of outputs gives
a sensible answer: the Client a list, the mount the latest version under
the name, ``run show`` every version."""

from __future__ import annotations

from sqlalchemy import inspect

pytest_plugins = ["index_fixtures"]

from artifactfs import Client, pipeline, save_artifact, step  # noqa: E402
from artifactfs.index import get_index, reset_index_cache  # noqa: E402
from artifactfs.index.db import Index  # noqa: E402
from artifactfs.index.migrate import current_revision, head_revision  # noqa: E402
from artifactfs.index import tree  # noqa: E402
from artifactfs.settings import get_settings  # noqa: E402
from index_fixtures import migrate_raw  # noqa: E402


@step
def saves_three() -> int:
    for value in (42, 43, 44):
        save_artifact(value, name="manual")
    return 1


@pipeline(quiet=True)
def three_saves():
    saves_three()


def test_three_saves_of_one_name_are_three_outputs(afs_home):
    run = three_saves()
    outputs = Client().get_pipeline_run(run.name).steps["saves_three"].outputs
    assert [v.load() for v in outputs["manual"]] == [42, 43, 44]
    assert len(outputs["manual"]) == 3 and [v.version for v in outputs["manual"]] == ["1", "2", "3"]
    assert outputs["output"].load() == 1  # one version: the list also stands for it


def test_the_mount_tree_shows_the_latest_version_under_the_name(afs_home):
    run = three_saves()
    step_run = run.steps["saves_three"]
    with get_index().read() as session:
        shown = {o.name: o.version.version for o in tree.list_outputs(session, step_run._pk)}
    assert shown == {"manual": "3", "output": "1"}


def test_a_cached_step_links_every_version_again(afs_home):
    first = three_saves()
    second = three_saves()
    assert second.steps["saves_three"].is_cached
    assert len(second.steps["saves_three"].outputs["manual"]) == 3
    assert [v.id for v in second.steps["saves_three"].outputs["manual"]] == \
        [v.id for v in first.steps["saves_three"].outputs["manual"]]


def test_an_index_from_0011_upgrades_and_takes_several_versions_per_name(afs_home):
    url = get_settings().index_url
    before = three_saves()  # at head; taken back to 0011, which keeps the first "manual" only
    reset_index_cache()
    migrate_raw(url, "0011_web2_runs", downgrade=True)
    raw = Index(url)
    with raw.engine.connect() as conn:
        keys = [c["column_names"] for c in inspect(conn).get_unique_constraints("step_io")]
    raw.dispose()
    assert ["step_run_id", "direction", "name"] in keys
    with get_index().engine.connect() as conn:  # first use upgrades to the head
        assert current_revision(conn) == head_revision()
    kept = Client().get_pipeline_run(before.name).steps["saves_three"].outputs["manual"]
    assert [v.load() for v in kept] == [42]
    after = three_saves.with_options(enable_cache=False)()
    assert [v.load() for v in after.steps["saves_three"].outputs["manual"]] == [42, 43, 44]
