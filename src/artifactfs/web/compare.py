"""Two versions, or two runs, side by side: what each holds under each
key (facts, metadata, files; parameters, step outputs) and whether the two
differ, as plain records the compare pages show and the API returns.
Reading is ``index.browse``'s job; this module only lines the two up."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from artifactfs.index import browse
from artifactfs.index.browse import FileItem, RunDetail, RunItem, VersionDetail, VersionItem, VersionLink

State = Literal["same", "changed", "only_a", "only_b"]

#: Files of each version that a comparison lines up at most (two manifest pages).
MAX_FILES = 2 * browse.MAX_LIMIT


@dataclass(frozen=True)
class Difference:
    """One key: its value in ``a`` and in ``b`` (``None`` where absent) and how they compare."""

    key: str
    a: Any
    b: Any
    state: State


@dataclass(frozen=True)
class FileDifference:
    path: str
    a: FileItem | None
    b: FileItem | None
    state: State


@dataclass(frozen=True)
class VersionComparison:
    a: VersionItem
    b: VersionItem
    facts: list[Difference]
    metadata: list[Difference]
    files: list[FileDifference]
    files_cut: bool  # a version has more than MAX_FILES files: only the first ones (by path) are compared
    differences: int  # keys and files that differ


@dataclass(frozen=True)
class StepDifference:
    """One step name: its status and its outputs in each run."""

    name: str
    status: Difference
    outputs: list[Difference]  # values: VersionLink


@dataclass(frozen=True)
class RunComparison:
    a: RunItem
    b: RunItem
    parameters: list[Difference]
    steps: list[StepDifference]
    differences: int


def line_up(a: dict[str, Any], b: dict[str, Any], same: Callable[[Any, Any], bool] = lambda x, y: x == y
            ) -> list[Difference]:
    """Every key of ``a`` and ``b``, in ``a``'s order then ``b``'s new ones."""
    keys = list(a) + [k for k in b if k not in a]
    return [Difference(k, a.get(k), b.get(k), _state(k in a, k in b, lambda: same(a[k], b[k])))  # noqa: B023 - called at once
            for k in keys]


def _state(in_a: bool, in_b: bool, same: Callable[[], bool]) -> State:
    if not in_b:
        return "only_a"
    if not in_a:
        return "only_b"
    return "same" if same() else "changed"


def _files(session: Session, version: str) -> tuple[list[FileItem], bool]:
    files: list[FileItem] = []
    after = None
    row_id = browse.version_payload(session, version)[0]
    while len(files) < MAX_FILES:
        page = browse.list_files(session, row_id, after, browse.MAX_LIMIT)
        files += page.items
        if page.next_cursor is None:
            return files, False
        after = page.next_cursor
    return files, True


def versions(session: Session, a: VersionDetail, b: VersionDetail) -> VersionComparison:
    """``a`` and ``b`` side by side: facts, metadata, files (path, size, digest)."""
    facts = line_up(_facts(a), _facts(b))
    metadata = line_up(a.version.metadata, b.version.metadata)
    files_a, cut_a = _files(session, a.version.id)
    files_b, cut_b = _files(session, b.version.id)
    by_a, by_b = {f.path: f for f in files_a}, {f.path: f for f in files_b}
    files = [FileDifference(path, by_a.get(path), by_b.get(path),
                            _state(path in by_a, path in by_b,
                                   lambda: _same_file(by_a[path], by_b[path])))  # noqa: B023 - called at once
             for path in sorted(by_a.keys() | by_b.keys())]
    return VersionComparison(a.version, b.version, facts, metadata, files, cut_a or cut_b,
                             _count(facts, metadata, files))


def _facts(detail: VersionDetail) -> dict[str, Any]:
    v = detail.version
    return {"artifact": v.artifact, "version": v.version, "size": v.size, "files": v.file_count,
            "content hash": detail.content_hash, "data type": v.data_type, "materializer": v.materializer,
            "store": v.store, "saved as": v.save_type, "tags": ", ".join(v.tags) or None,
            "producer": f"{v.producer.name} in {v.producer.run}" if v.producer else None}


def _same_file(a: FileItem, b: FileItem) -> bool:
    """Same size and same digest."""
    return a.size == b.size and a.digest == b.digest


def runs(a: RunDetail, b: RunDetail) -> RunComparison:
    """``a`` and ``b`` side by side: parameters, and for each step name its
    status and outputs (the same version, or another)."""
    parameters = line_up(a.parameters, b.parameters)
    steps_a, steps_b = {s.name: s for s in a.steps}, {s.name: s for s in b.steps}
    steps = []
    for name in list(steps_a) + [n for n in steps_b if n not in steps_a]:
        sa, sb = steps_a.get(name), steps_b.get(name)
        status = Difference("status", sa and sa.status, sb and sb.status,
                            _state(sa is not None, sb is not None,
                                   lambda: sa.status == sb.status))  # noqa: B023 - called at once
        outputs = line_up({o.name: o.version for o in (sa.outputs if sa else [])},
                          {o.name: o.version for o in (sb.outputs if sb else [])}, _same_version)
        steps.append(StepDifference(name, status, outputs))
    return RunComparison(a.run, b.run, parameters, steps,
                         _count(parameters, [s.status for s in steps], [o for s in steps for o in s.outputs]))


def _same_version(a: VersionLink, b: VersionLink) -> bool:
    return a.id == b.id


def _count(*groups: Iterable) -> int:
    return sum(1 for group in groups for item in group if item.state != "same")
