"""``artifactfs pipeline ...`` and ``artifactfs run ...``: pipelines, runs, steps."""

from __future__ import annotations

import datetime as dt

import click
from rich.text import Text

from artifactfs.api.client import Client
from artifactfs.api.runs import PipelineRunView, prune_pipeline_runs
from artifactfs.cli.output import confirm, console, table
from artifactfs.cli.params import DURATION
from artifactfs.index import get_index
from artifactfs.index.gc import runs_to_prune
from artifactfs.index.clock import pass_now
from artifactfs.index import steplogs
from artifactfs.index.browse import step_errors
from artifactfs.index.pipelines import list_pipelines

STATUS_STYLE = {"completed": "green", "cached": "cyan", "failed": "red", "running": "yellow", "crashed": "bold red"}


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, "white"))


def _duration(view) -> str:
    if view.end_time is None:
        return "-"
    return f"{(view.end_time - view.start_time).total_seconds():.2f}s"


@click.group("pipeline")
def pipeline_group() -> None:
    """Pipelines that have run."""


@pipeline_group.command("list")
def pipeline_list() -> None:
    """List pipelines with their number of runs."""
    with get_index().read() as session:
        found = list_pipelines(session)
    if not found:
        console.print("No pipelines have run yet.")
        return
    rows = [(p.name, n, last.strftime("%Y-%m-%d %H:%M:%S") if last else "-") for p, n, last in found]
    console.print(table("Pipelines", ["pipeline", "runs", "last run"], rows))


@click.group("run")
def run_group() -> None:
    """Pipeline runs: list, show, delete."""


@run_group.command("list")
@click.option("--pipeline", "-p", help="Only runs of this pipeline.")
@click.option("--limit", "-n", default=50, show_default=True, help="Show at most this many runs.")
def run_list(pipeline: str | None, limit: int) -> None:
    """List runs, newest first."""
    runs = Client().list_pipeline_runs(pipeline=pipeline, limit=limit)
    if not runs:
        console.print("No runs yet.")
        return
    rows = [
        (r.name, _status(r.status), r.start_time.strftime("%m-%d %H:%M:%S"), _duration(r),
         f"{sum(s.is_cached for s in r.steps.values())}/{len(r.steps)}")
        for r in runs
    ]
    console.print(table("Pipeline runs", ["run", "status", "started", "took", "cached"], rows))


@run_group.command("show")
@click.argument("run")
@click.option("--logs", is_flag=True, help="Also print what each step wrote to stdout, stderr and logging.")
def run_show(run: str, logs: bool) -> None:
    """Show a run's steps with their inputs and outputs, and why a failed step failed."""
    view = Client().get_pipeline_run(run)
    console.print(Text.assemble((view.name, "bold"), f" ({view.pipeline}) ", _status(view.status), f"  id {view.id}"))
    if view.status == "crashed":
        console.print("the process of this run is gone (killed, or its machine stopped): it will not finish",
                      highlight=False, markup=False)
    if view.parameters:
        console.print(f"parameters: {view.parameters}", highlight=False, markup=False)
    console.print(_steps_table(view))
    steps = list(view.steps.values())
    with get_index().read() as session:
        errors = step_errors(session, [s._pk for s in steps if s.status == "failed"])
        found = steplogs.logs_of(session, [s._pk for s in steps]) if logs else {}
    for step in steps:
        if step._pk in errors:
            console.print(f"step {step.name} failed: {errors[step._pk]}", style="red", highlight=False, markup=False)
    for step in steps if logs else ():
        log = found.get(step._pk)
        what = "no output" if log is None else f"{log.total:,} characters" + (
            f", {log.cut:,} cut from the middle" if log.cut else "")
        console.rule(f"logs of step {step.name} ({what})", style="dim", characters="-", align="left")
        if log is not None:
            # Escape sequences other than colours are dropped: a log cannot drive the terminal.
            console.print(Text.from_ansi(log.text.rstrip("\n")), highlight=False)


def _steps_table(view: PipelineRunView):
    rows = []
    for step in view.steps.values():
        inputs = "\n".join(f"{k} <- {v}" for k, v in step.inputs.items()) or "-"
        outputs = "\n".join(f"{k} -> {v}" for k, v in step.outputs.items()) or "-"
        params = ", ".join(f"{k}={v}" for k, v in step.parameters.items()) or "-"
        rows.append((step.name, _status(step.status), _duration(step), params, inputs, outputs))
    return table("Steps", ["step", "status", "took", "parameters", "inputs", "outputs (artifact:version)"], rows)


@run_group.command("delete")
@click.argument("run")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def run_delete(run: str, yes: bool) -> None:
    """Delete a run's records. Its artifacts stay until `artifactfs gc` finds them unreferenced."""
    client = Client()
    view = client.get_pipeline_run(run)
    if not yes:
        confirm(f"Delete run {view.name} ({len(view.steps)} steps)?", dry_run=False)
    client.delete_pipeline_run(view.id)
    console.print(f"Deleted run {view.name}; its artifacts are now candidates for `artifactfs gc`.", highlight=False)


@run_group.command("prune")
@click.option("--older-than", type=DURATION, required=True, help="Delete finished or crashed runs started longer ago than this (e.g. 30d, 12h, 0).")
@click.option("--keep-last", type=click.IntRange(min=0), default=0, show_default=True,
              help="Keep the newest N runs of each pipeline whatever their age.")
@click.option("--pipeline", "-p", help="Only runs of this pipeline.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="List the runs, delete nothing.")
def run_prune(older_than: dt.timedelta, keep_last: int, pipeline: str | None, yes: bool, dry_run: bool) -> None:
    """Delete old runs (never one still running). Their artifacts stay until `artifactfs gc` finds them unreferenced."""
    age = older_than
    index = get_index()
    with index.read() as session:
        cutoff = pass_now(session, age) - age  # the index's clock; SQLite: refused if ours jumped
        found = runs_to_prune(session, cutoff, keep_last, pipeline)
    if not found:
        console.print("No runs to delete.")
        return
    rows = [(r.name, r.pipeline, _status(r.status), r.start_time.strftime("%Y-%m-%d %H:%M:%S")) for r in found[:50]]
    console.print(table(f"Runs to delete ({len(found)})", ["run", "pipeline", "status", "started"], rows))
    if len(found) > 50:
        console.print(f"... and {len(found) - 50} more", highlight=False)
    if dry_run:
        console.print("Dry run: nothing was deleted.")
        return
    if not yes:
        confirm(f"Delete {len(found)} run(s)?")
    deleted = prune_pipeline_runs([r.id for r in found], cutoff, keep_last, pipeline)
    console.print(f"Deleted {len(deleted)} run(s); their artifacts are now candidates for `artifactfs gc`.",
                  highlight=False)
