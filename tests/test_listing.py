"""`artifactfs artifact list` a page at a time: what a big index costs is
one page, and the listing says how many more there are."""

from __future__ import annotations

import re

from click.testing import CliRunner

from artifactfs.cli.main import cli

pytest_plugins = ["index_fixtures"]


def _names(output: str) -> list[str]:
    return re.findall(r"│ (p\d{5}) ", output)


def test_artifact_list_pages(afs_home):
    from artifactfs import init, save_artifact
    from artifactfs.index import get_index
    from bulk_rows import insert_live_versions

    init()
    insert_live_versions(get_index(), 120, 3, ("model.bin",), prefix="p")
    save_artifact([1], "zz-real")  # a real save among bulk rows
    runner = CliRunner()
    first = runner.invoke(cli, ["artifact", "list"], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    shown = _names(first.output)
    assert len(shown) == 50 and shown == sorted(shown)
    assert f"71 more artifact(s): `artifactfs artifact list --after {shown[-1]}`" in first.output
    assert "│ 3 " in first.output  # versions per artifact are counted
    second = runner.invoke(cli, ["artifact", "list", "--after", shown[-1], "-n", "100"], env={"COLUMNS": "200"})
    assert _names(second.output) == sorted(set(_names(second.output))) and len(_names(second.output)) == 70
    assert "zz-real" in second.output and "more artifact" not in second.output
    everything = runner.invoke(cli, ["artifact", "list", "--limit", "0"], env={"COLUMNS": "200"})
    assert len(_names(everything.output)) == 120 and "zz-real" in everything.output
