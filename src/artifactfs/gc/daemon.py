"""Prune passes on a schedule: ``artifactfs gc daemon --every 6h``.

Each pass takes the lease, plans, executes and releases it, then logs one
line with counts and bytes. A pass that finds the lease held by another
pruner, or (SQLite) a clock that disagrees with the index's, is skipped with
one line saying why. While the index's database cannot be reached, passes
are skipped with one line per outage, and one more when it is back; the
lease a pass interrupted by the outage left behind is this process's own,
taken back at the next pass. ``stop`` (set by SIGTERM/SIGINT) ends the wait
at once and makes a running pass stop between two steps.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from artifactfs.gc.execute import PruneResult, execute
from artifactfs.gc.lease import DEFAULT_TTL, Lease, LeaseHeldError
from artifactfs.stores.layout import count_payloads
from artifactfs.gc.plan import PrunePlan, plan_prune
from artifactfs.gc.policy import PrunePolicy
from artifactfs.index.clock import ClockJumpError
from artifactfs.index.db import Index, describe_index_error, is_unreachable
from artifactfs.units import human_bytes

log = logging.getLogger("artifactfs.gc")


def run_pass(
    index: Index,
    policy: PrunePolicy,
    cancel: threading.Event | None = None,
    lease_ttl: dt.timedelta = DEFAULT_TTL,
) -> tuple[PrunePlan, PruneResult]:
    """One unattended pass: lease, plan, execute, release."""
    with Lease(index, ttl=lease_ttl) as lease:
        plan = plan_prune(index, policy)
        return plan, execute(index, plan, lease, cancel=cancel)


def pass_line(plan: PrunePlan, result: PruneResult) -> str:
    parts = [
        f"condemned {len(result.condemned)}" + (f" (refused {len(result.refused)})" if result.refused else ""),
        f"swept {len(result.swept)} ({result.swept_files} files, {human_bytes(result.swept_bytes)})",
        f"forgot {len(result.forgotten)}",
        f"orphan payloads {count_payloads(result.orphans_deleted)} ({human_bytes(result.orphan_bytes)})",
    ]
    if plan.policy.drops_runs:
        parts.append(f"runs {len(result.runs_deleted)}")
    parts.append(f"waiting {len(plan.waiting)}")
    if result.intents_cleared:
        parts.append(f"stale intents cleared {result.intents_cleared}")
    if result.kept_extra:
        parts.append(f"registered folders with files kept {len(result.kept_extra)}")
    left_alone = [str(o) for o in plan.odd + tuple(result.odd)]
    if left_alone:
        parts.append(f"left alone {len(left_alone)} [{'; '.join(left_alone[:5])}]")
    parts += [f"note [{note}]" for note in plan.notes]
    problems = [str(e) for e in plan.errors + tuple(result.errors)]
    parts.append(f"errors {len(problems)}" + (f" [{'; '.join(problems)}]" if problems else ""))
    line = "gc pass: " + ", ".join(parts) + f", {result.seconds:.2f}s"
    if result.stopped:
        line += f"; stopped: {result.stopped}"
    return line


def run_daemon(
    index_factory,
    policy: PrunePolicy,
    every: dt.timedelta,
    stop: threading.Event,
    lease_ttl: dt.timedelta = DEFAULT_TTL,
    max_passes: int | None = None,
) -> int:
    """Run passes every ``every`` until ``stop`` is set; returns the number of passes."""
    passes = 0
    down_since: float | None = None  # when the index's database stopped answering
    log.info("gc daemon started: every %s; %s", every, policy.describe())
    while not stop.is_set():
        try:
            plan, result = run_pass(index_factory(), policy, cancel=stop, lease_ttl=lease_ttl)
            if down_since is not None:
                log.info("gc: the index's database answers again (down about %.0f s); pruning again",
                         time.monotonic() - down_since)
                down_since = None
            log.info("%s", pass_line(plan, result))
        except (LeaseHeldError, ClockJumpError) as exc:
            log.info("gc pass skipped: %s", exc.message)
        except Exception as exc:  # noqa: BLE001 - one failed pass must not end the daemon
            if not is_unreachable(exc):
                log.error("gc pass failed: %s", describe_index_error(exc))
            elif down_since is None:
                down_since = time.monotonic()
                log.warning("gc: %s; passes are skipped until it answers again", describe_index_error(exc))
        passes += 1
        if max_passes is not None and passes >= max_passes:
            break
        if stop.wait(every.total_seconds()):
            break
    log.info("gc daemon stopped after %d pass(es)", passes)
    return passes
