"""Progress lines of pipeline runs: one per step as it starts and ends (ran or
cached, time, outputs) on stderr when the program configured no logging;
the program's logging configuration, quiet=True and -q silence them."""

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from artifactfs.index.migrate import NEW_INDEX
from artifactfs import pipeline, step

pytest_plugins = ["index_fixtures"]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "training_pipeline.py"


@step
def numbers(n: int = 3) -> list:
    return list(range(n))


@step
def total(values: list) -> float:
    return float(sum(values))


@step
def explode(values: list) -> int:
    raise ValueError("no good")


@pipeline
def summing(n: int = 3):
    total(numbers(n=n))


@pipeline
def failing():
    explode(numbers())


def progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "artifactfs.pipelines"]


def test_a_line_per_step_start_and_end(sqlite_home, caplog):
    caplog.set_level(logging.INFO, logger="artifactfs.pipelines")
    run = summing(n=4)
    lines = progress_lines(caplog)
    assert lines[0] == f"[summing] run {run.name}: started, 2 step(s)"
    assert lines[1] == "[summing] step 1/2 numbers: started"
    assert lines[2].startswith("[summing] step 1/2 numbers: ran in ") and lines[2].endswith(" s -> summing::numbers::output:1")
    assert lines[3] == "[summing] step 2/2 total: started"
    assert lines[4].endswith(" s -> summing::total::output:1") and ": ran in " in lines[4]
    assert lines[5].startswith(f"[summing] run {run.name}: completed in ") and lines[5].endswith("0 of 2 step(s) cached")
    caplog.clear()
    summing(n=4)  # the same inputs again: both steps come from the cache
    lines = progress_lines(caplog)
    assert ": cached in " in lines[2] and lines[2].endswith("-> summing::numbers::output:1")
    assert lines[-1].endswith("2 of 2 step(s) cached")


def test_a_failing_step_says_so(sqlite_home, caplog):
    caplog.set_level(logging.INFO, logger="artifactfs.pipelines")
    with pytest.raises(ValueError, match="no good"):
        failing()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0].startswith("[failing] step 2/2 explode: failed after ") and "(ValueError: no good)" in errors[0]
    assert errors[1].startswith("[failing] run failing-") and ": failed after " in errors[1]


def test_quiet_option_logs_nothing(sqlite_home, caplog):
    caplog.set_level(logging.DEBUG, logger="artifactfs.pipelines")
    summing.with_options(quiet=True)(n=2)
    pipeline(quiet=True)(summing.entrypoint)(n=5)
    assert progress_lines(caplog) == []


SCRIPT = """
import logging, sys
sys.path.insert(0, {tests!r})
from test_progress import summing

def mark(text):
    print("==", text, file=sys.stderr, flush=True)

mark("unconfigured")
summing(n=2)
mark("quiet")
summing.with_options(quiet=True)(n=3)
mark("logger level warning")
logging.getLogger("artifactfs.pipelines").setLevel(logging.WARNING)
summing(n=4)
logging.getLogger("artifactfs.pipelines").setLevel(logging.NOTSET)
mark("basicConfig warning")
logging.basicConfig(level=logging.WARNING, format="MINE %(name)s %(message)s")
summing(n=5)
mark("basicConfig info")
logging.getLogger().setLevel(logging.INFO)
summing(n=6)
mark("end")
"""


def test_stderr_unless_the_program_configures_logging(sqlite_home, tmp_path):
    script = tmp_path / "progress_script.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    sections, current = {}, None
    lines = result.stderr.splitlines()
    assert sum(line.startswith(NEW_INDEX) for line in lines) == 1  # the fresh home's index, announced once
    for line in lines:
        if line.startswith(NEW_INDEX):
            continue
        if line.startswith("== "):
            current = sections.setdefault(line[3:], [])
        elif current is not None:
            current.append(line)
    unconfigured = sections["unconfigured"]
    assert len(unconfigured) == 6 and all(line.startswith("artifactfs [summing] ") for line in unconfigured)
    assert "step 1/2 numbers: started" in unconfigured[1] and ": ran in " in unconfigured[2]
    assert sections["quiet"] == []
    assert sections["logger level warning"] == []
    assert sections["basicConfig warning"] == []  # the program's level says no
    configured = sections["basicConfig info"]  # its handler and format, each line once
    assert len(configured) == 6 and all(line.startswith("MINE artifactfs.pipelines [summing] ") for line in configured)


def test_example_script_quiet_flag(sqlite_home):
    loud = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, check=True, timeout=120)
    assert "step 4/4 evaluate: ran in" in loud.stderr and "run training_pipeline-" in loud.stdout
    quiet = subprocess.run([sys.executable, str(EXAMPLE), "-q"], capture_output=True, text=True, check=True, timeout=120)
    assert quiet.stderr == "" and "cached steps: load_data, split, train, evaluate" in quiet.stdout
