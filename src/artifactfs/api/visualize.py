"""Show a version's stored visualizations: rendered in a notebook, listed elsewhere."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

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
