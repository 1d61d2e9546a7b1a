"""Fault points are named once (``artifactfs.faults.Fault``): every point the
code passes is a member, every member is a point the code passes, and a
test naming a point that does not exist fails instead of never firing."""

import re
from pathlib import Path

import pytest

from artifactfs.faults import Fault, fault_action, fault_point
from artifactfs.gc.execute import PHASES

SRC = Path(__file__).resolve().parents[1] / "src" / "artifactfs"
CALL = re.compile(r"fault_point\(\s*(f?)[\"']([^\"']+)[\"']|fault_point\(\s*Fault\.(\w+)")
# A point handed on by name (``WriteBatch(store, fault="migrate_before_repoint")``, its default).
HANDED = re.compile(r"\bfault(?::\s*str)?\s*=\s*[\"']([a-z_]+)[\"']")


def points_in_the_code() -> set[str]:
    found = set()
    for path in SRC.rglob("*.py"):
        if path.name == "faults.py":
            continue
        for is_f, literal, member in CALL.findall(path.read_text()):
            if member:
                found.add(Fault[member].value)
            elif is_f:
                assert literal == "gc_after_{name}", f"{path}: an f-string fault point this test cannot expand"
                found |= {f"gc_after_{name}" for name, _ in PHASES}
            else:
                found.add(literal)
        found |= set(HANDED.findall(path.read_text()))
    return found


def test_every_point_in_the_code_is_named_once_in_the_enum():
    names = {f.value for f in Fault}
    used = points_in_the_code()
    assert used - names == set(), "fault points missing from artifactfs.faults.Fault"
    assert names - used == set(), "members of Fault that no code passes (remove them)"


def test_a_point_that_does_not_exist_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="no fault point 'before_comit'"):
        with fault_action("before_comit", lambda: None):
            pass
    monkeypatch.setenv("ARTIFACTFS_FAULT", "before_comit")
    with pytest.raises(ValueError, match="no fault point"):
        fault_point("before_commit")


def test_a_member_and_its_name_are_one_point():
    hits = []
    with fault_action(Fault.BEFORE_COMMIT, lambda: hits.append(1)):
        fault_point("before_commit")
        fault_point(Fault.BEFORE_COMMIT)
    assert hits == [1, 1]
