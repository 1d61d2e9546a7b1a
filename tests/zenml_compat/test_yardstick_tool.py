"""The ZenML yardstick's own logic (tools/zenml_yardstick/run.py), on small
made-up test files: imports rewritten without moving a line, absent areas
found through the helpers a test uses, results read from pytest's JUnit XML.
The yardstick itself runs outside CI (it needs ZenML's test files and ZenML)."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "tools" / "zenml_yardstick" / "run.py"


@pytest.fixture(scope="module")
def yardstick():
    spec = importlib.util.spec_from_file_location("zenml_yardstick_run", RUN)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


SOURCE = '''"""doc"""
import os
from zenml import (
    pipeline,
    step as zstep,
)
from zenml.client import Client
import zenml.enums


def test_one():
    from tests.integration.functional.utils import sample_name
    assert os.sep
'''


def test_imports_are_rewritten_in_place(yardstick):
    out = yardstick.rewrite_imports(SOURCE)
    assert len(out.splitlines()) == len(SOURCE.splitlines())  # tracebacks keep ZenML's line numbers
    lines = out.splitlines()
    assert lines[0].startswith('"""doc"""; from support import resolve as _zy')
    assert lines[2] == "pipeline = _zy('zenml', 'pipeline'); zstep = _zy('zenml', 'step')"
    assert lines[6] == "Client = _zy('zenml.client', 'Client')"
    assert lines[7] == "zenml = _zy_module('zenml')"
    assert lines[11] == "    sample_name = _zy('tests.integration.functional.utils', 'sample_name')"
    assert "import os" in out
    ast.parse(out)


def test_absent_areas_are_found_through_helpers_and_fixtures(yardstick):
    source = '''
import pytest

def _make_model(client):
    return client.create_model(name="m")

@pytest.fixture
def with_stack(clean_client):
    clean_client.activate_stack("s")

def test_uses_helper(clean_client):
    _make_model(clean_client)

def test_uses_fixture(with_stack):
    pass

def test_plain(clean_client):
    clean_client.list_pipeline_runs()

class TestGroup:
    def test_in_class(self, clean_client):
        clean_client.zen_store.list_users()
'''
    reasons = yardstick.absent_reasons(source)
    assert set(reasons) == {"test_uses_helper", "test_uses_fixture", "TestGroup::test_in_class"}
    assert "Model Control Plane" in reasons["test_uses_helper"]
    assert "stacks" in reasons["test_uses_fixture"]
    assert "server" in reasons["TestGroup::test_in_class"]
    assert yardstick.test_names(ast.parse(source)) == [
        "test_uses_helper", "test_uses_fixture", "test_plain", "TestGroup::test_in_class"]


def test_junit_results_and_files_that_do_not_import(yardstick, tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text('''<?xml version="1.0"?><testsuites><testsuite>
<testcase classname="files.test_a__v1" name="test_ok" />
<testcase classname="files.test_a__v1" name="test_param[1]" />
<testcase classname="files.test_a__v1" name="test_param[2]"><failure message="AssertionError: no">x</failure></testcase>
<testcase classname="files.test_a__v1.TestGroup" name="test_m"><skipped message="needs a stack" /></testcase>
<testcase classname="" name="files.test_b__v1"><error message="collection failure">trace
E   ImportError: no zenml.thing</error></testcase>
</testsuite></testsuites>''')
    results = {
        "a": (tmp_path / "test_a__v1.py", yardstick.FileResult("a", tests=["test_ok", "test_param", "TestGroup::test_m"])),
        "b": (tmp_path / "test_b__v1.py", yardstick.FileResult("b", tests=["test_x"])),
    }
    yardstick.collect(results, tmp_path, "here", xml)
    a, b = results["a"][1], results["b"][1]
    assert a.here["test_ok"] == ("passed", "")
    assert a.here["test_param"] == ("failed", "AssertionError: no")  # one failed case fails the test
    assert a.here["TestGroup::test_m"][0] == "skipped"
    assert b.here["test_x"] == ("error", "file does not import: ImportError: no zenml.thing")


def test_the_scratch_folder_must_be_outside_the_repository(yardstick, tmp_path):
    with pytest.raises(SystemExit):
        yardstick.main([str(tmp_path), "--scratch", str(RUN.parent / "scratch")])


def test_a_test_that_patches_zenml_internals_is_skipped(yardstick):
    source = '''
from unittest.mock import patch

def _in_worker(client):
    with patch("zenml.artifacts.utils.Client", return_value=client):
        return 1

def test_parallel(clean_client):
    assert _in_worker(clean_client) == 1

def test_patches_our_own(monkeypatch):
    with patch("os.getcwd"):
        pass
'''
    reasons = yardstick.absent_reasons(source)
    assert set(reasons) == {"test_parallel"}
    assert "patches ZenML's internal modules" in reasons["test_parallel"]


def test_a_brought_helper_file_of_the_same_version_is_used(tmp_path, monkeypatch):
    """``from tests.unit.test_general import _test_materializer`` in a brought
    file resolves to the rewritten copy of that version's test_general.py."""
    files = tmp_path / "files"
    files.mkdir()
    (files / "test_general__v7.py").write_text("def _helper():\n    return 'v7 helper'\n")
    (files / "test_general__v8.py").write_text("def _helper():\n    return 'v8 helper'\n")
    (files / "test_user__v7.py").write_text(
        "from support import resolve as _zy\n"
        "_helper = _zy('tests.unit.test_general', '_helper')\n"
        "_missing = _zy('tests.unit.test_general', '_not_there')\n"
    )
    monkeypatch.setenv("ZENML_YARDSTICK_SHIM", str(Path(__file__).with_name("zenml_shim.py")))
    monkeypatch.delitem(sys.modules, "zenml_shim", raising=False)
    spec = importlib.util.spec_from_file_location("support", RUN.parent / "support.py")
    support = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "support", support)
    spec.loader.exec_module(support)
    monkeypatch.syspath_prepend(str(files))
    user = importlib.import_module("test_user__v7")
    try:
        assert user._helper() == "v7 helper"
        assert isinstance(user._missing, support.Missing)
    finally:
        for name in ("test_user__v7", "test_general__v7"):
            sys.modules.pop(name, None)
