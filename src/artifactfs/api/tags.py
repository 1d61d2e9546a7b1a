"""``add_tags`` / ``remove_tags`` with ZenML's signature
(``zenml.utils.tag_utils``): one call tags a run, an artifact, an artifact
version (by id, by name and version, or the running step's output), or,
called bare inside a step, the run the step belongs to. The rules (exclusive
tags, refused combinations) live in ``index.tags``."""

from __future__ import annotations

from typing import Any

from artifactfs.api.artifacts import get_artifact_version
from artifactfs.api.client import Client
from artifactfs.api.context import current_step_run
from artifactfs.api.metadata import _output_name
from artifactfs.index import get_index
from artifactfs.index import pipelines as pipeline_rows
from artifactfs.index import tags as tag_rules
from artifactfs.index.models import Artifact
from artifactfs.index.tags import Tag, TagError

#: ZenML targets that artifactfs has no such thing for (run templates, snapshots, deployments).
_ABSENT = ("run_template", "snapshot", "deployment")

_COMBINATIONS = ("pipeline=, run=, artifact=, artifact_version_id=, artifact_name= with artifact_version=, "
                 "infer_artifact=True (with artifact_name= for a step with several outputs), "
                 "or nothing inside a step (its run)")


def add_tags(tags: Any, pipeline: Any = None, run: Any = None, run_template: Any = None, snapshot: Any = None,
             deployment: Any = None, artifact: Any = None, artifact_version_id: Any = None,
             artifact_name: str | None = None, artifact_version: str | None = None,
             infer_artifact: bool | None = None) -> None:
    """Attach tags (names or ``Tag`` values) to one target; see the module docstring."""
    _apply(True, tag_rules.as_tags(tags), locals())


def remove_tags(tags: Any, pipeline: Any = None, run: Any = None, run_template: Any = None, snapshot: Any = None,
                deployment: Any = None, artifact: Any = None, artifact_version_id: Any = None,
                artifact_name: str | None = None, artifact_version: str | None = None,
                infer_artifact: bool | None = None) -> None:
    """Detach tags (by name) from one target, chosen as in :func:`add_tags`."""
    _apply(False, tag_rules.as_tags(tags), locals())


def _apply(adding: bool, tags: list[Tag], given: dict[str, Any]) -> None:
    given = {k: v for k, v in given.items() if k not in ("tags", "adding") and v is not None}
    if given.get("infer_artifact") is False and len(given) == 1:
        given = {}  # infer_artifact=False alone means "do not infer": the bare call
    absent = sorted(set(given) & set(_ABSENT))
    if absent:
        raise TagError(f"artifactfs has no {absent[0].replace('_', ' ')}s to tag",
                       f"tag one of: {_COMBINATIONS}")
    keys = set(given)
    if keys == {"pipeline"}:
        return _on_pipeline(adding, tags, given["pipeline"])
    if keys == {"run"}:
        return _on_run(adding, tags, str(given["run"]))
    if keys == {"artifact"}:
        return _on_artifact(adding, tags, given["artifact"])
    if keys == {"artifact_version_id"}:
        return _on_version(adding, tags, get_artifact_version(str(given["artifact_version_id"])))
    if keys == {"artifact_name", "artifact_version"}:
        return _on_version(adding, tags, get_artifact_version(given["artifact_name"], given["artifact_version"]))
    if keys in ({"infer_artifact"}, {"infer_artifact", "artifact_name"}) and given["infer_artifact"] is True:
        return _on_output(adding, tags, given.get("artifact_name"))
    if not keys:
        context = current_step_run()
        if context is None:
            raise TagError(f"{'add' if adding else 'remove'}_tags() outside a step needs a target",
                           f"pass one of: {_COMBINATIONS}")
        return _on_run(adding, tags, context.run)
    raise TagError(f"unsupported combination of targets: {', '.join(sorted(keys))}", f"pass one of: {_COMBINATIONS}")


def _on_run(adding: bool, tags: list[Tag], name_or_id: str) -> None:
    _on("run", adding, tags, lambda session: pipeline_rows.find_run(session, name_or_id).id)


def _on_pipeline(adding: bool, tags: list[Tag], name_or_id: Any) -> None:
    name = Client().get_pipeline(name_or_id).name
    _on("pipeline", adding, tags, lambda session: pipeline_rows.get_or_create_pipeline(session, name).id)


def _on_artifact(adding: bool, tags: list[Tag], name_or_id: Any) -> None:
    artifact_pk = Client().get_artifact(name_or_id)._pk

    def found(session) -> int:
        if session.get(Artifact, artifact_pk) is None:
            raise TagError(f"artifact {name_or_id!r} was deleted meanwhile")
        return artifact_pk

    _on("artifact", adding, tags, found)


def _on(kind: str, adding: bool, tags: list[Tag], target: Any) -> None:
    """Attach or detach in one transaction; ``target(session)`` is the row's id."""
    def change(session) -> None:
        target_id = target(session)
        if adding:
            tag_rules.attach(session, kind, [target_id], tags)
        else:
            tag_rules.untag(session, kind, target_id, tags)

    get_index().run_write(change)


def _on_version(adding: bool, tags: list[Tag], version) -> None:
    (version.add_tags if adding else version.remove_tags)(tags)


def _on_output(adding: bool, tags: list[Tag], output: str | None) -> None:
    """The running step's output: tagged when the step's outputs are saved."""
    context = current_step_run()
    if context is None:
        raise TagError("add_tags(infer_artifact=True) works inside a step with outputs",
                       "pass artifact_version_id=, or artifact_name= with artifact_version=")
    name = _output_name(context, output)
    kept: list[str] = [t for t in context.output_tags.get(name, []) if t not in tags]
    context.output_tags[name] = [*kept, *tags] if adding else kept


__all__ = ["Tag", "add_tags", "remove_tags"]
