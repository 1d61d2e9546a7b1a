"""The ZenML yardstick: run ZenML 0.98's own test files against ZenML 0.98
itself and against artifactfs, and say per file which tests artifactfs passes.

NOT part of the CI suite, and nothing of ZenML's is committed here: ZenML's
test files are public code we may read but not copy into this repository,
and they are not in ZenML's PyPI package, so CI cannot obtain them. You bring
them yourself, as a directory of files (one sub-folder per version, e.g.
``SRC/1ced507/tests/integration/functional/artifacts/test_artifacts_linage.py``),
and this script works on copies in a scratch folder OUTSIDE the repository::

    python tools/zenml_yardstick/run.py SRC \\
        --zenml-python /work/zenml-venv/bin/python   # a venv with zenml[local]==0.98.0

For every test file under SRC it:

1. copies the file into the scratch folder and rewrites its imports (with
   ``ast``, nothing else in the file changes): ``from zenml.x import a`` and
   ``import zenml`` go through ``support.resolve``, which gives ZenML's own
   name when run under ZenML and the name ``tests/zenml_compat/zenml_shim.py``
   maps it to when run here. A name one side lacks (a file version written
   for another ZenML, or a name artifactfs has no counterpart for) becomes a
   ``Missing`` that fails the tests using it, not the file's import.
   ``from tests....`` helpers of ZenML's test harness (its conftest steps,
   ``sample_name``, the ``clean_client``/``clean_client_with_run``/
   ``connected_two_step_pipeline`` fixtures) are our own re-creations in
   ``support.py`` and ``scratch_conftest.py``; other ``tests.*`` helpers
   come from that module's file when it is brought in the same version
   folder (``tests/unit/test_general.py``'s ``_test_materializer``);
2. marks as skipped, with the reason, every test whose body (or a helper or
   fixture of the same file it uses) needs what artifactfs has on purpose
   not: ZenML's server and its store, stacks and stack components,
   orchestrators and schedules, the Model Control Plane, users, projects,
   secrets, run templates; and tests that ``mock.patch`` ZenML's own
   modules (rules in ``ABSENT`` below);
3. runs all files with pytest under ZenML 0.98 (``--zenml-python``): a test
   that passes there is *kept*, one that fails is listed with ZenML's own
   first failure line;
4. runs them again with this checkout's artifactfs (``src/`` on PYTHONPATH)
   and prints, per file: tests, skipped, kept, passed here of the kept, and
   the first line of each kept test's failure here. A test is a module-level
   ``test*`` function or a ``test*`` method of a ``Test*`` class; a
   parametrized test counts once and passes only when every case passes.

``--json FILE`` writes the same figures for tooling; ``--keep`` leaves the
scratch folder for a look at a failure (``--scratch DIR`` picks it; its
``pytest-zenml.log`` and ``pytest-here.log`` hold both runs' output).
``-k EXPR`` is passed on to both pytest runs, ``--only GLOB`` picks files,
``--here-only`` reuses the ZenML side's results of the same ``--scratch``
(ZenML's side takes minutes; artifactfs's seconds).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# What a test needs that artifactfs leaves out on purpose, as regular
# expressions over the source of the test, its decorators and the module-level
# helpers and fixtures it names (followed transitively). First match wins.
ABSENT: list[tuple[str, str]] = [
    (r"\bModel\b|ModelVersion|model_version|\bget_model\b|create_model|ModelStages|"
     r"\bmodel=|(?:get_step_context|get_pipeline_context)\(\)\.model\b|is_model_artifact|link_artifact_to_model|log_model_metadata",
     "needs the Model Control Plane (artifactfs has no model registry)"),
    (r"create_stack|stack_component|StackComponentType|active_stack_model|activate_stack|"
     r"get_stack\b|update_stack|delete_stack|_local_stack|flavor",
     "needs ZenML stacks and stack components (artifactfs has stores only)"),
    (r"orchestrator|\bSchedule\b|schedule=|step_operator",
     "needs ZenML orchestrators or schedules (artifactfs runs steps locally)"),
    (r"zen_store|Client\.initialize|find_repository|activate_root|is_repository_directory|"
     r"\.root\b|active_user|active_workspace|active_project|create_user|service_account|"
     r"api_key|_secret|code_repositor|run_template|snapshot|PipelineBuild|PipelineDeployment|"
     r"create_service|create_service_connector|\bServer|get_settings",
     "needs the ZenML server or its store, users, projects, secrets, builds or templates"),
    (r"\._finalize_configuration|\bCompiler\(|\.prepare\(\)|\._invocations|PipelineRunConfiguration",
     "drives ZenML's pipeline compiler or private step internals"),
    (r"patch(?:\.object)?\(\s*[\"']zenml\.",
     "patches ZenML's internal modules (mock.patch of a 'zenml.' path)"),
]


@dataclass
class FileResult:
    label: str
    tests: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    zenml: dict[str, tuple[str, str]] = field(default_factory=dict)  # test -> (outcome, first line)
    here: dict[str, tuple[str, str]] = field(default_factory=dict)

    def kept(self) -> list[str]:
        return [t for t in self.tests if t not in self.skipped and self.zenml.get(t, ("", ""))[0] == "passed"]

    def passed_here(self) -> list[str]:
        return [t for t in self.kept() if self.here.get(t, ("", ""))[0] == "passed"]


# ---------------------------------------------------------------- rewriting


def _resolve_call(module: str, name: str) -> str:
    return f"_zy({module!r}, {name!r})"


def rewrite_imports(source: str) -> str:
    """The file with every ``zenml`` and ``tests`` import replaced by a lookup
    through ``support.resolve``; line numbers stay where they were."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            root = node.module.split(".")[0]
            if root not in ("zenml", "tests"):
                continue
            parts = []
            for alias in node.names:
                if alias.name == "*":
                    raise SystemExit(f"star import from {node.module} cannot be rewritten")
                parts.append(f"{alias.asname or alias.name} = {_resolve_call(node.module, alias.name)}")
            edits.append((node.lineno, node.end_lineno, "; ".join(parts)))
        elif isinstance(node, ast.Import):
            names = [a for a in node.names if a.name.split(".")[0] in ("zenml", "tests")]
            if not names:
                continue
            if len(names) != len(node.names):
                raise SystemExit(f"line {node.lineno}: mixed import cannot be rewritten")
            parts = []
            for alias in names:
                bound = alias.asname or alias.name.split(".")[0]
                target = alias.name if alias.asname else alias.name.split(".")[0]
                parts.append(f"{bound} = _zy_module({target!r})")
            edits.append((node.lineno, node.end_lineno, "; ".join(parts)))
    for start, end, text in sorted(edits, reverse=True):
        indent = re.match(r"\s*", lines[start - 1]).group(0)
        lines[start - 1:end] = [indent + text + "\n"] + ["\n"] * (end - start)
    # The lookup functions go after the docstring and __future__ imports.
    insert_at = 0
    for node in tree.body:
        if (isinstance(node, ast.ImportFrom) and node.module == "__future__") or (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            and node is tree.body[0]
        ):
            insert_at = node.end_lineno
        else:
            break
    header = "from support import resolve as _zy, resolve_module as _zy_module  # zenml_yardstick\n"
    if insert_at:
        lines[insert_at - 1] = lines[insert_at - 1].rstrip("\n") + "; " + header
    else:
        lines[0:0] = [header.rstrip("\n") + "  # (one line added)\n"]
    return "".join(lines)


# ---------------------------------------------------------------- skipping


def _test_nodes(tree: ast.Module):
    """(name, node) of every test: module-level ``test*`` functions and the
    ``test*`` methods of ``Test*`` classes (named ``Class::method``)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                    yield f"{node.name}::{item.name}", item


def test_names(tree: ast.Module) -> list[str]:
    return [name for name, _ in _test_nodes(tree)]


def absent_reasons(source: str) -> dict[str, str]:
    """test name -> why it cannot run against artifactfs (rules in ABSENT)."""
    tree = ast.parse(source)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    assigns = {}
    for n in tree.body:
        if isinstance(n, ast.Assign):
            for t in n.targets:
                if isinstance(t, ast.Name):
                    assigns[t.id] = n

    def text_of(node: ast.AST) -> str:
        seen: set[str] = set()
        todo = [node]
        out = []
        while todo:
            cur = todo.pop()
            out.append(ast.get_source_segment(source, cur) or "")
            for dec in getattr(cur, "decorator_list", []):
                out.append(ast.get_source_segment(source, dec) or "")
            names = {n.id for n in ast.walk(cur) if isinstance(n, ast.Name)}
            if isinstance(cur, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names |= {a.arg for a in cur.args.args}  # fixtures of the same file
            for name in names - seen:
                seen.add(name)
                target = defs.get(name) or assigns.get(name)
                if target is not None and target is not cur:
                    todo.append(target)
        return "\n".join(out)

    reasons = {}
    for name, node in _test_nodes(tree):
        text = text_of(node)
        for pattern, reason in ABSENT:
            match = re.search(pattern, text)
            if match:
                reasons[name] = f"{reason} (uses {match.group(0).strip()!r})"
                break
    return reasons


# ---------------------------------------------------------------- running


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def read_junit(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(file stem path, test name) -> (outcome, first line of the failure)."""
    out = {}
    if not path.exists():
        return out
    for case in ET.parse(path).getroot().iter("testcase"):
        classname = case.get("classname", "")
        name = case.get("name", "")
        base = name.split("[")[0]
        outcome, line = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                line = _first_line(el.get("message")) or _first_line(el.text)
                if line == "collection failure":  # the exception is the last "E" line of the report
                    raised = [x[1:].strip() for x in (el.text or "").splitlines() if x.startswith("E ")]
                    line = raised[-1][:200] if raised else line
                break
        key = (classname, base)
        # a parametrized test passes only when every case passes
        if key in out and out[key][0] != "passed":
            continue
        out[key] = (outcome, line)
    return out


def run_side(side: str, python: str, scratch: Path, extra: list[str], timeout: int, src: Path = REPO / "src") -> Path:
    xml = scratch / f"junit-{side}.xml"
    env = dict(os.environ)
    env["ZENML_YARDSTICK_SIDE"] = side
    env["ZENML_YARDSTICK_SHIM"] = str(REPO / "tests" / "zenml_compat" / "zenml_shim.py")
    env["ZENML_ANALYTICS_OPT_IN"] = "false"
    env["AUTO_OPEN_DASHBOARD"] = "false"
    env.pop("PYTHONPATH", None)
    if side == "here":
        env["PYTHONPATH"] = str(src)
    cmd = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--continue-on-collection-errors",
           "--rootdir", str(scratch), "-c", str(scratch / "pytest.ini"),
           f"--junitxml={xml}", "-o", "junit_family=xunit1", *extra, str(scratch / "files")]
    print(f"[{side}] {' '.join(cmd)}", file=sys.stderr)
    with open(scratch / f"pytest-{side}.log", "w") as log:
        try:
            subprocess.run(cmd, cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"[{side}] timed out after {timeout}s; results so far are partial", file=sys.stderr)
    return xml


def prepare(src: Path, scratch: Path, only: str | None = None) -> dict[str, tuple[Path, FileResult]]:
    """Copy and rewrite every test file; test name lists and skip reasons."""
    files_dir = scratch / "files"
    files_dir.mkdir(parents=True)
    for support in ("support.py",):
        shutil.copy(HERE / support, scratch / support)
    shutil.copy(HERE / "scratch_conftest.py", scratch / "conftest.py")
    (scratch / "pytest.ini").write_text(
        "[pytest]\naddopts = -ra\nfilterwarnings = ignore\n")
    results: dict[str, tuple[Path, FileResult]] = {}
    skips: dict[str, str] = {}
    for path in sorted(src.rglob("test_*.py")):
        label = str(path.relative_to(src))
        if only and not fnmatch.fnmatch(label, only):
            continue
        source = path.read_text()
        # one flat folder, a unique module name per version (pytest's default
        # import mode puts the folder on sys.path, as ZenML's step sources need)
        version = re.sub(r"[^A-Za-z0-9]", "_", path.relative_to(src).parts[0])
        dest = files_dir / f"{path.stem}__{version}.py"
        if dest.exists():
            raise SystemExit(f"two files would be {dest.name}: give each version its own first sub-folder")
        dest.write_text(rewrite_imports(source))
        result = FileResult(label)
        tree = ast.parse(source)
        result.tests = test_names(tree)
        result.skipped = absent_reasons(source)
        for test, reason in result.skipped.items():
            skips[f"{dest.name}::{test}"] = reason
        results[label] = (dest, result)
    (scratch / "skips.json").write_text(json.dumps(skips, indent=1))
    return results


def classname_of(dest: Path, scratch: Path) -> str:
    # junit's classname: the module name (the files folder is on sys.path)
    return dest.stem


def collect(results, scratch: Path, side: str, xml: Path) -> None:
    junit = read_junit(xml)
    by_class: dict[str, dict[str, tuple[str, str]]] = {}
    for (classname, name), value in junit.items():
        # classname is "files.<module>[.<Class>]" (rootdir-relative)
        parts = classname.split(".")
        if parts[0] == "files":
            parts = parts[1:]
        if not parts:
            continue
        by_class.setdefault(parts[0], {})["::".join([*parts[1:], name])] = value
    for dest, result in results.values():
        cls = classname_of(dest, scratch)
        cases = by_class.get(cls, {})
        # a file that does not import gives one error case named after the file
        file_error = next((v for (c, n), v in junit.items() if not c and n.split(".")[-1] == cls), None)
        for test in result.tests:
            if test in cases:
                getattr(result, side)[test] = cases[test]
            elif file_error is not None:
                getattr(result, side)[test] = ("error", "file does not import: " + file_error[1])
            else:
                getattr(result, side)[test] = ("not run", "")


def report(results) -> dict:
    total = {"tests": 0, "skipped": 0, "kept": 0, "passed": 0}
    data = {}
    for label, (_, r) in results.items():
        kept, passed = r.kept(), r.passed_here()
        print(f"\n{label}")
        print(f"  tests {len(r.tests)}, skipped {len(r.skipped)}, kept {len(kept)} (pass on ZenML 0.98), "
              f"pass here {len(passed)} of {len(kept)}, fail here {len(kept) - len(passed)}")
        for t in r.tests:
            if t in r.skipped:
                continue
            if t not in kept:
                outcome, line = r.zenml.get(t, ("not run", ""))
                print(f"    not kept  {t}: ZenML 0.98 {outcome}: {line}")
        for t in kept:
            if t not in passed:
                outcome, line = r.here.get(t, ("not run", ""))
                print(f"    FAIL here {t}: {outcome}: {line}")
        for t, why in r.skipped.items():
            print(f"    skipped   {t}: {why}")
        total["tests"] += len(r.tests)
        total["skipped"] += len(r.skipped)
        total["kept"] += len(kept)
        total["passed"] += len(passed)
        data[label] = {"tests": r.tests, "skipped": r.skipped, "kept": kept, "passed_here": passed,
                       "zenml": r.zenml, "here": r.here}
    share = f"{100 * total['passed'] / total['kept']:.1f}%" if total["kept"] else "-"
    print(f"\nTOTAL tests {total['tests']}, skipped {total['skipped']}, kept {total['kept']}, "
          f"pass here {total['passed']} of {total['kept']} ({share})")
    data["_total"] = total
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, help="folder of ZenML test files (one sub-folder per version)")
    parser.add_argument("--zenml-python", default="/work/zenml-venv/bin/python",
                        help="python of a venv with zenml[local]==0.98.0 (default: %(default)s)")
    parser.add_argument("--python", default=sys.executable, help="python of artifactfs's test environment")
    parser.add_argument("--scratch", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="leave the scratch folder")
    parser.add_argument("--here-only", action="store_true",
                        help="reuse junit-zenml.xml of --scratch (ZenML's side is slow) and run artifactfs only")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per side")
    parser.add_argument("-k", dest="k", help="pytest -k expression for both sides")
    parser.add_argument("--only", help="only the files whose path under SRC matches this glob")
    parser.add_argument("--artifactfs-src", type=Path, default=REPO / "src",
                        help="artifactfs source tree to measure (default: this checkout's; e.g. another "
                             "worktree's src for a before/after comparison)")
    args = parser.parse_args(argv)

    scratch = (args.scratch or Path(tempfile.mkdtemp(prefix="zenml-yardstick-"))).resolve()
    if scratch == REPO or REPO in scratch.parents:
        parser.error(f"the scratch folder must be outside the repository ({REPO}): ZenML's code stays out of it")
    zenml_xml_saved = None
    if args.here_only:
        zenml_xml_saved = (scratch / "junit-zenml.xml").read_bytes()
    if scratch.exists():
        shutil.rmtree(scratch)
    results = prepare(args.src.resolve(), scratch, args.only)
    extra = ["-k", args.k] if args.k else []
    if zenml_xml_saved is not None:
        (scratch / "junit-zenml.xml").write_bytes(zenml_xml_saved)
        zenml_xml = scratch / "junit-zenml.xml"
    else:
        zenml_xml = run_side("zenml", args.zenml_python, scratch, extra, args.timeout)
    collect(results, scratch, "zenml", zenml_xml)
    collect(results, scratch, "here", run_side("here", args.python, scratch, extra, args.timeout,
                                                args.artifactfs_src.resolve()))
    data = report(results)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1, default=list))
    if args.keep or args.scratch:
        print(f"\nscratch folder: {scratch}", file=sys.stderr)
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
