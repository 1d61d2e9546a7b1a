"""ZenML's structured string types (``zenml.types``): return one from a step
and the string is stored as that kind of file and shown as that kind of
visualization (``materializers.strings``)."""

from __future__ import annotations


class HTMLString(str):
    """A string of HTML."""


class MarkdownString(str):
    """A string of Markdown."""


class CSVString(str):
    """A string of CSV."""


class JSONString(str):
    """A string of JSON."""


__all__ = ["CSVString", "HTMLString", "JSONString", "MarkdownString"]
