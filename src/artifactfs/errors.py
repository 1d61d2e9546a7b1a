"""The exceptions artifactfs raises: each names the problem and the fix.

Every layer raises these (or subclasses) so that the CLI can print one
readable line and callers can catch one family.
"""

from __future__ import annotations


class ArtifactfsError(Exception):
    """Base class: a message that says what went wrong, and a hint how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class ConfigError(ArtifactfsError):
    """Settings or the credentials file are wrong or unsafe."""


class StoreError(ArtifactfsError):
    """A store cannot be created or used."""


class PathEscapeError(StoreError, ValueError):
    """A path would lead outside its store's root."""


class UnknownFlavorError(StoreError, KeyError):
    """No flavor with that name is built in or registered as a plugin."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class MissingExtraError(StoreError, ImportError):
    """The library a flavor needs is not installed."""


class StoreUnavailableError(StoreError, OSError):
    """The store could not be reached or refused the credentials."""


class NotFoundError(ArtifactfsError, LookupError):
    """A named thing (store, artifact, version, run) does not exist."""


class AlreadyExistsError(ArtifactfsError, FileExistsError):
    """A named thing already exists and will not be overwritten."""
