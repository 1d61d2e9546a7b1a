"""Mutation check of the write and delete protocols: does a test fail when a
step of a protocol is broken?

    python tools/mutate.py                 # every mutation (slow: minutes each)
    python tools/mutate.py NAME...         # only these
    python tools/mutate.py --check         # only say which patterns still match the code
    python tools/mutate.py --list          # the mutations and the tests that guard them

Each mutation is a small regular expression on one source file (flip a
condition, drop a lock, swap the database's clock for the host's, skip the
payload check or the intent, ...) and the tests named to guard that step.
For each, the file is changed, those tests run (``pytest -x``), and the file
is put back byte for byte (also on Ctrl-C). A mutation is ``killed`` when a
test fails, ``SURVIVED`` when they all pass (a missing test: write one),
``NO MATCH`` when its pattern no longer matches the code (the code moved:
update the pattern), ``ERROR`` when the tests could not run (collection
error, timeout). Exit status 0 only when every mutation was killed.

Run it with the interpreter of the test environment, from anywhere: the
tests import this checkout's ``src/`` (PYTHONPATH is set for them).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "artifactfs"


@dataclass(frozen=True)
class Mutation:
    """One broken step: ``pattern`` (a regular expression that must match
    exactly once in ``path``, relative to src/artifactfs) becomes ``replacement``."""

    name: str
    protocol: str  # "write" or "delete"
    path: str
    pattern: str
    replacement: str
    tests: tuple[str, ...]
    what: str


W, D = "write", "delete"
WP, NL, GC = "tests/test_write_protocol.py::", "tests/test_gc_never_lose.py::", "tests/test_gc.py::"

MUTATIONS = (
    # -- write protocol ---------------------------------------------------------------------
    Mutation("skip-intent", W, "api/writing.py",
             r"(intent_ids, started = record_intents\(session, self\._store_id, writes\))",
             r"\1; clear_intents(session, intent_ids)  # recorded and gone", (WP + "test_the_intent_comes_first_and_the_commit_clears_it",),
             "step 1: no write intent recorded before the payload is written"),
    # The host's clock as a SQL literal: the time this process started, by its own clock.
    Mutation("intent-on-host-clock", W, "index/tables.py",
             r'Column\("started_at", TIME, nullable=False, default=index_now\(\), server_default=func\.now\(\)\)',
             'Column("started_at", TIME, nullable=False, server_default=func.now(), default=__import__("sqlalchemy")'
             '.literal(__import__("datetime").datetime.now(__import__("datetime").timezone.utc)))',
             ("tests/test_intents.py::test_an_intent_written_by_a_host_whose_clock_is_behind_is_still_young",),
             "step 1: the intent's start time from this host's clock, not the database's"),
    Mutation("skip-durability", W, "api/writing.py", r"\n        self\._wait_durable\(\)  # the payloads are durable before the commit", "\n        pass",
             (WP + "test_payload_files_and_folders_are_fsynced_before_the_commit",),
             "step 3: commit without waiting for the payload's fsyncs"),
    Mutation("skip-payload-check", W, "api/writing.py", r"\n        for payload in self\.payloads:\n            self\._check\(payload\)", "\n        pass",
             (WP + "test_a_commit_refuses_a_payload_that_vanished",
              WP + "test_a_payload_deleted_while_it_is_fsynced_is_refused_clearly"),
             "step 4: commit without checking the payload is still there"),
    Mutation("keep-intent-at-commit", W, "api/writing.py", r"\n        clear_intents\(session, \[p\.intent_id for p in self\.payloads\]\)",
             "\n        pass", (WP + "test_the_intent_comes_first_and_the_commit_clears_it",),
             "step 4: the commit leaves the write intent behind"),
    Mutation("skip-abandon", W, "api/writing.py",
             r"\n            if kind is not None and not self\._done:\n                self\.abandon\(\)", "\n            pass",
             (WP + "test_a_failed_commit_removes_payload_and_visualizations_on_every_flavor",
              WP + "test_a_failed_save_removes_its_folder_and_intent"),
             "a failed commit leaves its folder and intent"),
    Mutation("link-any-state", W, "index/pipelines.py", r"if found\.get\(version_id\) != LIVE:",
             "if found.get(version_id) is None:",
             (WP + "test_linking_reads_the_row_not_the_sessions_cached_copy", GC + "test_link_refuses_condemned_version"),
             "linking an input accepts a condemned version"),
    Mutation("link-without-lock", W, "index/pipelines.py",
             r"\n        \.order_by\(ArtifactVersion\.id\)\.with_for_update\(read=True, of=ArtifactVersion\)",
             "\n        .order_by(ArtifactVersion.id)",
             (WP + "test_a_pruner_never_condemns_a_version_a_run_is_linking",),
             "linking an input checks the state without share-locking the row"),
    # -- delete protocol --------------------------------------------------------------------
    Mutation("condemn-without-recheck", D, "index/gc.py", r"still = \[ref\.id for ref in _refs\(session, recheck\)\]",
             "still = list(locked)",
             (GC + "test_condemn_rechecks_what_changed_after_the_plan", GC + "test_shared_payload_is_never_deleted"),
             "condemn: no re-check inside the transaction that a version still qualifies"),
    Mutation("condemn-without-lock", D, "index/gc.py",
             r"(Returns ``\(condemned ids, ids that no longer qualify\)``\.\n(?:.*\n)*?)"
             r"            lock = lock\.with_for_update\(skip_locked=True\)", r"\1            pass",
             (WP + "test_a_pruner_never_condemns_a_version_a_run_is_linking",),
             "condemn: the version rows are not locked (PostgreSQL)"),
    Mutation("condemn-ignores-grace", D, "index/gc.py", r"VersionRow\.created_at < cutoff", "VersionRow.created_at is not None",
             (GC + "test_grace_protects_young_versions",), "candidates: the grace period is ignored"),
    Mutation("sweep-ignores-delay", D, "index/gc.py", r", VersionRow\.condemned_at <= cutoff\n", "\n",
             (GC + "test_sweep_delay_hides_then_sweeps", GC + "test_sweep_rechecks_state_and_delay_after_the_plan"),
             "sweep: a payload is deleted before the sweep delay"),
    # Not a mutation here: dropping "VersionRow.state == CONDEMNED" from sweepable() changes nothing, since every
    # version that is not condemned has no condemned_at (revive() clears it) and the same query
    # requires condemned_at <= cutoff: an equivalent mutant.
    Mutation("no-lease-check", D, "gc/execute.py", r"\n        if self\.lease is not None:\n            self\.lease\.check\(\)",
             "\n        pass", (GC + "test_pruner_that_lost_its_lease_stops_before_deleting",),
             "a pruner that lost its lease goes on deleting"),
    Mutation("lease-on-host-clock", D, "index/gc.py",
             r"(    index's now\)``\.\"\"\"\n(?:.*\n)*?)    now = database_now\(session\)",
             r"\1    now = dt.datetime.now(dt.timezone.utc)",
             ("tests/test_gc_lease.py::test_expiry_runs_on_the_database_clock",),
             "lease: expiry compared with this host's clock"),
    Mutation("no-orphan-floor", D, "gc/policy.py", r"return max\(asked, ORPHAN_FLOOR\)", "return asked",
             (NL + "test_a_save_paused_before_its_commit_survives_gc_with_zero_grace", GC + "test_orphan_rules"),
             "orphans: the one-hour floor can be lowered by a flag"),
    Mutation("ignore-live-intents", D, "gc/orphans.py",
             r"in_flight = live_intent_folders\(session, store_id, orphan_age\)", "in_flight = set()",
             (NL + "test_a_live_write_intent_protects_even_an_old_folder",),
             "orphans: a folder a live write intent covers is swept"),
    Mutation("orphans-on-host-clock", D, "gc/plan.py", r"orphan_cutoff = min\(now, utcnow\(\)\) - policy\.orphan_cutoff_age",
             "orphan_cutoff = utcnow() - policy.orphan_cutoff_age",
             (NL + "test_orphans_are_aged_by_the_database_clock_not_a_fast_local_one",),
             "orphans: aged by this host's clock when it runs ahead"),
    Mutation("sweep-foreign-store", D, "gc/orphans.py", r"if ownership\.state == FOREIGN:", "if False:",
             (NL + "test_a_store_another_index_owns_needs_force_to_claim",
              NL + "test_the_plan_lists_no_orphans_in_a_store_another_index_owns"),
             "orphans: swept in a store whose marker names another index"),
    Mutation("sweep-unowned-at-execute", D, "gc/execute.py", r"\n        if state == OWNED:\n            owned\.add\(store_id\)",
             "\n        owned.add(store_id)",
             (NL + "test_a_store_claimed_by_another_index_after_the_plan_is_not_swept",),
             "orphans: the pass deletes without reading the store's marker again"),
)


def apply(mutation: Mutation, text: str) -> str | None:
    """The mutated text, or None when the pattern does not match exactly once."""
    found = list(re.finditer(mutation.pattern, text))
    if len(found) != 1:
        return None
    return text[:found[0].start()] + found[0].expand(mutation.replacement) + text[found[0].end():]


def run_tests(mutation: Mutation, timeout: float) -> tuple[str, float]:
    """``(verdict, seconds)`` of the guarding tests against the mutated tree."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-x", "-q",
                               *mutation.tests], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "ERROR (timeout)", time.monotonic() - started
    seconds = time.monotonic() - started
    if done.returncode == 1:
        return "killed", seconds
    if done.returncode == 0:
        return "SURVIVED", seconds
    return f"ERROR (pytest exit {done.returncode}: {done.stdout.strip().splitlines()[-1:] or done.stderr[-200:]})", seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only these mutations")
    parser.add_argument("--check", action="store_true", help="only report which patterns match the code")
    parser.add_argument("--list", action="store_true", help="list the mutations and their tests")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for one mutation's tests")
    args = parser.parse_args()
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"no mutation {', '.join(sorted(unknown))}; see --list")
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    if args.list:
        for m in chosen:
            print(f"{m.name:<26} {m.protocol:<7} {m.path}: {m.what}\n{'':<35}tests: {' '.join(m.tests)}")
        return 0
    rows = []
    for m in chosen:
        path = SRC / m.path
        original = path.read_bytes()
        mutated = apply(m, original.decode())
        if mutated is None:
            rows.append((m, "NO MATCH", 0.0))
        elif args.check:
            rows.append((m, "matches", 0.0))
        else:
            try:
                path.write_text(mutated)
                verdict, seconds = run_tests(m, args.timeout)
            finally:
                path.write_bytes(original)
            rows.append((m, verdict, seconds))
            print(f"{m.name}: {verdict} ({seconds:.0f} s)", file=sys.stderr, flush=True)
    print(f"{'mutation':<26} {'protocol':<8} {'file':<20} {'result':<10} {'s':>5}  tests")
    for m, verdict, seconds in rows:
        print(f"{m.name:<26} {m.protocol:<8} {m.path:<20} {verdict:<10} {seconds:5.0f}  {len(m.tests)} "
              f"({', '.join(t.rsplit('::', 1)[-1] for t in m.tests)})")
    bad = [m.name for m, verdict, _ in rows if verdict not in ("killed", "matches")]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} {'match' if args.check else 'killed'}"
          + (f"; not: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
