"""``artifactfs migrate --to STORE``: move versions' payloads between stores."""

from __future__ import annotations

from collections import Counter

import click

from artifactfs.api.migrate import migrate, plan_migration
from artifactfs.cli.artifact import byte_progress
from artifactfs.cli.output import console, error_line, human_bytes


@click.command("migrate")
@click.option("--to", "to", required=True, metavar="STORE", help="Store to move payloads into.")
@click.option("--artifact", "-a", metavar="NAME", help="Only versions of this artifact.")
@click.option("--from", "from_store", metavar="STORE", help="Only versions now in this store.")
@click.option("--delete-source", is_flag=True,
              help="Delete each old payload once its version points at the copy.")
@click.option("--dry-run", is_flag=True, help="Show what would move, change nothing.")
def migrate_command(to: str, artifact: str | None, from_store: str | None, delete_source: bool,
                    dry_run: bool) -> None:
    """Copy versions' payloads into store --to, verify sizes and digests against
    their manifests, then re-point each version in one transaction. Safe to run
    again after an interruption: it resumes where it stopped."""
    plan = plan_migration(to, artifact, from_store)
    by_store = Counter(m.store for m in plan)
    total = sum(m.size for m in plan)
    stores = ", ".join(f"{n} from {s}" for s, n in sorted(by_store.items())) or "none"
    console.print(f"{len(plan)} version(s) to move to {to} ({stores}), {human_bytes(total)}.", highlight=False)
    if dry_run:
        for move in plan:
            console.print(f"  {move.label}  {human_bytes(move.size)}  {move.uri}", highlight=False)
        return
    with byte_progress(f"migrating to {to}") as start:
        report = migrate(to, artifact, from_store, delete_source=delete_source, progress=start)
    console.print(
        f"Moved {len(report.moved)} version(s): {human_bytes(report.bytes_copied)} copied, "
        f"{human_bytes(report.bytes_reused)} already there from an interrupted run.",
        highlight=False,
    )
    if delete_source:
        console.print(f"Deleted {len(report.deleted)} source payload(s).", highlight=False)
    for label, why in report.skipped:
        console.print(f"  skipped {label}: {why}", highlight=False)
    for label, why in report.failed:
        error_line(f"{label} not moved: {why}")
    if report.failed:
        raise click.exceptions.Exit(1)
