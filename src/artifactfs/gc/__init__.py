"""The pruner: removes what nothing references any more, safely.

Delete protocol (DESIGN.md): *condemn* unreferenced versions in one
transaction that re-checks every condition under the row locks, *sweep*
their payloads after the sweep delay, *forget* their rows, and delete
*orphan* payload folders older than the grace period. ``plan_prune`` only
reads and returns a frozen plan; ``execute`` runs the phases under the
lease. This package talks only to ``index`` and ``stores``.
"""

from artifactfs.gc.daemon import pass_line, run_daemon, run_pass
from artifactfs.gc.execute import PruneCancelled, PruneResult, execute
from artifactfs.gc.fsck import Finding, FsckReport, fsck, repair
from artifactfs.gc.lease import Lease, LeaseHeldError, LeaseLostError, current_lease
from artifactfs.gc.payloads import StoreFailure, StoreProblem
from artifactfs.gc.plan import OrphanRef, PrunePlan, PruneStats, StoreStats, plan_prune
from artifactfs.gc.policy import (
    DEFAULT_DAEMON_SWEEP_DELAY,
    DEFAULT_GRACE,
    PolicyError,
    PrunePolicy,
    format_duration,
    load_policy_file,
    parse_duration,
)

__all__ = [
    "DEFAULT_DAEMON_SWEEP_DELAY",
    "DEFAULT_GRACE",
    "Finding",
    "FsckReport",
    "Lease",
    "LeaseHeldError",
    "LeaseLostError",
    "OrphanRef",
    "PolicyError",
    "PruneCancelled",
    "PrunePlan",
    "PrunePolicy",
    "PruneResult",
    "PruneStats",
    "StoreFailure",
    "StoreProblem",
    "StoreStats",
    "current_lease",
    "execute",
    "format_duration",
    "fsck",
    "load_policy_file",
    "parse_duration",
    "pass_line",
    "plan_prune",
    "repair",
    "run_daemon",
    "run_pass",
]
