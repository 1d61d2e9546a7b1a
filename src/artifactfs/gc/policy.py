"""What a prune pass may remove: the policy (grace, sweep delay, protected
tags, newest versions kept, run retention, -a/-m/-i) and policy files for
the daemon; durations are read by ``artifactfs.durations``. Nothing here
touches the index."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifactfs.durations import DurationError, format_duration, parse_duration
from artifactfs.errors import ArtifactfsError

DEFAULT_GRACE = dt.timedelta(hours=24)
#: Payload folders no row names stay at least this long, whatever the flags:
#: a save still writing has no row yet.
ORPHAN_FLOOR = dt.timedelta(hours=1)
#: Name folders of one remote store listed for orphans per pass, by default.
DEFAULT_SCAN_LIMIT = 64
DEFAULT_DAEMON_SWEEP_DELAY = dt.timedelta(minutes=10)
DEFAULT_KEEP_TAG = "keep"


class PolicyError(ArtifactfsError, ValueError):
    """A policy file or a combination of options that cannot be used."""


@dataclass(frozen=True)
class PrunePolicy:
    """Everything that decides what a pass removes.

    Attributes:
        grace: versions created and orphan payloads written more recently are never touched.
        sweep_delay: a condemned version's payload is deleted only this long after condemning
            (so readers of a live mount finish); 0 frees space at once.
        keep_tags: versions with any of these tags are protected.
        keep_latest: the newest N live versions of every artifact name are protected.
        only_artifact: delete payloads only; rows stay condemned (hidden) with ``swept_at`` set.
        only_metadata: delete rows only; payloads stay (the orphan sweep of a later full pass
            removes payload folders; registered-in-place files are left alone).
        ignore_errors: kept for old policy files; a pass always goes on past a failing
            store (or an odd entry) and reports it.
        strict: the CLI exits with a distinct code when a store failed or an entry was skipped.
        runs_older_than: also delete finished runs started longer ago than this.
        keep_last_runs: with ``runs_older_than``, keep the newest N runs of each pipeline.
        run_pipeline: with ``runs_older_than``, only runs of this pipeline.
        orphan_grace: age below which a payload folder no row names is left alone
            (None: the grace period). It never goes below :data:`ORPHAN_FLOOR`, and a
            folder whose save is still in flight (a live write intent) is never touched.
        scan_limit: name folders of one remote store listed for orphans per pass (None:
            all); the rest are listed by later passes, those listed longest ago first.
        trust_clock: (SQLite) take this host's clock as the index's even when it
            disagrees with the latest time a writer saw (a user checked it).
    """

    grace: dt.timedelta = DEFAULT_GRACE
    sweep_delay: dt.timedelta = dt.timedelta(0)
    keep_tags: frozenset[str] = field(default_factory=lambda: frozenset({DEFAULT_KEEP_TAG}))
    keep_latest: int = 1
    only_artifact: bool = False
    only_metadata: bool = False
    ignore_errors: bool = False
    runs_older_than: dt.timedelta | None = None
    keep_last_runs: int = 0
    run_pipeline: str | None = None
    orphan_grace: dt.timedelta | None = None
    strict: bool = False
    scan_limit: int | None = DEFAULT_SCAN_LIMIT
    trust_clock: bool = False

    def __post_init__(self) -> None:
        if self.only_artifact and self.only_metadata:
            raise PolicyError(
                "--only-artifact and --only-metadata exclude each other",
                "leave both out to remove payloads and rows",
            )
        if self.keep_latest < 0 or self.keep_last_runs < 0:
            raise PolicyError("keep counts must be 0 or more")
        if self.scan_limit is not None and self.scan_limit < 1:
            raise PolicyError("scan_limit must be 1 or more", "leave it out (or pass --full-scan) to list everything")
        for name in ("grace", "sweep_delay", "runs_older_than", "orphan_grace"):
            value = getattr(self, name)
            if value is not None and value < dt.timedelta(0):
                raise PolicyError(f"{name} must not be negative")

    @property
    def orphan_cutoff_age(self) -> dt.timedelta:
        """How old an orphan must be: the orphan grace (default: the grace), never below the floor."""
        asked = self.grace if self.orphan_grace is None else self.orphan_grace
        return max(asked, ORPHAN_FLOOR)

    @property
    def clock_tolerance(self) -> dt.timedelta:
        """How far (SQLite) this pass's clock may run ahead of the latest time
        a writer of the index saw: its smallest protecting age (a jump beyond
        it could make the freshest data look old enough to go)."""
        ages = [self.grace, self.orphan_cutoff_age]
        if self.drops_runs and self.runs_older_than is not None:
            ages.append(self.runs_older_than)
        if self.sweep_delay > dt.timedelta(0):
            ages.append(self.sweep_delay)
        return min(ages)

    @property
    def drops_runs(self) -> bool:
        return self.runs_older_than is not None and not self.only_artifact

    @property
    def sweeps(self) -> bool:
        return not self.only_metadata

    @property
    def forgets(self) -> bool:
        return not self.only_artifact

    def replace(self, **changes: Any) -> PrunePolicy:
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        parts = [f"grace {format_duration(self.grace)}", f"sweep delay {format_duration(self.sweep_delay)}",
                 f"keep latest {self.keep_latest}", f"keep tags {', '.join(sorted(self.keep_tags)) or '-'}"]
        if self.orphan_grace is not None or self.grace < ORPHAN_FLOOR:
            parts.append(f"orphan grace {format_duration(self.orphan_cutoff_age)}")
        if self.runs_older_than is not None:
            parts.append(f"runs older than {format_duration(self.runs_older_than)} (keep last {self.keep_last_runs})")
        if self.only_artifact:
            parts.append("payloads only")
        if self.only_metadata:
            parts.append("rows only")
        return ", ".join(parts)


_FILE_KEYS = {
    "grace", "sweep_delay", "keep_tags", "keep_latest", "only_artifact", "only_metadata", "ignore_errors",
    "runs_older_than", "keep_last_runs", "run_pipeline", "orphan_grace", "strict", "scan_limit",
}


def policy_from_mapping(data: dict[str, Any], base: PrunePolicy | None = None, where: str = "policy") -> PrunePolicy:
    """A policy from plain values (durations as strings), on top of ``base``."""
    base = base or PrunePolicy()
    data = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise PolicyError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}",
                          f"known settings: {', '.join(sorted(_FILE_KEYS))}")
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("grace", "sweep_delay", "runs_older_than", "orphan_grace"):
            nullable = key in ("runs_older_than", "orphan_grace")
            try:
                changes[key] = None if value is None and nullable else parse_duration(value)
            except DurationError as exc:
                raise PolicyError(f"{where}: {key}: {exc.message}", exc.hint) from None
        elif key == "keep_tags":
            tags = [value] if isinstance(value, str) else list(value or [])
            changes[key] = frozenset(str(t) for t in tags)
        elif key in ("keep_latest", "keep_last_runs", "scan_limit"):
            if key == "scan_limit" and value is None:
                changes[key] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise PolicyError(f"{where}: {key} must be a whole number, got {value!r}")
            changes[key] = value
        elif key == "run_pipeline":
            changes[key] = None if value is None else str(value)
        else:
            if not isinstance(value, bool):
                raise PolicyError(f"{where}: {key} must be true or false, got {value!r}")
            changes[key] = value
    return base.replace(**changes)


def load_policy_file(path: str | Path, base: PrunePolicy | None = None) -> PrunePolicy:
    """A policy from a TOML (``.toml``) or JSON file; settings it leaves out come from ``base``.

    Example (TOML)::

        grace = "24h"
        sweep_delay = "10m"
        keep_latest = 3
        keep_tags = ["keep", "production"]
        runs_older_than = "30d"
        keep_last_runs = 10
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from exc
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = _toml().loads(text)
    except ValueError as exc:
        raise PolicyError(f"policy file {path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {path} must hold a table of settings")
    return policy_from_mapping(data, base, where=str(path))


def _toml():
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise PolicyError("reading TOML needs Python 3.11 or the tomli package", "write the policy as JSON") from None
    return tomllib
