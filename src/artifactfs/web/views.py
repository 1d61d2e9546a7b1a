"""Pictures of page data: the step graph of a run and the lineage graph
around a version, as nodes and edges handed to ``graph.layout``."""

from __future__ import annotations

from artifactfs.index.browse import RunDetail, StepRef, VersionLink
from artifactfs.index.lineage import Lineage
from artifactfs.units import human_bytes
from artifactfs.web.graph import Edge, Layout, Node, layout


def version_node(ref: VersionLink, root: bool = False) -> Node:
    data_type = (ref.data_type or "").rsplit(".", 1)[-1]
    subtitle = " · ".join(part for part in (data_type, human_bytes(ref.size)) if part)
    return Node(f"v:{ref.id}", "artifact", f"{ref.artifact}:{ref.version}", subtitle, f"/versions/{ref.id}",
                root=root)


def step_node(ref: StepRef, with_run: bool) -> Node:
    subtitle = f"{ref.status} · {ref.run}" if with_run else ref.status
    return Node(f"s:{ref.id}", "step", ref.name, subtitle, f"/steps/{ref.id}", ref.status)


def run_graph(run: RunDetail) -> Layout:
    """A run's steps with the versions they read and wrote, left to right."""
    nodes: dict[str, Node] = {}
    edges = []
    for step in run.steps:
        ref = StepRef(step.id, step.name, step.status, step.run, step.run_id, step.pipeline)
        nodes[f"s:{step.id}"] = step_node(ref, with_run=False)
    for step in run.steps:
        for direction, links in (("input", step.inputs), ("output", step.outputs)):
            for link in links:
                node = nodes.setdefault(f"v:{link.version.id}", version_node(link.version))
                pair = (node.id, f"s:{step.id}") if direction == "input" else (f"s:{step.id}", node.id)
                edges.append(Edge(*pair, link.name))
    return layout(list(nodes.values()), edges)


def lineage_graph(lineage: Lineage) -> Layout:
    """The walk's versions and step runs; the starting version stands out."""
    several_runs = len({s.run_id for s in lineage.steps}) > 1
    nodes = [version_node(v, root=v.id == lineage.root) for v in lineage.versions]
    nodes += [step_node(s, several_runs) for s in lineage.steps]
    edges = [Edge(f"v:{e.version}", f"s:{e.step}", e.name) if e.direction == "input"
             else Edge(f"s:{e.step}", f"v:{e.version}", e.name) for e in lineage.edges]
    return layout(nodes, edges)
