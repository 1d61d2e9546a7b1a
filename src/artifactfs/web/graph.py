"""Lays out a graph of step runs and artifact versions for an SVG picture,
in Python on the server (no Graphviz): left to right in layers, each node
after everything it depends on, crossings reduced by barycenter sweeps, and
each node placed near its neighbours. Drawing is the template's job
(``templates/graph.html``); panning is the browser's (``static/app.js``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

NODE_WIDTH = 190
NODE_HEIGHT = 44
COLUMN_GAP = 70
ROW_GAP = 18
MARGIN = 20
SWEEPS = 6
CHAR_WIDTH = 7.0  # of the 12 px sans-serif labels, for cutting them to fit


@dataclass
class Node:
    id: str
    kind: str  # "artifact" | "step"
    title: str
    subtitle: str = ""
    href: str = ""
    status: str = ""
    root: bool = False
    x: float = 0.0
    y: float = 0.0
    width: int = NODE_WIDTH
    height: int = NODE_HEIGHT

    @property
    def short_title(self) -> str:
        return clip(self.title, self.width - 16)

    @property
    def short_subtitle(self) -> str:
        return clip(self.subtitle, self.width - 16)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""


@dataclass
class Layout:
    nodes: list[Node]
    edges: list[tuple[Edge, str]]  # the edge and its SVG path
    width: float
    height: float
    extra: dict = field(default_factory=dict)


def clip(text: str, pixels: float) -> str:
    room = max(4, int(pixels / CHAR_WIDTH))
    return text if len(text) <= room else text[: room - 1] + "…"


def layout(nodes: list[Node], edges: list[Edge]) -> Layout:
    """Positions for ``nodes`` (kept in their given order where nothing
    else decides) and a path for each edge between known nodes."""
    by_id = {n.id: n for n in nodes}
    edges = [e for e in edges if e.source in by_id and e.target in by_id and e.source != e.target]
    ranks = _ranks(nodes, edges)
    columns = _order(nodes, edges, ranks)
    _place(columns, edges, by_id)
    paths = [(e, _path(by_id[e.source], by_id[e.target])) for e in edges]
    width = max((n.x + n.width for n in nodes), default=0) + MARGIN
    height = max((n.y + n.height for n in nodes), default=0) + MARGIN
    return Layout(nodes, paths, width, height)


def _ranks(nodes: list[Node], edges: list[Edge]) -> dict[str, int]:
    """Longest path from a source; a cycle (never in lineage) stops after
    as many rounds as there are nodes."""
    rank = {n.id: 0 for n in nodes}
    for _ in range(len(nodes)):
        changed = False
        for edge in edges:
            if rank[edge.target] < rank[edge.source] + 1:
                rank[edge.target] = rank[edge.source] + 1
                changed = True
        if not changed:
            break
    return rank


def _order(nodes: list[Node], edges: list[Edge], ranks: dict[str, int]) -> list[list[Node]]:
    """Columns of nodes, each sorted by the mean position of its neighbours
    in the column before (sweeping right) or after (sweeping left)."""
    columns: list[list[Node]] = [[] for _ in range(max(ranks.values(), default=-1) + 1)]
    for node in nodes:
        columns[ranks[node.id]].append(node)
    before: dict[str, list[str]] = {n.id: [] for n in nodes}
    after: dict[str, list[str]] = {n.id: [] for n in nodes}
    for edge in edges:
        before[edge.target].append(edge.source)
        after[edge.source].append(edge.target)
    for sweep in range(SWEEPS):
        rightwards = sweep % 2 == 0
        sequence = range(1, len(columns)) if rightwards else range(len(columns) - 2, -1, -1)
        for i in sequence:
            neighbours = before if rightwards else after
            position = {n.id: k for k, n in enumerate(columns[i - 1 if rightwards else i + 1])}
            columns[i] = _by_barycenter(columns[i], neighbours, position)
    return columns


def _by_barycenter(column: list[Node], neighbours: dict[str, list[str]], position: dict[str, int]) -> list[Node]:
    def key(item: tuple[int, Node]) -> float:
        k, node = item
        seen = [position[n] for n in neighbours[node.id] if n in position]
        return sum(seen) / len(seen) if seen else k

    return [node for _, node in sorted(enumerate(column), key=key)]


def _place(columns: list[list[Node]], edges: list[Edge], by_id: dict[str, Node]) -> None:
    """x by column; y near the mean of the nodes feeding in, then pushed
    apart (in column order) so that nodes never overlap."""
    feeding: dict[str, list[str]] = {}
    for edge in edges:
        feeding.setdefault(edge.target, []).append(edge.source)
    step = NODE_HEIGHT + ROW_GAP
    for i, column in enumerate(columns):
        wanted = []
        for k, node in enumerate(column):
            node.x = MARGIN + i * (NODE_WIDTH + COLUMN_GAP)
            sources = [by_id[s].y for s in feeding.get(node.id, []) if by_id[s].x < node.x]
            wanted.append(sum(sources) / len(sources) if sources else MARGIN + k * step)
        floor = MARGIN
        for node, y in zip(column, wanted):
            node.y = max(y, floor)
            floor = node.y + step
    top = min((n.y for n in by_id.values()), default=MARGIN)
    for node in by_id.values():
        node.y += MARGIN - top


def _path(source: Node, target: Node) -> str:
    """A cubic curve from the right side of ``source`` to the left of ``target``."""
    x1, y1 = source.x + source.width, source.y + source.height / 2
    x2, y2 = target.x, target.y + target.height / 2
    bend = max(30.0, abs(x2 - x1) / 2)
    return f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
