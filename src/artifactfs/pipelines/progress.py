"""Progress of a pipeline run: one log line per step as it starts and one as
it ends (ran or cached, how long, which artifact versions it produced), and
a line for the whole run, on the ``logging`` logger ``artifactfs.pipelines``.

The program's own logging configuration decides where the lines go and
whether they show: a handler on stderr is installed for the length of a run
only when no handler is configured anywhere on the logger's path (then the
lines show at INFO unless the logger's level was set), and it is removed
afterwards, so a ``logging.basicConfig`` made later never doubles them.
``quiet=True`` (``@pipeline(quiet=True)``, ``.with_options(quiet=True)``)
silences them whatever the configuration.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Mapping

logger = logging.getLogger("artifactfs.pipelines")


class RunProgress:
    """Reports the steps of one run; use as a context manager around the run."""

    def __init__(self, pipeline: str, run_name: str, steps: int, quiet: bool = False) -> None:
        self.pipeline = pipeline
        self.run_name = run_name
        self.steps = steps
        self.quiet = quiet
        self.cached = 0
        self._started = time.monotonic()
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> RunProgress:
        if not self.quiet:
            self._stack.enter_context(_stderr_unless_configured())
        self._log(logging.INFO, f"run {self.run_name}: started, {self.steps} step(s)")
        return self

    def __exit__(self, kind, exc, tb) -> None:
        took = time.monotonic() - self._started
        if kind is None:
            self._log(logging.INFO, f"run {self.run_name}: completed in {took:.2f} s, "
                                    f"{self.cached} of {self.steps} step(s) cached")
        else:
            self._log(logging.ERROR, f"run {self.run_name}: failed after {took:.2f} s")
        self._stack.close()

    @contextlib.contextmanager
    def step(self, number: int, name: str) -> Iterator[StepOutcome]:
        """Brackets one step; the runner fills in the yielded outcome."""
        label = f"step {number}/{self.steps} {name}"
        self._log(logging.INFO, f"{label}: started")
        outcome = StepOutcome()
        started = time.monotonic()
        try:
            yield outcome
        except BaseException as exc:
            why = f"{type(exc).__name__}: {exc}" if isinstance(exc, Exception) else type(exc).__name__
            self._log(logging.ERROR, f"{label}: failed after {time.monotonic() - started:.2f} s ({why})")
            raise
        self.cached += outcome.cached
        how = "cached" if outcome.cached else "ran"
        produced = ", ".join(str(v) for v in outcome.outputs.values()) or "no outputs"
        self._log(logging.INFO, f"{label}: {how} in {time.monotonic() - started:.2f} s -> {produced}")

    def _log(self, level: int, message: str) -> None:
        if not self.quiet:
            logger.log(level, "[%s] %s", self.pipeline, message)


class StepOutcome:
    """What the runner tells about a finished step."""

    def __init__(self) -> None:
        self.cached = False
        self.outputs: Mapping[str, object] = {}


@contextlib.contextmanager
def _stderr_unless_configured() -> Iterator[None]:
    if logger.hasHandlers():  # the program configured logging: its choice stands
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("artifactfs %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    if level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
