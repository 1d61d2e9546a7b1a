"""``artifactfs lineage NAME[:VERSION]``: the graph of artifacts and step runs
around a version, as JSON, dot, SVG or PNG."""

from __future__ import annotations

from pathlib import Path

import click

from artifactfs.api.artifacts import get_artifact_version
from artifactfs.api.lineage import FORMATS, lineage_graph, render
from artifactfs.cli.artifact import parse_spec
from artifactfs.cli.output import console


@click.command("lineage")
@click.argument("spec", metavar="NAME[:VERSION]|ID")
@click.option("--upstream/--downstream", "upstream", default=None,
              help="Only what led to the version, or only what came of it [default: both].")
@click.option("--depth", type=click.IntRange(min=0), help="At most this many step runs away [default: no limit].")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS),
              help="Output format [default: from the -o suffix, else dot].")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="File to write [default: stdout].")
def lineage_command(spec: str, upstream: bool | None, depth: int | None, fmt: str | None, output: str | None) -> None:
    """Draw the lineage of a version: artifacts and the step runs that made or read them."""
    fmt = fmt or _format_of(output)
    if fmt in ("svg", "png") and output is None:
        raise click.UsageError(f"--format {fmt} writes a binary picture: pass -o FILE")
    name, version = parse_spec(spec)
    v = get_artifact_version(name, version)
    graph = lineage_graph(v, upstream=upstream is not False, downstream=upstream is not True, depth=depth)
    result = render(graph, fmt, output)
    if output is None:
        click.echo(result, nl=False)
        return
    steps = sum(1 for n in graph.nodes.values() if n.kind == "step")
    console.print(f"Wrote {output} ({fmt}): {len(graph.nodes) - steps} artifact version(s), {steps} step run(s), "
                  f"{len(graph.edges)} edge(s).", highlight=False)


def _format_of(output: str | None) -> str:
    suffix = Path(output).suffix.lstrip(".").lower() if output else ""
    return suffix if suffix in FORMATS else "dot"
