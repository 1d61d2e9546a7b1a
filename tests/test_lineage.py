"""Lineage pictures: the graph of the example training pipeline as JSON (its
nodes and edges), dot, SVG and PNG through Graphviz, and the CLI."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest_plugins = ["index_fixtures"]

from artifactfs import get_artifact_version  # noqa: E402
from artifactfs.api.lineage import lineage_graph, render  # noqa: E402
from artifactfs.cli.main import cli  # noqa: E402

EXAMPLE = Path(__file__).parents[1] / "examples" / "training_pipeline.py"

# (source, target, kind, name) with artifacts as NAME and step runs as step names.
PIPELINE_EDGES = {
    ("load_data", "raw_data", "output", "raw_data"),
    ("raw_data", "split", "input", "data"),
    ("split", "train_data", "output", "train_data"),
    ("split", "test_data", "output", "test_data"),
    ("train_data", "train", "input", "train_data"),
    ("train", "model_weights", "output", "model_weights"),
    ("model_weights", "evaluate", "input", "weights"),
    ("test_data", "evaluate", "input", "test_data"),
    ("evaluate", "metrics", "output", "metrics"),
}


@pytest.fixture
def example_run(sqlite_home):
    return load_example().training_pipeline()


def named(document: dict) -> tuple[set, set]:
    """Nodes and edges of a JSON graph with ids replaced by readable names."""
    names = {n["id"]: n["name"] if n["kind"] == "artifact" else n["step"] for n in document["nodes"]}
    nodes = {(n["kind"], names[n["id"]]) for n in document["nodes"]}
    edges = {(names[e["source"]], names[e["target"]], e["kind"], e["name"]) for e in document["edges"]}
    return nodes, edges


def test_json_of_the_example_pipeline(example_run):
    out = CliRunner().invoke(cli, ["lineage", "metrics", "--format", "json"])
    assert out.exit_code == 0, out.output
    document = json.loads(out.output)
    nodes, edges = named(document)
    assert nodes == {("artifact", a) for a in ("raw_data", "train_data", "test_data", "model_weights", "metrics")} | {
        ("step", s) for s in ("load_data", "split", "train", "evaluate")}
    assert edges == PIPELINE_EDGES
    root = next(n for n in document["nodes"] if n["id"] == document["root"])
    assert (root["name"], root["version"], root["data_type"]) == ("metrics", "1", "builtins.dict")
    step = next(n for n in document["nodes"] if n["kind"] == "step")
    assert step["pipeline"] == "training_pipeline" and step["run"] == example_run.name

    upstream = lineage_graph(get_artifact_version("model_weights"), downstream=False, depth=1).to_json()
    assert named(upstream)[1] == {("train_data", "train", "input", "train_data"),
                                  ("train", "model_weights", "output", "model_weights")}
    downstream = lineage_graph(get_artifact_version("train_data"), upstream=False).to_json()
    assert named(downstream)[1] == {e for e in PIPELINE_EDGES if e[1] in ("train", "model_weights", "evaluate", "metrics")
                                    or e[0] in ("train", "evaluate")}
    alone = lineage_graph(get_artifact_version("raw_data"), depth=0).to_json()
    assert len(alone["nodes"]) == 1 and alone["edges"] == []


def test_dot_and_pictures(example_run, tmp_path, monkeypatch):
    graph = lineage_graph(get_artifact_version("metrics"))
    dot = graph.to_dot()
    assert dot.startswith("digraph lineage {") and dot.count(" -> ") == len(PIPELINE_EDGES)
    assert f'label="pipeline run {example_run.name}"' in dot and "penwidth=2.5" in dot
    runner = CliRunner()
    out = runner.invoke(cli, ["lineage", "metrics", "--format", "svg"])
    assert out.exit_code == 2 and "pass -o FILE" in out.output
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    svg, png = tmp_path / "lineage.svg", tmp_path / "lineage.png"
    out = runner.invoke(cli, ["lineage", "metrics", "-o", str(svg)])  # format from the suffix
    assert out.exit_code == 0, out.output
    text = svg.read_text()
    assert "<svg" in text and "model_weights:1" in text and "evaluate" in text
    out = runner.invoke(cli, ["lineage", "model_weights:1", "--upstream", "--format", "png", "-o", str(png)])
    assert out.exit_code == 0 and png.read_bytes().startswith(b"\x89PNG")

    monkeypatch.setattr(shutil, "which", lambda _name: None)
    out = runner.invoke(cli, ["lineage", "metrics", "-o", str(svg)])
    assert out.exit_code == 1 and "needs Graphviz's `dot` program" in out.output


def load_example():
    spec = importlib.util.spec_from_file_location("training_pipeline_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cached_rerun_shows_both_step_runs(example_run):
    rerun = load_example().training_pipeline()
    assert all(s.is_cached for s in rerun.steps.values())
    graph = lineage_graph(get_artifact_version("metrics"))
    statuses = sorted(n.attrs["status"] for n in graph.nodes.values() if n.kind == "step")
    assert statuses == ["cached"] * 4 + ["completed"] * 4
    assert render(graph, "dot").count("dashed") == 4


def test_the_api_the_mount_and_the_web_view_name_one_producer(afs_home):
    """A version linked as the output of two step runs, the later step run
    linking it first: every reader names the step run of its first output
    link (``index.producers``), whatever the order of the step run ids."""
    from artifactfs import save_artifact
    from artifactfs.index import browse, get_index, tree
    from artifactfs.index.pipelines import create_run, create_step_run, link
    from artifactfs.mount.documents import render

    version = save_artifact({"x": 1}, "shared")
    index = get_index()
    with index.write() as session:
        run = create_run(session, "twice", "twice-1", {})
        earlier = create_step_run(session, run.id, "earlier", "h", None, {})
        later = create_step_run(session, run.id, "later", "h", None, {})
        assert earlier.id < later.id
        link(session, later.id, version._pk, "output", "out")  # the first link: the producer
        link(session, earlier.id, version._pk, "output", "out")

    assert version.producer.name == "later"  # the API
    with index.read() as session:
        assert tree.producer(session, version._pk).step == "later"  # the mount's xattrs
        extra = tree.documents(session, [version._pk])[version._pk]
        record, _ = tree.get_version_with_files(session, version._pk, 0)
        artifact = browse.artifact_id(session, "shared")
        items = browse.list_versions(session, artifact).items  # the web view
    assert extra["producer"]["step"] == "later" and [o["step"] for o in extra["outputs"]] == ["later", "earlier"]
    assert json.loads(render(record, extra))["producer"]["step"] == "later"  # the mount's <version>.json
    assert [item.producer.name for item in items] == ["later"]
