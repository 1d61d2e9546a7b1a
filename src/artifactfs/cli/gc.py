"""``artifactfs gc`` (alias ``artifactfs artifact prune``), ``artifactfs gc
daemon`` and ``artifactfs fsck``: parse options, print the plan, ask, run
the pruner (``artifactfs.gc``), print what was freed.

Exit codes: 0 done (a store that could not be reached, or an entry left
alone, is reported but does not fail the command); 1 an error (or, for
fsck, problems found; gc: no terminal to confirm on and neither ``-y`` nor
``--dry-run``); 2 a usage error; 3 with ``--strict``: a store was skipped or
an entry left alone."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import sys
import threading

import click
from click.core import ParameterSource
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from artifactfs.cli.output import confirm, console, err_console, human_bytes, table
from artifactfs.cli.params import DURATION, POSITIVE_DURATION
from artifactfs.gc import (
    DEFAULT_DAEMON_SWEEP_DELAY,
    Lease,
    PrunePlan,
    PrunePolicy,
    PruneResult,
    execute,
    format_duration,
    fsck,
    load_policy_file,
    plan_prune,
    repair,
    run_daemon,
)
from artifactfs.gc.adopt import adopt_store
from artifactfs.gc.fsck import DEFAULT_STUCK_AFTER, INFO
from artifactfs.stores.layout import count_payloads
from artifactfs.gc.payloads import StoreCache, describe_error
from artifactfs.gc.policy import DEFAULT_GRACE
from artifactfs.index import get_index

MAX_LISTED = 20
EXIT_STRICT = 3  # --strict: a store was unreachable or failed, or an entry was left alone


def policy_options(func):
    """The options that make a prune policy (shared by gc, artifact prune and gc daemon)."""
    options = [
        click.option("--grace", type=DURATION, default=None,
                     help="Leave versions and orphan payloads younger than this (default 24h)."),
        click.option("--orphan-grace", type=DURATION, default=None,
                     help="Age below which payload folders with no row stay (default: the grace period)."),
        click.option("--sweep-delay", type=DURATION, default=None,
                     help="Delete a condemned version's payload only this long after condemning it "
                          "(default 0 for gc, 10m for the daemon)."),
        click.option("--keep-tag", "keep_tags", multiple=True, help="Protect versions with this tag too (besides 'keep')."),
        click.option("--keep-latest", type=click.IntRange(min=0), default=None,
                     help="Protect the newest N versions of every artifact (default 1)."),
        click.option("--only-artifact", "-a", is_flag=True, help="Delete payloads only; the rows stay, hidden."),
        click.option("--only-metadata", "-m", is_flag=True, help="Delete rows only; payloads stay in the stores."),
        click.option("--ignore-errors", "-i", is_flag=True, hidden=True,
                     help="No effect: a pass always goes on past a failing store and reports it."),
        click.option("--full-scan", is_flag=True,
                     help="List every name folder of remote stores for orphans (default: a bounded part per pass)."),
        click.option("--runs-older-than", type=DURATION, default=None,
                     help="Also delete finished runs started longer ago than this."),
        click.option("--keep-last-runs", type=click.IntRange(min=0), default=None,
                     help="With --runs-older-than: keep the newest N runs of each pipeline."),
        click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="TOML or JSON file of settings; options given on the command line win."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def build_policy(ctx: click.Context, base: PrunePolicy, **values) -> PrunePolicy:
    policy = base
    if values.get("policy_file"):
        policy = load_policy_file(values["policy_file"], base)
    given = {}
    for key in ("grace", "orphan_grace", "sweep_delay", "keep_latest", "runs_older_than", "keep_last_runs"):
        if values.get(key) is not None:
            given[key] = values[key]
    for key in ("only_artifact", "only_metadata", "ignore_errors", "strict"):
        if ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE:
            given[key] = values[key]
    if values.get("full_scan"):
        given["scan_limit"] = None
    if values.get("keep_tags"):
        given["keep_tags"] = policy.keep_tags | frozenset(values["keep_tags"])
    return policy.replace(**given) if given else policy


def _policy_values(kwargs: dict) -> dict:
    keys = ("grace", "orphan_grace", "sweep_delay", "keep_tags", "keep_latest", "only_artifact", "only_metadata",
            "ignore_errors", "strict", "full_scan", "runs_older_than", "keep_last_runs", "policy_file")
    return {k: kwargs.pop(k, None) for k in keys}


# -- printing ---------------------------------------------------------------------------


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def print_plan(plan: PrunePlan, dry_run: bool = False) -> None:
    policy = plan.policy
    console.print(f"Policy: {policy.describe()}", highlight=False)
    asked = policy.grace if policy.orphan_grace is None else policy.orphan_grace
    if policy.sweeps and asked < policy.orphan_cutoff_age:
        console.print(f"Orphan payloads younger than {format_duration(policy.orphan_cutoff_age)} always stay "
                      "(a save may still be writing them), whatever --grace or --orphan-grace say.", highlight=False)
    for problem in plan.errors:
        err_console.print(f"[yellow]Skipped store {escape(problem.store)}:[/] {escape(problem.message)}",
                          markup=True)
    for left in plan.elsewhere:
        console.print(f"Left alone: {left.message}", highlight=False, soft_wrap=True, markup=False)
    for note in plan.notes:
        console.print(f"Note: {note.message}", highlight=False, soft_wrap=True, markup=False)
    _print_odd(plan.odd)
    if plan.runs:
        console.print(table(f"Runs to delete ({len(plan.runs)})", ["run", "pipeline", "status", "started"],
                            [(r.name, r.pipeline, r.status, _when(r.start_time)) for r in plan.runs[:MAX_LISTED]]))
        _more(len(plan.runs))
    stats = plan.stats
    rows = [
        (s.store, s.versions, s.in_place or "-", s.files, human_bytes(s.bytes), s.orphans, human_bytes(s.orphan_bytes),
         s.waiting or "-")
        for s in stats.stores if s.versions or s.orphans or s.waiting
    ]
    if rows:
        total = ("total", sum(s.versions for s in stats.stores), sum(s.in_place for s in stats.stores) or "-",
                 stats.files, human_bytes(stats.bytes), stats.orphans,
                 human_bytes(sum(s.orphan_bytes for s in stats.stores)), stats.waiting or "-")
        console.print(table("Prune plan", ["store", "versions", "registered in place", "files", "size",
                                           "orphan payloads", "orphan size", "waiting"], rows + [total]))
    going = sorted({v.id: v for v in plan.condemn + plan.sweep + plan.forget}.values(), key=lambda v: v.id)
    if going:
        console.print(f"[bold]Versions[/] ({len(going)}):", markup=True)
        for v in going[:MAX_LISTED]:
            what = "condemned, " if v.state == "condemned" else ""
            console.print(f"  {v.label}  ({what}{human_bytes(v.size)}, {v.file_count} file(s), store "
                          f"{plan.store_name(v.store_id)})", highlight=False, soft_wrap=True, markup=False)
        _more(len(going))
    in_place = plan.in_place
    if in_place:
        console.print(f"[bold]Registered in place:[/] {len(in_place)} payload(s) that are your own files or folders "
                      "are deleted with their version:", markup=True, soft_wrap=True)
        for v in in_place[:MAX_LISTED]:
            console.print(f"  {v.label}  {v.uri}  ({human_bytes(v.size)}, store {plan.store_name(v.store_id)})",
                          highlight=False, soft_wrap=True, markup=False)
        _more(len(in_place))
    if plan.orphans:
        console.print(f"[bold]Orphan payload entries[/] (folders and manifest files with no row, older than "
                      f"{format_duration(policy.orphan_cutoff_age)}):", markup=True, soft_wrap=True)
        for o in plan.orphans[:MAX_LISTED]:
            console.print(f"  {o.uri}  ({o.files} file(s), {human_bytes(o.bytes)}, last written {_when(o.newest)}, "
                          f"store {o.store})", highlight=False, soft_wrap=True, markup=False)
        _more(len(plan.orphans))
    notes = []
    if plan.waiting:
        notes.append(f"{len(plan.waiting)} condemned version(s) keep their payload until the sweep delay "
                     f"({format_duration(policy.sweep_delay)}) has passed.")
    if stats.young_orphans:
        notes.append(f"{stats.young_orphans} payload folder(s) without a row are younger than "
                     f"{format_duration(policy.orphan_cutoff_age)} and stay (a save may be in progress).")
    if policy.only_artifact:
        notes.append("--only-artifact: the rows stay, condemned and hidden; a later `artifactfs gc` forgets them.")
    if policy.only_metadata and plan.forget:
        notes.append("--only-metadata: payloads stay in the stores; payload folders become orphans that a later "
                     "`artifactfs gc` removes after the grace period, registered-in-place files are left to you.")
    if plan.claims:
        notes.append(f"Store(s) {', '.join(plan.store_name(i) for i in plan.claims)} hold only this index's payloads "
                     + ("and would get a marker naming it (a dry run writes nothing)." if dry_run
                        else "and get a marker naming it."))
    if plan.clear_intents:
        notes.append(f"{len(plan.clear_intents)} stale write intent(s) of saves that died, whose folders are gone, "
                     "are cleared.")
    for note in notes:
        console.print(note, highlight=False)
    if plan.empty:
        console.print("Nothing to prune.")
    else:
        console.print(f"Will delete {len(plan.sweep)} payload(s) ({human_bytes(stats.bytes)}), "
                      f"{stats.orphans} orphan payload(s), {len(plan.forget)} version row(s)"
                      + (f" and {len(plan.runs)} run(s)" if plan.runs else "")
                      + (f"; condemn {len(plan.condemn)} version(s) first" if plan.condemn else "") + ".",
                      highlight=False)


def _print_odd(odd) -> None:
    for entry in odd[:MAX_LISTED]:
        err_console.print(f"Left alone in store {entry.store}: {entry.where}: {entry.problem}",
                          highlight=False, soft_wrap=True, markup=False)
    _more(len(odd))


def _more(count: int) -> None:
    if count > MAX_LISTED:
        console.print(f"... and {count - MAX_LISTED} more", highlight=False)


def print_summary(result: PruneResult) -> None:
    parts = [f"condemned {len(result.condemned)} version(s)",
             f"swept {len(result.swept)} payload(s) ({result.swept_files} files)",
             f"forgot {len(result.forgotten)} row(s)",
             f"deleted {count_payloads(result.orphans_deleted)} orphan payload(s)"]
    if result.runs_deleted:
        parts.insert(0, f"deleted {len(result.runs_deleted)} run(s)")
    console.print(f"Freed {human_bytes(result.freed)}: {', '.join(parts)} in {result.seconds:.1f}s.", highlight=False)
    if result.refused:
        console.print(f"{len(result.refused)} version(s) were used or protected meanwhile and stay.", highlight=False)
    if result.shared:
        console.print(f"{len(result.shared)} payload(s) stay because a live version owns them: "
                      + ", ".join(owner for _, owner in result.shared[:5]), highlight=False)
    if result.orphans_kept:
        console.print(f"{count_payloads(result.orphans_kept)} orphan payload(s) were claimed or written to meanwhile and stay.",
                      highlight=False)
    for label, uri, left in result.kept_extra:
        console.print(f"{label}: kept {len(left)} file(s) in {uri} that its manifest does not list (added after "
                      f"registering it): {', '.join(left[:5])}" + (" ..." if len(left) > 5 else ""),
                      highlight=False, soft_wrap=True, markup=False)
    for name in result.claimed:
        console.print(f"Store {name} now carries a marker naming this index.", highlight=False)
    if result.intents_cleared:
        console.print(f"Cleared {result.intents_cleared} stale write intent(s) of saves that died.", highlight=False)
    _print_odd(result.odd)
    for problem in result.errors:
        err_console.print(f"[red]Store {escape(problem.store)} failed:[/] {escape(problem.message)}", markup=True)
    if result.stopped:
        err_console.print(f"[red]Stopped early:[/] {escape(str(result.stopped))}", markup=True)


class _RichProgress:
    """The executor's progress callbacks as a rich progress bar."""

    LABELS = {"sweep": "sweeping payloads", "orphans": "removing orphans"}

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def start(self, phase: str, total: int) -> None:
        self.tasks[phase] = self.progress.add_task(self.LABELS.get(phase, phase), total=total)

    def advance(self, phase: str, amount: int = 1) -> None:
        if phase in self.tasks:
            self.progress.advance(self.tasks[phase], amount)


@contextlib.contextmanager
def stop_on_signals(event: threading.Event):
    """SIGINT and SIGTERM set ``event`` (the pass stops between two steps)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, _frame):
        event.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# -- gc -------------------------------------------------------------------------------------


def run_gc(ctx: click.Context, yes: bool, dry_run: bool, trust_clock: bool = False, **kwargs) -> None:
    policy = build_policy(ctx, PrunePolicy(), **_policy_values(kwargs))
    if trust_clock:
        policy = policy.replace(trust_clock=True)
    index = get_index()
    if dry_run:
        plan = plan_prune(index, policy)
        print_plan(plan, dry_run=True)
        console.print("Dry run: nothing was deleted.")
        _exit_strict(ctx, policy, plan, None)
        return
    lease = Lease(index).acquire()
    try:
        plan = plan_prune(index, policy)
        print_plan(plan)
        if plan.empty:
            _exit_strict(ctx, policy, plan, None)
            return
        if not yes:
            confirm("Go ahead?")
        cancel = threading.Event()
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=False)
        with stop_on_signals(cancel), progress:
            result = execute(index, plan, lease, cancel=cancel, progress=_RichProgress(progress))
    finally:
        lease.release()
    print_summary(result)
    if result.stopped:
        ctx.exit(1)  # a lost lease or a cancellation: the pass did not finish
    _exit_strict(ctx, policy, plan, result)


def _exit_strict(ctx: click.Context, policy: PrunePolicy, plan: PrunePlan, result: PruneResult | None) -> None:
    """With --strict, a skipped store or entry is a distinct failure."""
    skipped = bool(plan.errors or plan.odd or (result is not None and not result.clean))
    if policy.strict and skipped:
        ctx.exit(EXIT_STRICT)


def gc_options(func):
    func = policy_options(func)
    func = click.option("--strict", is_flag=True,
                        help=f"Exit with code {EXIT_STRICT} when a store was unreachable or an entry was left alone.")(func)
    func = click.option("--trust-clock", is_flag=True,
                        help="SQLite: take this host's clock as right when it disagrees with the latest time a "
                             "writer of the index saw (check it with `date` first).")(func)
    func = click.option("--dry-run", is_flag=True, help="Print the plan, delete nothing.")(func)
    func = click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting.")(func)
    return func


@click.group("gc", invoke_without_command=True)
@gc_options
@click.pass_context
def gc_group(ctx: click.Context, yes: bool, dry_run: bool, **kwargs) -> None:
    """Remove artifact versions nothing references, and orphan payloads.

    A version goes when no step run links it, no protected tag marks it, it is
    not among the newest --keep-latest of its name, and it is older than
    --grace. The plan is printed first; nothing is deleted before you confirm.
    """
    if ctx.invoked_subcommand is not None:
        return
    run_gc(ctx, yes, dry_run, **kwargs)


@click.command("prune")
@gc_options
@click.pass_context
def artifact_prune(ctx: click.Context, yes: bool, dry_run: bool, **kwargs) -> None:
    """Remove unreferenced versions and orphan payloads (same as `artifactfs gc`)."""
    run_gc(ctx, yes, dry_run, **kwargs)


@gc_group.command("daemon")
@click.option("--every", type=POSITIVE_DURATION, default="6h", show_default=True, help="Time between two passes.")
@policy_options
@click.option("--lease-ttl", type=POSITIVE_DURATION, default=None, hidden=True)
@click.option("--max-passes", type=int, default=None, hidden=True)
@click.pass_context
def gc_daemon(ctx: click.Context, every: dt.timedelta, lease_ttl, max_passes, **kwargs) -> None:
    """Run gc passes on a schedule (sweep delay 10m unless set); stops cleanly on SIGTERM."""
    policy = build_policy(ctx, PrunePolicy(sweep_delay=DEFAULT_DAEMON_SWEEP_DELAY), **_policy_values(kwargs))
    logger = logging.getLogger("artifactfs.gc")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    stop = threading.Event()
    extra = {"lease_ttl": lease_ttl} if lease_ttl else {}
    try:
        with stop_on_signals(stop):
            run_daemon(get_index, policy, every, stop, max_passes=max_passes, **extra)
    finally:
        logger.removeHandler(handler)


# -- fsck -----------------------------------------------------------------------------------


@click.command("fsck")
@click.option("--repair", "do_repair", is_flag=True, help="Fix what is safe to fix (takes the pruner lease).")
@click.option("--deep", is_flag=True, help="Also hash every payload file and compare with the manifest.")
@click.option("--adopt", is_flag=True,
              help="Re-index the payloads the stores hold from the manifest files beside them (after losing the "
                   "index), then mark each store whose payloads are all known as this index's.")
@click.option("--store", "store_name", default=None, help="With --adopt: only this store.")
@click.option("--quarantine", is_flag=True,
              help="With --adopt: adopt each payload no manifest file accounts for as quarantine::<uuid> "
                   "(tagged keep), instead of leaving the store unclaimed.")
@click.option("--grace", type=DURATION, default=None, help="Orphan folders younger than this are left alone (default 24h).")
@click.option("--stuck-after", type=DURATION, default=None,
              help="A condemned version not swept after this long is stuck (default 1h).")
@click.option("--strict", is_flag=True, help=f"Exit with code {EXIT_STRICT} when a store could not be checked.")
@click.pass_context
def fsck_command(ctx: click.Context, do_repair: bool, deep: bool, adopt: bool, store_name: str | None,
                 quarantine: bool, grace, stuck_after, strict: bool) -> None:
    """Check that the index and the stores agree; report, and with --repair fix what is safe."""
    grace = grace if grace is not None else DEFAULT_GRACE
    index = get_index()
    if adopt:
        _adopt(ctx, index, store_name, quarantine)
        return
    if store_name is not None or quarantine:
        raise click.UsageError("--store and --quarantine work with --adopt only")
    report = fsck(index, deep=deep, grace=grace, stuck_after=stuck_after or DEFAULT_STUCK_AFTER)
    if do_repair and any(f.repair for f in report.findings):
        with Lease(index) as lease:
            report = repair(index, report, lease, grace=grace)
    if report.findings:
        console.print(table("Findings", ["kind", "store", "version or folder", "detail", "repair"],
                            _finding_rows(report.findings)))
    for problem in report.errors:
        err_console.print(f"[red]Store {escape(problem.store)} not checked:[/] {escape(problem.message)}",
                          markup=True)
    repaired = sum(f.repaired for f in report.findings)
    notes = sum(f.severity == INFO for f in report.findings)
    line = (f"Checked {report.versions} version(s), {report.files} file(s): {len(report.problems)} problem(s)"
            + (f", {repaired} repaired" if repaired else "") + (f", {notes} note(s)" if notes else "")
            + (f"; {len(report.errors)} store(s) not reachable" if report.errors else "") + ".")
    console.print(line, highlight=False)
    if report.problems and not do_repair and any(f.repair for f in report.problems):
        console.print("Run `artifactfs fsck --repair` to fix what is safe to fix.")
    if report.problems:
        ctx.exit(1)
    if report.errors and strict:
        ctx.exit(EXIT_STRICT)


#: Notes of one kind, store and detail beyond this many are one row (an
#: interrupted pass can leave hundreds of the same note).
GROUP_NOTES_OVER = 3


def _finding_rows(findings) -> list[tuple[str, ...]]:
    """The findings table's rows: problems one per row; notes that say the
    same of many versions summarised in one row that counts them."""
    groups: dict[tuple[str, str, str], list] = {}
    for f in findings:
        if f.severity == INFO:
            groups.setdefault((f.kind, f.store, f.detail), []).append(f)
    rows, shown = [], set()
    for f in findings:
        key = (f.kind, f.store, f.detail)
        same = groups.get(key, [])
        if len(same) > GROUP_NOTES_OVER:
            if key not in shown:
                shown.add(key)
                examples = ", ".join(g.subject for g in same[:2])
                rows.append((f.kind, f.store, f"{len(same)} versions ({examples}, ...)", f.detail, "-"))
            continue
        rows.append((f.kind, f.store, f.subject, f.detail,
                     "repaired" if f.repaired else (f.repair or "report only") if f.severity != INFO else "-"))
    return rows


def _adopt(ctx: click.Context, index, store_name: str | None, quarantine: bool) -> None:
    stores = StoreCache(index)
    wanted = [i for i in sorted(stores.rows) if store_name in (None, stores.name(i))]
    if not wanted:
        raise click.UsageError(f"no store named {store_name!r}")
    complete = True
    with Lease(index):
        for store_id in wanted:
            name = stores.name(store_id)
            try:
                report = adopt_store(index, stores.get(store_id), store_id, quarantine=quarantine)
            except Exception as exc:  # noqa: BLE001 - one store failing never blocks the others
                err_console.print(f"[red]Store {escape(name)} not adopted:[/] "
                                  f"{escape(describe_error(stores.get_if_open(store_id), exc))}", markup=True)
                complete = False
                continue
            console.print(f"Store {name}: adopted {len(report.adopted)} version(s), {report.known} already known"
                          + (f", {len(report.skipped)} left alone" if report.skipped else "") + ".", highlight=False)
            for label in report.adopted[:MAX_LISTED]:
                console.print(f"  adopted {label}", highlight=False, markup=False)
            _more(len(report.adopted))
            for label in report.merged[:MAX_LISTED]:
                console.print(f"  gave {label} back the tags and links its manifest file records",
                              highlight=False, markup=False)
            _more(len(report.merged))
            if report.runs or report.steps or report.links:
                console.print(f"  rebuilt {report.runs} run(s), {report.steps} step run(s), {report.links} link(s).",
                              highlight=False)
            for problem in report.lineage[:MAX_LISTED]:
                console.print(f"  not rebuilt: {problem}", highlight=False, markup=False, soft_wrap=True)
            _more(len(report.lineage))
            for label in report.quarantined[:MAX_LISTED]:
                console.print(f"  quarantined {label} (tagged keep: look at it, then untag or delete it)",
                              highlight=False, markup=False)
            _more(len(report.quarantined))
            for where, why in report.skipped[:MAX_LISTED]:
                console.print(f"  left alone {where}: {why}", highlight=False, markup=False, soft_wrap=True)
            _more(len(report.skipped))
            if report.claimed:
                console.print(f"  store {name} is now this index's: gc sweeps its orphans.", highlight=False)
            else:
                complete = False
                console.print(f"  not claimed: {report.reason}", highlight=False, markup=False, soft_wrap=True)
    if not complete:
        ctx.exit(1)


__all__ = ["artifact_prune", "fsck_command", "gc_group"]
