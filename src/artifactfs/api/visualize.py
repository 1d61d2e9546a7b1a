"""Show a version's stored visualizations: rendered in a notebook, listed elsewhere."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

from artifactfs.enums import VisualizationType
from artifactfs.errors import NotFoundError

if TYPE_CHECKING:
    from artifactfs.api.artifacts import ArtifactVersion


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def show(version: ArtifactVersion) -> None:
    """Display the version's stored visualizations in a notebook, or print where they are."""
    if not version.visualizations:
        print(f"{version} has no visualizations")
        return
    store = version.open_store()
    if not _in_notebook():
        for item in version.visualizations:
            print(f"{item['kind']}: {item['uri']}")
        return
    from IPython.display import HTML, Image, Markdown, display

    for item in version.visualizations:
        data = store.read_bytes(item["uri"])
        kind = item["kind"]
        if kind == "image":
            display(Image(data=data))
        elif kind == "markdown":
            display(Markdown(data.decode()))
        elif kind == "html":
            display(HTML(data.decode()))
        else:  # csv, json: show as preformatted text
            display(HTML(f"<pre>{html.escape(data.decode(errors='replace')[:20000])}</pre>"))


@dataclass(frozen=True)
class LoadedVisualization:
    """One stored visualization, as ZenML's: its ``type`` and ``value``
    (text, or the image's bytes; base64 text with ``encode_image=True``)."""

    type: VisualizationType
    value: str | bytes


def load_artifact_visualization(artifact: ArtifactVersion, index: int = 0, zen_store: object = None,
                                encode_image: bool = False) -> LoadedVisualization:
    """The ``index``-th visualization of a version, read from its store
    (ZenML's ``load_artifact_visualization``; ``zen_store`` is ignored).

    Raises:
        NotFoundError: the version has no visualization at ``index`` (also a KeyError).
    """
    found = artifact.visualizations
    if not 0 <= index < len(found):
        raise NotFoundError(f"{artifact} has {len(found)} visualization(s), none at index {index}",
                            "list them with version.visualizations")
    kind = VisualizationType(found[index]["kind"])
    data = artifact.open_store().read_bytes(found[index]["uri"])
    if kind is VisualizationType.IMAGE:
        return LoadedVisualization(kind, base64.b64encode(data).decode() if encode_image else data)
    return LoadedVisualization(kind, data.decode(errors="replace"))
