"""Lineage of versions: as plain rows for users and the CLI (``links_of``), and
as a graph of artifact versions and step runs (``lineage_graph``) that can be
written as JSON, as Graphviz dot text (made here), or drawn as SVG/PNG by
Graphviz's ``dot`` program.

Edges follow the data: ``version -> step run`` for an input, ``step run ->
version`` for an output. A step run in the graph is shown whole (all its
inputs and outputs); the walk goes on only in the direction asked for.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from artifactfs.api.artifacts import ArtifactVersion
from artifactfs.errors import ArtifactfsError
from artifactfs.index import get_index
from artifactfs.index import pipelines as pipeline_rows
from artifactfs.index.lineage import version_links
from artifactfs.index.models import VersionRow
from artifactfs.index.models import StepIO, StepRun

FORMATS = ("dot", "svg", "png", "json")
DOT_TIMEOUT_S = 120


def links_of(version: ArtifactVersion) -> list[tuple[str, str, str, str, str]]:
    """``(direction, pipeline, run, step, name)`` for every step run that
    produced (output) or read (input) the version."""
    with get_index().read() as session:
        return [(l.direction, l.pipeline, l.run, l.step, l.name) for l in version_links(session, version._pk)]


# -- the graph --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineageNode:
    id: str  # "artifact:<version uuid>" or "step:<step run uuid>"
    kind: str  # "artifact" | "step"
    label: str
    attrs: dict[str, Any]


@dataclass(frozen=True)
class LineageEdge:
    source: str
    target: str
    kind: str  # "input" (version -> step run) | "output" (step run -> version)
    name: str  # the step's name for the input or output


@dataclass
class LineageGraph:
    root: str
    upstream: bool
    downstream: bool
    depth: int | None
    nodes: dict[str, LineageNode] = field(default_factory=dict)
    edges: list[LineageEdge] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The graph as JSON-ready dicts (root, upstream, downstream, nodes and edges)."""
        return {
            "root": self.root,
            "upstream": self.upstream,
            "downstream": self.downstream,
            "depth": self.depth,
            "nodes": [{"id": n.id, "kind": n.kind, "label": n.label, **n.attrs} for n in self.nodes.values()],
            "edges": [{"source": e.source, "target": e.target, "kind": e.kind, "name": e.name} for e in self.edges],
        }

    def to_dot(self) -> str:
        """Graphviz dot text: artifacts as notes, step runs as rounded boxes,
        the starting version in bold, cached step runs dashed."""
        lines = [
            "digraph lineage {",
            '  graph [rankdir=LR, fontname="Helvetica", nodesep=0.3, ranksep=0.5, bgcolor="white"];',
            '  node [fontname="Helvetica", fontsize=11, style=filled, penwidth=1];',
            '  edge [fontname="Helvetica", fontsize=9, color="#555555", fontcolor="#555555"];',
        ]
        runs = sorted({n.attrs["run"] for n in self.nodes.values() if n.kind == "step"})
        if len(runs) == 1:  # one pipeline run: named once, as the picture's title
            lines.insert(2, f"  label={_quote('pipeline run ' + runs[0])}; labelloc=t; fontsize=12;")
        for node in self.nodes.values():
            label = node.label
            if node.kind == "artifact":
                style = 'shape=note, fillcolor="#dbe9fb", color="#3b6ea8"'
            else:
                dashed = ",dashed" if node.attrs.get("status") == "cached" else ""
                style = f'shape=box, style="rounded,filled{dashed}", fillcolor="#fbeed0", color="#a8843b"'
                if len(runs) > 1:
                    label += "\n" + node.attrs["run"]
            if node.id == self.root:
                style += ", penwidth=2.5"
            lines.append(f"  {_quote(node.id)} [label={_quote(label)}, {style}];")
        for edge in self.edges:
            lines.append(f"  {_quote(edge.source)} -> {_quote(edge.target)} [label={_quote(edge.name)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    """A dot double-quoted string; newlines become centered line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "")
    return '"' + escaped.replace("\n", "\\n") + '"'


def lineage_graph(
    version: ArtifactVersion, upstream: bool = True, downstream: bool = True, depth: int | None = None
) -> LineageGraph:
    """The versions and step runs around ``version``: ``upstream`` through the
    step runs that produced it and their inputs, ``downstream`` through the
    step runs that read it and their outputs, at most ``depth`` step runs
    away (``None``: no limit)."""
    if depth is not None and depth < 0:
        raise ArtifactfsError(f"depth must be 0 or more, got {depth}")
    graph = LineageGraph(_version_id(version.id), upstream, downstream, depth)
    with get_index().read() as session:
        root = session.get(VersionRow, version._pk)
        graph.nodes[graph.root] = _version_node(root)
        seen_steps: set[int] = set()
        edges: set[tuple[str, str, str, str]] = set()
        for going_up in [d for d, wanted in ((True, upstream), (False, downstream)) if wanted]:
            queue, visited = deque([(root.id, 0)]), {root.id}
            while queue:
                version_id, hops = queue.popleft()
                if depth is not None and hops >= depth:
                    continue
                for step in _steps_linked(session, version_id, "output" if going_up else "input"):
                    _add_step(session, graph, step, seen_steps, edges)
                    following = pipeline_rows.step_links(session, step.id, "input" if going_up else "output")
                    for _, linked in following:
                        if linked.id not in visited:
                            visited.add(linked.id)
                            queue.append((linked.id, hops + 1))
    return graph


def _steps_linked(session, version_id: int, direction: str) -> list[StepRun]:
    """Step runs that wrote (``output``) or read (``input``) a version."""
    return list(session.scalars(
        select(StepRun).join(StepIO, StepIO.step_run_id == StepRun.id)
        .where(StepIO.version_id == version_id, StepIO.direction == direction)
        .order_by(StepRun.id)
    ))


def _add_step(session, graph: LineageGraph, step: StepRun, seen: set[int], edges: set) -> None:
    """A step run with all its inputs and outputs (once)."""
    if step.id in seen:
        return
    seen.add(step.id)
    node_id = f"step:{step.uuid}"
    graph.nodes[node_id] = LineageNode(
        node_id, "step", step.name + (" (cached)" if step.status == "cached" else ""),
        {"step": step.name, "run": step.run.name, "pipeline": step.run.pipeline.name, "status": step.status,
         "step_run_id": step.uuid},
    )
    for direction in ("input", "output"):
        for name, row in pipeline_rows.step_links(session, step.id, direction):
            version_id = _version_id(row.uuid)
            if version_id not in graph.nodes:
                graph.nodes[version_id] = _version_node(row)
            source, target = (version_id, node_id) if direction == "input" else (node_id, version_id)
            key = (source, target, direction, name)
            if key not in edges:
                edges.add(key)
                graph.edges.append(LineageEdge(source, target, direction, name))


def _version_id(uuid: str) -> str:
    return f"artifact:{uuid}"


def _version_node(row: VersionRow) -> LineageNode:
    short_type = (row.data_type or "").rsplit(".", 1)[-1]
    label = f"{row.artifact.name}:{row.version}" + (f"\n{short_type}" if short_type else "")
    return LineageNode(
        _version_id(row.uuid), "artifact", label,
        {"name": row.artifact.name, "version": row.version, "version_id": row.uuid, "data_type": row.data_type,
         "size": row.size, "store": row.store.name, "save_type": row.save_type, "state": row.state},
    )


# -- writing -----------------------------------------------------------------------------------


def render(graph: LineageGraph, fmt: str, path: str | Path | None = None) -> str | bytes:
    """The graph as ``json``/``dot`` text or ``svg``/``png`` bytes (drawn by
    Graphviz's ``dot`` program); written to ``path`` when given."""
    if fmt not in FORMATS:
        raise ArtifactfsError(f"unknown lineage format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    if fmt == "json":
        result: str | bytes = json.dumps(graph.to_json(), indent=2) + "\n"
    elif fmt == "dot":
        result = graph.to_dot()
    else:
        result = _run_dot(graph.to_dot(), fmt)
    if path is not None:
        target = Path(path)
        if isinstance(result, bytes):
            target.write_bytes(result)
        else:
            target.write_text(result)
    return result


def _run_dot(text: str, fmt: str) -> bytes:
    program = shutil.which("dot")
    if program is None:
        raise ArtifactfsError(
            f"drawing {fmt} needs Graphviz's `dot` program, which is not installed",
            "install Graphviz (`apt-get install graphviz`), or write --format dot or json",
        )
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=text.encode(), capture_output=True,
                              timeout=DOT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise ArtifactfsError(f"Graphviz took more than {DOT_TIMEOUT_S} s", "limit the graph with --depth") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise ArtifactfsError(f"Graphviz failed: {detail[-1] if detail else f'exit code {done.returncode}'}")
    return done.stdout


__all__ = ["FORMATS", "LineageEdge", "LineageGraph", "LineageNode", "lineage_graph", "links_of", "render"]
