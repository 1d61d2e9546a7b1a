"""``artifactfs ui``: a read-only web view of the index (runs, artifacts,
lineage) with a JSON API, served by uvicorn. Needs the ``web`` extra."""

from artifactfs.web.app import WebConfig, create_app

__all__ = ["WebConfig", "create_app"]
