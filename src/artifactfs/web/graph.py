"""Lays out a graph of step runs and artifact versions for an SVG picture,
in Python on the server (no Graphviz): top to bottom in layers (as ZenML
draws a run), each node below everything it depends on, crossings reduced
by barycenter sweeps, and each node placed near what feeds it. The SVG
elements of nodes and edges are drawn here too (:func:`draw`: one string
join, every text escaped; a template macro per node cost a second at 2,000
nodes); the frame around them is the template's (``graph_box`` in
``templates/macros.html``), panning and zooming the browser's
(``static/app.js``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from html import escape

from markupsafe import Markup

NODE_WIDTH = 190
NODE_HEIGHT = 44
ROW_GAP = 46  # between layers
NODE_GAP = 24  # between nodes of a layer
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
    """Longest path from a source, in one pass over a topological order
    (linear: a run of 1,000 steps is laid out in milliseconds). Nodes on a
    cycle (never in lineage) keep the rank their placed sources give them."""
    rank = {n.id: 0 for n in nodes}
    following: dict[str, list[str]] = {n.id: [] for n in nodes}
    waiting = dict.fromkeys(rank, 0)
    for edge in edges:
        following[edge.source].append(edge.target)
        waiting[edge.target] += 1
    ready = deque(n.id for n in nodes if waiting[n.id] == 0)
    while ready:
        node = ready.popleft()
        for target in following[node]:
            rank[target] = max(rank[target], rank[node] + 1)
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    return rank


def _order(nodes: list[Node], edges: list[Edge], ranks: dict[str, int]) -> list[list[Node]]:
    """Layers of nodes, each sorted by the mean position of its neighbours
    in the layer above (sweeping down) or below (sweeping up)."""
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
            if len(columns[i]) < 2:  # nothing to order (most layers of a long chain)
                continue
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


def _place(layers: list[list[Node]], edges: list[Edge], by_id: dict[str, Node]) -> None:
    """y by layer; x at the mean of the nodes feeding in from above (or
    right of the node before), then pushed right, in layer order, so that
    nodes never overlap."""
    feeding: dict[str, list[str]] = {}
    for edge in edges:
        feeding.setdefault(edge.target, []).append(edge.source)
    step = NODE_WIDTH + NODE_GAP
    for i, layer in enumerate(layers):
        floor = float("-inf")
        for node in layer:
            node.y = MARGIN + i * (NODE_HEIGHT + ROW_GAP)
            sources = [by_id[s].x for s in feeding.get(node.id, []) if by_id[s].y < node.y]
            wanted = sum(sources) / len(sources) if sources else (floor if floor > float("-inf") else MARGIN)
            node.x = max(wanted, floor)
            floor = node.x + step
    left = min((n.x for n in by_id.values()), default=MARGIN)
    for node in by_id.values():
        node.x += MARGIN - left


def _path(source: Node, target: Node) -> str:
    """A cubic curve from the bottom of ``source`` to the top of ``target``."""
    x1, y1 = source.x + source.width / 2, source.y + source.height
    x2, y2 = target.x + target.width / 2, target.y
    bend = max(20.0, abs(y2 - y1) / 2)
    return f"M{x1:.0f},{y1:.0f} C{x1:.0f},{y1 + bend:.0f} {x2:.0f},{y2 - bend:.0f} {x2:.0f},{y2:.0f}"


def draw(graph: Layout) -> Markup:
    """The edges and nodes of a laid-out graph as SVG elements (names,
    links and labels escaped, quotes too: they are user data; the standard
    library's ``html.escape`` makes plain strings, which is what makes this fast)."""
    parts = ['<g class="edges">']
    parts += [f'<path d="{d}" marker-end="url(#arrow)"><title>{escape(edge.label)}</title></path>'
              for edge, d in graph.edges]
    parts.append("</g>")
    for n in graph.nodes:
        kind = f"node {escape(n.kind)}" + (f" status-{escape(n.status)}" if n.status else "") + (" root" if n.root else "")
        title = escape(n.title) + (f" ({escape(n.subtitle)})" if n.subtitle else "")
        parts.append(
            f'<a href="{escape(n.href)}" class="{kind}" data-node="{escape(n.id)}"><title>{title}</title>'
            f'<rect x="{n.x:.1f}" y="{n.y:.1f}" width="{n.width}" height="{n.height}" '
            f'rx="{6 if n.kind == "artifact" else 14}"/>'
            f'<text x="{n.x + 10:.1f}" y="{n.y + 18:.1f}" class="title">{escape(n.short_title)}</text>'
            f'<text x="{n.x + 10:.1f}" y="{n.y + 35:.1f}" class="sub">{escape(n.short_subtitle)}</text></a>')
    return Markup("".join(parts))
