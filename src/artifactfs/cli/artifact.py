"""``artifactfs artifact ...``: list, inspect, register, tag and export artifacts.

The layers are imported inside each command, so that ``artifact list`` loads
only the index (not the materializers, stores or pipelines).
"""

from __future__ import annotations

import contextlib
import re

import click

from artifactfs.cli.lazy import LazyGroup
from artifactfs.cli.output import console, escape, human_bytes, table

# NAME:VERSION, where NAME may itself contain '::' (pipeline::step::output).
_SPEC = re.compile(r"^(?P<name>.*[^:]):(?P<version>[^:]+)$")


def parse_spec(spec: str) -> tuple[str, str | None]:
    match = _SPEC.match(spec)
    return (match["name"], match["version"]) if match else (spec, None)


@contextlib.contextmanager
def byte_progress(description: str):
    """A rich progress bar over bytes, shown from the first ``start(total)``
    on (so a command that fails before copying prints no empty bar);
    yields ``start``, which returns the callback fed with byte counts."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    progress = Progress(
        TextColumn("{task.description}", style="progress.description", markup=False), BarColumn(), DownloadColumn(),
        TransferSpeedColumn(),
        console=console, transient=False,
    )

    def start(total: int):
        if not progress.live.is_started:
            progress.start()
        task = progress.add_task(description, total=total)
        return lambda n: progress.advance(task, n)

    try:
        yield start
    finally:
        if progress.live.is_started:
            progress.stop()


@click.group("artifact", cls=LazyGroup, lazy={
    "prune": ("artifactfs.cli.gc:artifact_prune",
              "Remove unreferenced versions and orphan payloads (same as `artifactfs gc`)."),
})
def artifact_group() -> None:
    """Inspect and manage artifacts and their versions."""


LIST_LIMIT = 50


@artifact_group.command("list")
@click.option("--limit", "-n", type=click.IntRange(min=0), default=LIST_LIMIT, show_default=True,
              help="Artifacts per page (0: all of them).")
@click.option("--after", metavar="NAME", help="Start after this name (the next page).")
def list_command(limit: int, after: str | None) -> None:
    """List artifacts by name with their number of versions, a page at a time."""
    from artifactfs.index import get_index
    from artifactfs.index.hosts import unreadable_here
    from artifactfs.index.summaries import count_artifacts, list_artifacts

    # The index alone, through SQLAlchemy Core (no ORM): a page costs the same at any size.
    with get_index().read_rows() as connection:
        summaries = list_artifacts(connection, limit=limit or None, after=after)
        more = count_artifacts(connection, after=summaries[-1].name) if limit and len(summaries) == limit else 0
        elsewhere = unreadable_here(connection, [s.name for s in summaries])
    if not summaries:
        console.print("No artifacts yet." if after is None else f"No artifacts after {after!r}.")
        return

    def counted(s) -> str:
        return f"{s.versions} ({elsewhere[s.name]} not readable here)" if s.name in elsewhere else str(s.versions)

    console.print(table("Artifacts", ["name", "versions", "newest", "size"],
                        [(s.name, counted(s), s.newest, human_bytes(s.size)) for s in summaries]))
    if elsewhere:
        console.print("Versions not readable here are in another machine's local store (`artifactfs store list` "
                      "names it); keep what several machines need in a shared store.", highlight=False,
                      soft_wrap=True, markup=False)
    if more:
        console.print(f"... {more} more artifact(s): `artifactfs artifact list --after {summaries[-1].name}` "
                      "for the next page, --limit 0 for all.", highlight=False, soft_wrap=True, markup=False)


@artifact_group.command("versions")
@click.argument("name")
@click.option("--tag", help="Only versions with this tag.")
def versions(name: str, tag: str | None) -> None:
    """List the versions of NAME, newest first."""
    from artifactfs.api import Client, get_artifact_version

    found = Client().list_artifact_versions(name=name, tag=tag)
    if not found:
        get_artifact_version(name)  # raises a clear "no artifact named ..." when unknown
    rows = [
        (v.version, v.id[:8], v.created_at.strftime("%Y-%m-%d %H:%M:%S"), human_bytes(v.size), v.file_count,
         _short_type(v.data_type), v.save_type, ", ".join(v.tags))
        for v in found
    ]
    console.print(table(f"Versions of {name}", ["version", "id", "created", "size", "files", "type", "saved as", "tags"], rows))


@artifact_group.command("show")
@click.argument("spec", metavar="NAME[:VERSION]|ID")
@click.option("--files", "max_files", default=50, show_default=True, help="How many manifest entries to list.")
def show(spec: str, max_files: int) -> None:
    """Show a version: fields, metadata, files, lineage."""
    from artifactfs.api import get_artifact_version

    name, version = parse_spec(spec)
    v = get_artifact_version(name, version)
    fields = [
        ("name", v.name), ("version", v.version), ("id", v.id), ("store", v.store), ("uri", v.uri),
        ("data type", v.data_type), ("materializer", v.materializer), ("saved as", v.save_type),
        ("size", f"{human_bytes(v.size)} in {v.file_count} file(s)"), ("content hash", v.content_hash),
        ("created", v.created_at.isoformat()), ("tags", ", ".join(v.tags) or "-"),
    ]
    console.print(table(f"Artifact {v}", ["field", "value"], fields))
    metadata = v.metadata
    if metadata:
        console.print(table("Metadata", ["key", "value"], [(k, _short(val)) for k, val in metadata.items()]))
    files = v.files
    console.print(table(f"Files ({len(files)})", ["path", "size", v.hash_algorithm],
                        [(f.path, human_bytes(f.size), (f.digest or "")[:16]) for f in files[:max_files]]))
    if len(files) > max_files:
        console.print(f"... and {len(files) - max_files} more (use --files N)")
    _print_lineage(v)


def _print_lineage(v) -> None:
    from artifactfs.api.lineage import links_of

    links = links_of(v)
    if links:
        console.print(table("Lineage", ["direction", "pipeline", "run", "step", "as"], links))
    else:
        console.print("Lineage: not produced or consumed by any step run.")


@artifact_group.command("register")
@click.argument("path")
@click.option("--name", "-n", required=True, help="Artifact name.")
@click.option("--version", "-v", "version", help="Version string [default: the next number].")
@click.option("--tag", "-t", "tags", multiple=True, help="Tag (repeatable).")
@click.option("--copy", is_flag=True, help="Copy into the active store (needed for paths outside every store).")
@click.option("--store", help="Store to copy into (with --copy).")
def register(path: str, name: str, version: str | None, tags: tuple[str, ...], copy: bool, store: str | None) -> None:
    """Register an existing file or folder PATH as a version of --name."""
    from artifactfs.api import register_artifact

    with byte_progress("copying") as start:
        v = register_artifact(path, name, version=version, tags=tags, copy=copy, store=store,
                              progress=start if copy else None)
    console.print(f"Registered [bold]{escape(str(v))}[/] ({human_bytes(v.size)} in {v.file_count} file(s)) at "
                  f"{escape(v.uri)}", markup=True)


@artifact_group.command("tag")
@click.argument("spec", metavar="NAME[:VERSION]|ID")
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove the tags instead of adding them.")
def tag(spec: str, tags: tuple[str, ...], remove: bool) -> None:
    """Add (or --remove) TAGS on a version."""
    from artifactfs.api import get_artifact_version

    name, version = parse_spec(spec)
    v = get_artifact_version(name, version)
    (v.remove_tags if remove else v.add_tags)(tags)
    console.print(f"{v}: tags now {', '.join(v.tags) or '-'}", highlight=False)


@artifact_group.command("export")
@click.argument("spec", metavar="NAME[:VERSION]|ID")
@click.argument("dest", type=click.Path(file_okay=False))
def export(spec: str, dest: str) -> None:
    """Copy a version's payload files into local folder DEST."""
    from artifactfs.api import get_artifact_version
    from artifactfs.api.export import export_version

    name, version = parse_spec(spec)
    v = get_artifact_version(name, version)
    with byte_progress(f"exporting {v}") as start:
        written = export_version(v, dest, start(v.size))
    console.print(f"Exported {len(written)} file(s), {human_bytes(v.size)} to {dest}", highlight=False)


def _short_type(data_type: str | None) -> str:
    return (data_type or "-").rsplit(".", 1)[-1]


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."
