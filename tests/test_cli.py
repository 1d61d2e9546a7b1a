"""The command line a newcomer meets: errors that name the real cause (a
missing path, a misspelt name, a bad option) in one line with a hint, and a
CLI that starts without importing the layers it does not need."""

import importlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from artifactfs import register_artifact, save_artifact
from artifactfs.cli.lazy import LazyGroup
from artifactfs.cli.main import COMMANDS, cli
from artifactfs.errors import NotFoundError, PathNotFoundError
from artifactfs.index.migrate import NEW_INDEX

pytest_plugins = ["index_fixtures"]

ARTIFACTFS = str(Path(sys.executable).with_name("artifactfs"))


def run(*args: str, expect: int, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    result = subprocess.run([ARTIFACTFS, *args], capture_output=True, text=True, timeout=120, stdin=stdin)
    assert result.returncode == expect, f"rc {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def one_error(stderr: str) -> tuple[str, str | None]:
    """The (error, hint) of an output that must be exactly one error line and at most one hint."""
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(NEW_INDEX)]
    assert lines and lines[0].startswith("Error: "), stderr
    assert len(lines) <= 2 and all(line.startswith("Hint: ") for line in lines[1:]), stderr
    assert "Traceback" not in stderr and "Usage:" not in stderr
    return lines[0][len("Error: "):], lines[1][len("Hint: "):] if len(lines) > 1 else None


# -- errors that name the real cause -------------------------------------------------------------


@pytest.mark.parametrize("copy", [False, True], ids=["in-place", "copy"])
def test_registering_a_missing_path_says_it_does_not_exist(sqlite_home, tmp_path, copy):
    missing = tmp_path / "ckpts" / "epoch=3"
    with pytest.raises(PathNotFoundError, match="does not exist") as caught:
        register_artifact(missing, "classifier", copy=copy)
    assert isinstance(caught.value, FileNotFoundError)  # what Python callers catch for a missing file
    error, hint = one_error(run("artifact", "register", str(missing), "--name", "classifier",
                                *(["--copy"] if copy else []), expect=1).stderr)
    assert error == f"{missing} does not exist" and "check the path" in hint


def test_a_missing_path_inside_a_store_suggests_the_name_beside_it(sqlite_home):
    store_root = sqlite_home / "data" / "store"
    (store_root / "ckpts" / "epoch=03").mkdir(parents=True)
    error, _ = one_error(run("artifact", "register", str(store_root / "ckpts" / "epoch=3"), "--name", "c",
                             expect=1).stderr)
    assert error.endswith("does not exist; did you mean 'epoch=03'?")


def test_misspelt_names_suggest_the_closest(sqlite_home):
    from artifactfs import Client, get_artifact_version, get_store, pipeline, step

    save_artifact({"lr": 0.01}, "hyperparameters")

    @step
    def one() -> int:
        return 1

    @pipeline(name="training", quiet=True)
    def training():
        one()

    run_name = training().name
    cases = [
        (lambda: get_artifact_version("hyperparams"), "hyperparameters", ["artifact", "show", "hyperparams"]),
        (lambda: get_artifact_version("Hyperparameters", 1), "hyperparameters",
         ["artifact", "versions", "Hyperparameters"]),
        (lambda: get_store("defualt"), "default", ["store", "describe", "defualt"]),
        (lambda: Client().list_pipeline_runs(pipeline="trainig"), "training", ["run", "list", "-p", "trainig"]),
        (lambda: Client().get_pipeline_run(run_name[:-1] + "x"), run_name, ["run", "show", run_name[:-1] + "x"]),
    ]
    for call, closest, argv in cases:
        with pytest.raises(NotFoundError) as caught:
            call()
        assert caught.value.suggestion == closest, argv  # API users get it as a field
        error, _ = one_error(CliRunner().invoke(cli, argv).stderr)
        assert error.endswith(f"did you mean {closest!r}?"), error
    with pytest.raises(NotFoundError) as caught:
        get_artifact_version("zzzzzz")
    assert caught.value.suggestion is None and "did you mean" not in str(caught.value)


def test_usage_errors_are_one_line_and_a_hint(sqlite_home):
    cases = {
        ("gc", "--grace", "5q"): ("--grace: cannot read the duration '5q'", "90s, 10m, 24h"),
        ("gc", "--frobnicate"): ("No such option", "usage: artifactfs gc [OPTIONS]"),
        ("artifact", "register"): ("Missing argument 'PATH'", "usage: artifactfs artifact register [OPTIONS] PATH"),
        ("artifact", "register", "x"): ("Missing option '--name'", "usage: artifactfs artifact register"),
        ("artifcat", "list"): ("no command 'artifcat'; did you mean 'artifact'?", "artifactfs --help"),
        ("artifact", "lst"): ("no command 'lst'; did you mean 'list'?", "artifactfs artifact --help"),
        ("run", "prune", "--older-than", "1d", "--keep-last", "-1"): ("--keep-last: -1 is not in the range",
                                                                       "artifactfs run prune --help"),
    }
    for argv, (error_part, hint_part) in cases.items():
        result = CliRunner().invoke(cli, list(argv))
        assert result.exit_code == 2, (argv, result.output)
        error, hint = one_error(result.stderr)
        assert error_part in error and hint_part in hint, (argv, error, hint)
    error, _ = one_error(run("gc", "--grace", "5q", expect=2).stderr)  # the real script too
    assert error.startswith("--grace:")
    assert run("gc", "--help", expect=0).stdout.startswith("Usage: artifactfs gc")


def test_gc_without_a_terminal_says_to_pass_yes(sqlite_home):
    save_artifact(1, "numbers")
    save_artifact(2, "numbers")  # version 1 is now unreferenced
    result = run("gc", "--grace", "0", "--orphan-grace", "24h", expect=1)
    error, hint = one_error(result.stderr)
    assert "no terminal" in error and hint == "pass -y to go ahead without asking, or --dry-run to only see what would go"
    assert "Will delete 1 payload(s)" in result.stdout  # the plan was shown first
    result = subprocess.run([ARTIFACTFS, "gc", "--grace", "0", "--orphan-grace", "24h"], input="n\n",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Aborted!" in result.stderr  # an answer "no" is not the missing terminal


# -- a fast start -----------------------------------------------------------------------------------


def test_lazy_tables_match_the_commands():
    """The one-line helps that --help shows without importing must be the commands' own."""
    groups = [(cli, COMMANDS), (cli.get_command(click.Context(cli), "artifact"), None)]
    for group, table in groups:
        assert isinstance(group, LazyGroup)
        for name, (target, short_help) in (table or group.lazy).items():
            module, _, attribute = target.partition(":")
            command = getattr(importlib.import_module(module), attribute)
            assert command.name == name
            assert command.get_short_help_str(limit=1000) == short_help, name


PROBED = """
import gc, json, sys
sys.argv = ["artifactfs", *{argv!r}]
from artifactfs.cli.main import main
passes = []
gc.callbacks.append(lambda phase, info: phase == "start" and passes.append(info["generation"]))
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print("PROBED", json.dumps({{"modules": sorted(sys.modules), "passes": passes, "frozen": gc.get_freeze_count()}}))
"""


def probed(*argv: str) -> dict:
    """What running ``artifactfs *argv`` in a fresh interpreter left behind:
    the modules it imported, the collector's passes while ``main`` ran (their
    generations) and the objects frozen at its end."""
    result = subprocess.run([sys.executable, "-c", PROBED.format(argv=list(argv))], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.rsplit("PROBED ", 1)[1])


def imported_by(*argv: str) -> set[str]:
    return set(probed(*argv)["modules"])


def test_help_and_version_import_no_layer(sqlite_home):
    for argv in (["--version"], ["--help"]):
        modules = imported_by(*argv)
        heavy = {m for m in modules if m.split(".")[0] in {"sqlalchemy", "fsspec", "rich", "alembic", "numpy"}}
        layers = {m for m in modules if m.startswith("artifactfs.")
                  and not m.startswith(("artifactfs.cli", "artifactfs.lazy_import"))}
        assert not heavy and not layers, (argv, sorted(heavy | layers))
    version = run("--version", expect=0).stdout
    assert version.strip() == f"artifactfs, version {importlib.metadata.version('artifactfs')}"


def test_artifact_list_imports_only_the_index(sqlite_home):
    save_artifact({"a": 1}, "params")
    assert "params" in run("artifact", "list", expect=0).stdout
    modules = imported_by("artifact", "list")
    assert "sqlalchemy" in modules and "artifactfs.index.summaries" in modules
    # SQLAlchemy Core alone (index.tables): the ORM and its mapped classes cost a fifth of the start.
    unwanted = {"alembic", "fsspec", "numpy", "pandas", "pyarrow", "artifactfs.api", "artifactfs.materializers",
                "artifactfs.pipelines", "sqlalchemy.dialects.postgresql", "sqlalchemy.orm", "artifactfs.index.models"}
    assert not unwanted & modules, sorted(unwanted & modules)


def test_the_copy_progress_bar_names_what_it_does(sqlite_home, tmp_path):
    """The progress bar of ``register --copy`` says "copying" (its style is
    not printed as text by the consoles that print no markup)."""
    (tmp_path / "weights.bin").write_bytes(b"w" * 1000)
    output = run("artifact", "register", "--copy", "--name", "w", str(tmp_path / "weights.bin"), expect=0).stdout
    assert "copying" in output and "[progress" not in output, output


def test_a_command_spares_the_collector_its_passes_over_the_libraries(sqlite_home):
    """Nearly everything a command allocates (the modules of click,
    SQLAlchemy and rich) lives until it exits: the collector passes over it
    rarely while it runs (CPython's default: about 170 passes for `artifact
    list`, a full one among them) and not at all at exit (the heap frozen)."""
    save_artifact({"a": 1}, "params")
    run_of_list = probed("artifact", "list")
    assert len(run_of_list["passes"]) < 40 and 2 not in run_of_list["passes"], run_of_list["passes"]
    assert run_of_list["frozen"] > 10_000


def test_names_print_as_they_are(sqlite_home):
    """A name holding an emoji code (``:fire:``) is printed as it is, not as an emoji."""
    save_artifact({"a": 1}, "run:fire:1")
    listed = run("artifact", "list", expect=0).stdout
    assert "run:fire:1" in listed and "\N{FIRE}" not in listed


def test_what_the_index_holds_prints_as_it_is_not_as_markup(sqlite_home):
    """Names, versions, tags, metadata and run names that look like rich
    markup (``[bold]``, a closing ``[/b]``) print as they are: before, a tag
    ``[red]t`` printed as ``t``, a version ``[v]`` as nothing and a value
    ``[/b]v`` made ``artifact show`` fail with a MarkupError."""
    from artifactfs import pipeline, step

    @step
    def make() -> int:
        return 1

    @pipeline(name="train[v2]", quiet=True)
    def train() -> None:
        make()

    train.with_options(run_name="run[bold]1")()
    save_artifact(3, "data[raw]", version="[v]", tags=["[red]t"], metadata={"k[x]": "[/b]v"})
    shown = {argv: run(*argv, expect=0).stdout for argv in [
        ("artifact", "list"), ("artifact", "versions", "data[raw]"), ("artifact", "show", "data[raw]"),
        ("run", "list"), ("run", "show", "run[bold]1"), ("pipeline", "list")]}
    assert "data[raw]" in shown["artifact", "list"] and "[v]" in shown["artifact", "list"]
    assert "Versions of data[raw]" in shown["artifact", "versions", "data[raw]"]
    assert "[red]t" in shown["artifact", "versions", "data[raw]"]
    assert "k[x]" in shown["artifact", "show", "data[raw]"] and "[/b]v" in shown["artifact", "show", "data[raw]"]
    assert "run[bold]1" in shown["run", "list"] and "train[v2]" in shown["pipeline", "list"]
    assert shown["run", "show", "run[bold]1"].startswith("run[bold]1 (train[v2]) completed")


@pytest.mark.parametrize("module", ["artifactfs.enums", "artifactfs.materializers", "artifactfs.durations"])
def test_naming_an_enum_or_a_materializer_loads_no_sqlalchemy(module):
    """The bottom layers name the index's enums without loading the index
    (SQLAlchemy is most of a cold start); every module of a package counts."""
    code = f"import importlib, pkgutil, sys, {module} as top\n" \
           "for found in pkgutil.iter_modules(getattr(top, '__path__', [])): " \
           "importlib.import_module(f'{top.__name__}.{found.name}')\n" \
           "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy' " \
           "or m.startswith('artifactfs.index')); assert not loaded, loaded"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_schema_check_remembers_the_head(sqlite_home, tmp_path):
    from artifactfs.index import migrate

    cache = tmp_path / "cache"
    assert migrate.known_head(cache) == migrate.head_revision()
    remembered = json.loads((cache / "schema-head.json").read_text())
    (cache / "schema-head.json").write_text(json.dumps({**remembered, "head": "remembered"}))
    assert migrate.known_head(cache) == "remembered"  # same migration files: no Alembic needed
    (cache / "schema-head.json").write_text(json.dumps({"head": "stale", "files": remembered["files"][:-1]}))
    assert migrate.known_head(cache) == migrate.head_revision()  # a migration was added: asked again
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    assert migrate.known_head(not_a_folder / "cache") == migrate.head_revision()  # an unusable cache is no error
