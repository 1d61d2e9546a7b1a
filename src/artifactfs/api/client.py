"""``Client``: queries over the index for users and notebooks, with ZenML's
method names, signatures and filters for artifacts (``get_artifact``,
``list_artifact_versions(artifact=..., tags=..., size=...)``,
``update_artifact_version``, ``delete_artifact_version``, ``prune_artifacts``,
``active_stack.artifact_store.path`` ...)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from artifactfs.api import deleting, runs
from artifactfs.api.artifacts import ArtifactVersion, get_artifact_version
from artifactfs.api.metadata import RunMetadataResource, create_run_metadata
from artifactfs.api.runs import PipelineRunView, PipelineView, StepRunView
from artifactfs.api.stores import get_store
from artifactfs.errors import AlreadyExistsError, ArtifactfsError, NotFoundError
from artifactfs.index import artifacts as artifact_rows
from artifactfs.index import get_index
from artifactfs.index import pipelines as pipeline_rows
from artifactfs.index import summaries as summary_rows
from artifactfs.index import tags as tag_rules
from artifactfs.index.models import Artifact, VersionRow, StepIO, StepRun
from artifactfs.index.models import Tag as TagRow
from artifactfs.index.generation import bump_generation
from artifactfs.stores.base import ArtifactStore

#: ZenML's page size default.
PAGE_SIZE_DEFAULT = 20


class Page(list):
    """One page of results: a list (ZenML's ``Page`` is iterable and sized)
    with ZenML's page attributes."""

    def __init__(self, items: Iterable, index: int = 1, max_size: int = PAGE_SIZE_DEFAULT, total: int = 0) -> None:
        super().__init__(items)
        self.index, self.max_size, self.total = index, max_size, total

    @property
    def items(self) -> list:
        """The entries of this page (ZenML's ``Page.items``)."""
        return list(self)

    @property
    def size(self) -> int:
        """How many entries this page holds."""
        return len(self)

    @property
    def total_pages(self) -> int:
        """How many pages of ``max_size`` the whole list makes (at least 1)."""
        return max(1, -(-self.total // self.max_size)) if self.max_size else 1


def _page(found: list, page: int, size: int | None) -> Page:
    if not size:
        return Page(found, 1, len(found) or PAGE_SIZE_DEFAULT, len(found))
    start = (max(page, 1) - 1) * size
    return Page(found[start:start + size], page, size, len(found))


def artifact_id(name: str) -> str:
    """A stable id for an artifact name (the index keys artifacts by name)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"artifactfs:artifact:{name}"))


@dataclass
class ArtifactView:
    """An artifact (all versions of a name), as ZenML's ``ArtifactResponse``."""

    id: str
    name: str
    created: Any
    _pk: int = field(default=0, repr=False)

    @property
    def versions(self) -> dict[str, ArtifactVersion]:
        """Live versions by version string, oldest first."""
        with get_index().read() as session:
            found = artifact_rows.list_versions(session, self.name, newest_first=False)
            return {row.version: ArtifactVersion.from_row(row) for row in found}

    @property
    def latest_version_name(self) -> str | None:
        """The newest version's name, or None when the artifact has none."""
        return next(reversed(self.versions), None)

    @property
    def latest_version_id(self) -> str | None:
        """The newest version's id, or None when the artifact has none."""
        versions = self.versions
        return versions[next(reversed(versions))].id if versions else None

    @property
    def tags(self) -> list[tag_rules.Tag]:
        """The artifact's own tags (``t.name``; each also its name as a ``str``)."""
        with get_index().read() as session:
            return tag_rules.tags_of(session, "artifact", [self._pk]).get(self._pk, [])

    @property
    def has_custom_name(self) -> bool:
        """Whether a user named the artifact (an unnamed step output is ``<pipeline>::<step>::<output>``)."""
        return "::" not in self.name  # unnamed step outputs are "<pipeline>::<step>::<output>"

    def load(self) -> Any:
        """The newest version's value."""
        return get_artifact_version(self.name).load()

    @classmethod
    def of_name(cls, name: str) -> ArtifactView:
        """The artifact named so; with only its name and id when no such row is left."""
        with get_index().read() as session:
            row = session.scalar(select(Artifact).where(Artifact.name == name))
            return cls.from_row(row) if row is not None else cls(id=artifact_id(name), name=name, created=None)

    @classmethod
    def from_row(cls, row: Artifact) -> ArtifactView:
        """The view of an artifact row of the index."""
        return cls(id=artifact_id(row.name), name=row.name, created=row.created_at, _pk=row.id)


@dataclass(frozen=True)
class ActiveStack:
    """A read-only view of what ZenML calls the active stack: here only its
    artifact store, the active store (``artifact_store.path`` is its root)."""

    name: str
    artifact_store: ArtifactStore


class Client:
    """Read access to everything the index records, and ZenML's artifact
    management calls."""

    @property
    def active_stack(self) -> ActiveStack:
        """ZenML's active stack: here, the active store as its artifact store."""
        store = get_store()
        return ActiveStack(name=store.name, artifact_store=store)

    @property
    def active_stack_model(self) -> ActiveStack:
        """ZenML's name for :attr:`active_stack`."""
        return self.active_stack

    def get_store(self, name: str | None = None) -> ArtifactStore:
        """The named store, or the active one (``api.stores.get_store``)."""
        return get_store(name)

    # -- artifacts ----------------------------------------------------------------------

    def get_artifact(self, name_id_or_prefix: str | uuid.UUID, project: Any = None, hydrate: bool = False) -> ArtifactView:
        """By name, by id (see :func:`artifact_id`) or by a unique id prefix."""
        key = str(name_id_or_prefix)
        with get_index().read() as session:
            row = session.scalar(select(Artifact).where(Artifact.name == key))
            if row is None:
                matches = [a for a in session.scalars(select(Artifact)) if artifact_id(a.name).startswith(key.lower())]
                if len(matches) > 1:
                    raise NotFoundError(f"artifact id prefix {key!r} is ambiguous", "give more characters of the id")
                row = matches[0] if matches and len(key) >= 4 else None
            if row is None:
                raise NotFoundError(f"no artifact named {key!r} and no artifact with that id",
                                    "list artifacts with `artifactfs artifact list`")
            return ArtifactView.from_row(row)

    def list_artifacts(
        self,
        sort_by: str = "created",
        page: int = 1,
        size: int | None = None,
        name: str | None = None,
        has_custom_name: bool | None = None,
        tag: str | None = None,
        tags: Iterable[str] | str | None = None,
        **ignored: Any,
    ) -> Page:
        """Artifacts with at least one live version (ZenML's filters: name,
        tag/tags, has_custom_name; sort_by "created" or "name", "desc:"
        reverses). Each also tells ``newest`` version and total ``size``."""
        with get_index().read() as session:
            summaries = {s.name: s for s in summary_rows.list_artifacts(session)}
            found = [ArtifactView.from_row(a) for a in session.scalars(select(Artifact).where(Artifact.name.in_(summaries)))]
        wanted = _as_set(tags) | _as_set(tag)
        found = [a for a in found if (name is None or a.name == name)
                 and (has_custom_name is None or a.has_custom_name == has_custom_name)
                 and (not wanted or wanted <= set(a.tags))]
        for view in found:
            view.newest, view.size = summaries[view.name].newest, summaries[view.name].size
            view.version_count = summaries[view.name].versions
        return _page(_sorted(found, sort_by), page, size)

    def update_artifact(
        self,
        name_id_or_prefix: str | uuid.UUID,
        new_name: str | None = None,
        add_tags: Iterable[str] | None = None,
        remove_tags: Iterable[str] | None = None,
        has_custom_name: bool | None = None,
        project: Any = None,
    ) -> ArtifactView:
        """Rename an artifact, or tag it as a whole (artifact tags)."""
        artifact = self.get_artifact(name_id_or_prefix)

        def update(session) -> ArtifactView:
            row = session.get(Artifact, artifact._pk)
            if new_name is not None and new_name != row.name:
                artifact_rows.check_name(new_name)
                if session.scalar(select(Artifact.id).where(Artifact.name == new_name)) is not None:
                    raise AlreadyExistsError(f"an artifact named {new_name!r} exists", "pick another name")
                row.name = new_name
            _tag_artifact(session, row.id, add_tags or (), remove_tags or ())
            bump_generation(session)
            return ArtifactView.from_row(row)

        return get_index().run_write(update)

    def delete_artifact(self, name_id_or_prefix: str | uuid.UUID, project: Any = None) -> None:
        """Delete an artifact that has no versions left (as ZenML: delete or
        prune its versions first)."""
        artifact = self.get_artifact(name_id_or_prefix)

        def delete(session) -> None:
            if session.scalar(select(VersionRow.id).where(VersionRow.artifact_id == artifact._pk).limit(1)) is not None:
                raise ArtifactfsError(
                    f"artifact {artifact.name!r} still has versions",
                    "delete them with Client().delete_artifact_version(...) or Client().prune_artifacts() first",
                )
            session.delete(session.get(Artifact, artifact._pk))
            bump_generation(session)

        get_index().run_write(delete)

    def prune_artifacts(self, only_versions: bool = True, delete_from_artifact_store: bool = False,
                        project: Any = None) -> None:
        """Delete every version no step run links (and, unless
        ``only_versions``, the artifacts left without versions); payloads
        only with ``delete_from_artifact_store``. Goes through condemn ->
        sweep -> forget (api/deleting.py)."""
        deleting.delete_versions(deleting.unused_version_ids(), True, delete_from_artifact_store)
        if not only_versions:
            get_index().run_write(_delete_empty_artifacts)

    # -- versions -----------------------------------------------------------------------

    def get_artifact_version(
        self, name_id_or_prefix: str | uuid.UUID, version: str | int | None = None, project: Any = None,
        hydrate: bool = True,
    ) -> ArtifactVersion:
        """A version by name, id or id prefix (``project`` and ``hydrate``: ZenML's, ignored)."""
        return get_artifact_version(name_id_or_prefix, version)

    def list_artifact_versions(
        self,
        name: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
        *,
        sort_by: str = "created",
        page: int = 1,
        size: int | None = None,
        artifact: str | uuid.UUID | None = None,
        version: str | int | None = None,
        type: str | None = None,  # noqa: A002 - ZenML's filter name
        data_type: str | None = None,
        uri: str | None = None,
        materializer: str | None = None,
        tags: Iterable[str] | str | None = None,
        only_unused: bool = False,
        pipeline_run: str | None = None,
        has_custom_name: bool | None = None,
        **ignored: Any,
    ) -> Page:
        """Live versions, newest first (``sort_by="created"`` is oldest first,
        as in ZenML; the positional ``name, tag, limit`` are artifactfs's)."""
        if artifact is not None:
            name = self.get_artifact(artifact).name
        with get_index().read() as session:
            found = artifact_rows.list_versions(session, name, tag, None)
            if pipeline_run is not None:
                run = pipeline_rows.find_run(session, str(pipeline_run))
                ids = set(session.scalars(select(StepIO.version_id).join(StepRun, StepRun.id == StepIO.step_run_id)
                                          .where(StepRun.run_id == run.id)))
                found = [r for r in found if r.id in ids]
            if only_unused:
                used = set(session.scalars(select(StepIO.version_id)))
                found = [r for r in found if r.id not in used]
            views = [ArtifactVersion.from_row(r) for r in found]
        wanted = _as_set(tags)
        views = [v for v in views if (version is None or v.version == str(version))
                 and (type is None or v.artifact_type == str(getattr(type, "value", type)))
                 and (data_type is None or v.data_type == data_type)
                 and (uri is None or v.uri == uri)
                 and (materializer is None or v.materializer == materializer)
                 and (has_custom_name is None or ("::" not in v.name) == has_custom_name)
                 and (not wanted or wanted <= set(v.tags))]
        if sort_by != "created" or size is not None or page != 1:
            return _page(_sorted(views, sort_by), page, size)
        return Page(views[:limit] if limit else views, 1, len(views) or PAGE_SIZE_DEFAULT, len(views))

    def update_artifact_version(
        self,
        name_id_or_prefix: str | uuid.UUID,
        version: str | int | None = None,
        add_tags: Iterable[str] | None = None,
        remove_tags: Iterable[str] | None = None,
        project: Any = None,
    ) -> ArtifactVersion:
        """Add and remove tags of a version (ZenML's call; ``project``: ignored); the version."""
        found = get_artifact_version(name_id_or_prefix, version)
        if add_tags:
            found.add_tags(add_tags)
        if remove_tags:
            found.remove_tags(remove_tags)
        return found

    # -- tags (ZenML's create_tag / get_tag / list_tags / update_tag / delete_tag) --------------

    def create_tag(self, name: str, exclusive: bool = False, color: str | None = None) -> tag_rules.Tag:
        """A new tag (AlreadyExistsError when the name is taken)."""
        def create(session) -> None:
            if session.scalar(select(TagRow.id).where(TagRow.name == name)) is not None:
                raise AlreadyExistsError(f"a tag named {name!r} exists", "use Client().update_tag() to change it")
            tag_rules.tag_rows(session, [tag_rules.Tag(name, exclusive=exclusive)])

        get_index().run_write(create)
        return self.get_tag(name)

    def get_tag(self, tag_name_or_id: str, hydrate: bool = True) -> tag_rules.Tag:
        """A tag by name or id."""
        with get_index().read() as session:
            row = session.scalars(select(TagRow).where(TagRow.name == str(tag_name_or_id))).first()
            if row is None:  # an id: a hash of the name
                row = next((r for r in session.scalars(select(TagRow))
                            if tag_rules.tag_id(r.name) == str(tag_name_or_id)), None)
            if row is None:
                known = session.scalars(select(TagRow.name).order_by(TagRow.name))
                raise NotFoundError(f"no tag named {str(tag_name_or_id)!r}", "list tags with Client().list_tags()",
                                    name=str(tag_name_or_id), known=known)
            return tag_rules.Tag(row.name, exclusive=bool(row.exclusive))

    def list_tags(self, name: str | None = None, exclusive: bool | None = None, **_filters: Any) -> Page:
        """Every tag, by name; ``name``/``exclusive`` filter them."""
        with get_index().read() as session:
            rows = session.execute(select(TagRow.name, TagRow.exclusive).order_by(TagRow.name)).all()
        tags = [tag_rules.Tag(n, exclusive=bool(e)) for n, e in rows
                if (name is None or n == name) and (exclusive is None or bool(e) == exclusive)]
        return Page(tags, 1, len(tags) or PAGE_SIZE_DEFAULT, len(tags))

    def update_tag(self, tag_name_or_id: str, name: str | None = None, exclusive: bool | None = None,
                   color: str | None = None) -> tag_rules.Tag:
        """Rename a tag or change whether it is exclusive; making it exclusive
        is refused while two versions of one artifact or two runs of one
        pipeline hold it (ZenML's rule)."""
        current = self.get_tag(tag_name_or_id)

        def update(session) -> None:
            row = session.scalars(select(TagRow).where(TagRow.name == current.name)).one()
            if exclusive and not row.exclusive:
                tag_rules.check_can_be_exclusive(session, row.id, row.name)
            if exclusive is not None:
                row.exclusive = exclusive
            if name is not None:
                row.name = artifact_rows.check_name(name, "tag")
            bump_generation(session)

        get_index().run_write(update)
        return self.get_tag(name or current.name)

    def delete_tag(self, tag_name_or_id: str) -> None:
        """Delete a tag and take it off everything that holds it."""
        current = self.get_tag(tag_name_or_id)

        def delete(session) -> None:
            session.delete(session.scalars(select(TagRow).where(TagRow.name == current.name)).one())
            bump_generation(session)

        get_index().run_write(delete)

    def delete_artifact_version(
        self,
        name_id_or_prefix: str | uuid.UUID,
        version: str | int | None = None,
        delete_metadata: bool = True,
        delete_from_artifact_store: bool = False,
        project: Any = None,
        server_side: bool = False,
    ) -> None:
        """Delete a version (refused, with the run to delete first, when a
        step run read or wrote it). See api/deleting.py for the protocol."""
        found = get_artifact_version(name_id_or_prefix, version)
        deleting.delete_versions([found._pk], delete_metadata, delete_from_artifact_store)

    # -- runs -----------------------------------------------------------------------------

    def get_pipeline_run(self, name_id_or_prefix: str | uuid.UUID) -> PipelineRunView:
        """A pipeline run by name, id or id prefix."""
        return runs.get_pipeline_run(str(name_id_or_prefix))

    def list_pipeline_runs(self, pipeline: str | None = None, limit: int | None = None, sort_by: str = "desc:created",
                           page: int = 1, size: int | None = None, name: str | None = None,
                           pipeline_name: str | None = None, status: str | None = None,
                           tags: Iterable[str] | str | None = None, **ignored: Any) -> Page:
        """Runs, newest first (ZenML's ``sort_by="desc:created"``); ZenML's
        filters: name, pipeline_name, status, tags (``"startswith:c"`` ...)."""
        found = runs.list_pipeline_runs(pipeline or pipeline_name, None if tags or status or name else limit)
        wanted = str(getattr(status, "value", status)) if status is not None else None
        found = [r for r in found if (name is None or r.name == name) and (wanted is None or r.status == wanted)
                 and (tags is None or tag_rules.matches_filters([t.name for t in r.tags], tags))]
        found = found[:limit] if limit else found
        if sort_by != "desc:created" or size is not None or page != 1:
            return _page(_sorted(found, sort_by.replace("created", "start_time")), page, size)
        return _page(found, 1, None)

    def delete_pipeline_run(self, name_id_or_prefix: str | uuid.UUID) -> PipelineRunView:
        """Remove a run's rows; its artifacts stay until the pruner finds them unreferenced."""
        return runs.delete_pipeline_run(str(name_id_or_prefix))

    def get_run_step(self, step_run_id: str | uuid.UUID, hydrate: bool = True) -> StepRunView:
        """A step run by its id (ZenML's ``get_run_step``)."""
        return runs.get_step_run(step_run_id)

    def list_run_steps(
        self,
        sort_by: str = "created",
        page: int = 1,
        size: int | None = None,
        name: str | None = None,
        pipeline_run_id: str | uuid.UUID | None = None,
        status: str | None = None,
        cache_key: str | None = None,
        code_hash: str | None = None,
        **ignored: Any,
    ) -> Page:
        """Step runs (ZenML's filters: name, pipeline_run_id, status,
        cache_key, code_hash; sort_by "created" or "name", "desc:" reverses)."""
        found = runs.list_step_runs(None if pipeline_run_id is None else str(pipeline_run_id), name)
        wanted = str(getattr(status, "value", status)) if status is not None else None
        found = [s for s in found if (wanted is None or s.status == wanted)
                 and (cache_key is None or s.cache_key == cache_key)
                 and (code_hash is None or s.code_hash == code_hash)]
        return _page(_sorted(found, _by_start(sort_by)), page, size)

    # -- pipelines --------------------------------------------------------------------------

    def get_pipeline(self, name_id_or_prefix: str | uuid.UUID, project: Any = None, hydrate: bool = True) -> PipelineView:
        """A pipeline that has run, by name, id or unique id prefix."""
        return runs.get_pipeline(name_id_or_prefix)

    def list_pipelines(self, sort_by: str = "created", page: int = 1, size: int | None = None,
                       name: str | None = None, latest_run_status: str | None = None, **ignored: Any) -> Page:
        """Pipelines that have run (ZenML's filters: name, latest_run_status;
        sort_by "name" ("desc:" reverses); otherwise in name order)."""
        found = [p for p in runs.list_pipelines() if name is None or p.name == name]
        if latest_run_status is not None:
            wanted = str(getattr(latest_run_status, "value", latest_run_status))
            found = [p for p in found if p.latest_run_status == wanted]
        return _page(_sorted(found, sort_by) if sort_by.endswith("name") else found, page, size)

    # -- metadata ---------------------------------------------------------------------------

    def create_run_metadata(self, metadata: dict[str, Any], resources: list[RunMetadataResource],
                            stack_component_id: Any = None, publisher_step_id: Any = None) -> None:
        """Attach ``metadata`` to each resource (a pipeline run, step run or
        artifact version, by id), as ZenML's ``create_run_metadata``."""
        create_run_metadata(metadata, resources)


def _as_set(values: Iterable[str] | str | None) -> set[str]:
    if values is None:
        return set()
    return {values} if isinstance(values, str) else set(values)


def _sorted(items: list, sort_by: str) -> list:
    order, _, key = sort_by.rpartition(":")
    attribute = {"created": "created_at", "name": "name", "version": "version"}.get(key, key)
    try:
        result = sorted(items, key=lambda item: getattr(item, attribute, None) or getattr(item, "created", None))
    except TypeError:
        result = list(items)
    return result[::-1] if order == "desc" else result


def _by_start(sort_by: str) -> str:
    """Step runs are "created" when they start."""
    order, _, key = sort_by.rpartition(":")
    return f"{order}:start_time" if key == "created" else sort_by


def _tag_artifact(session, artifact_pk: int, add: Iterable[Any], remove: Iterable[Any]) -> None:
    tag_rules.attach(session, "artifact", [artifact_pk], tag_rules.as_tags(list(add)))
    if remove:
        tag_rules.untag(session, "artifact", artifact_pk, remove)


def _delete_empty_artifacts(session) -> None:
    for row in list(session.scalars(select(Artifact).where(~Artifact.id.in_(select(VersionRow.artifact_id))))):
        session.delete(row)
    bump_generation(session)
