"""The exceptions artifactfs raises: each names the problem and the fix.

Every layer raises these (or subclasses) so that the CLI can print one
readable line and callers can catch one family.
"""

from __future__ import annotations

from collections.abc import Iterable


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


class NotFoundError(ArtifactfsError, KeyError):
    """A named thing (store, artifact, version, run) does not exist.

    A ``KeyError`` too, as ZenML's ``Client`` getters raise one
    (``except KeyError`` in a ZenML user's code keeps working).

    Given the ``name`` asked for and the names that do exist (``known``), the
    message ends with the closest one ("did you mean 'hyperparameters'?"),
    which is also kept as ``suggestion`` for callers of the API.
    """

    def __init__(self, message: str, hint: str | None = None, *, name: str | None = None,
                 known: Iterable[str] = ()) -> None:
        self.suggestion = closest_name(name, known) if name is not None else None
        if self.suggestion is not None:
            message = f"{message}; did you mean {self.suggestion!r}?"
        super().__init__(message, hint)

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class PathNotFoundError(NotFoundError, FileNotFoundError):
    """A file or folder handed to artifactfs does not exist."""

    def __str__(self) -> str:  # OSError would format its own way
        return Exception.__str__(self)


def closest_name(name: str, known: Iterable[str]) -> str | None:
    """The existing name most like ``name`` (a typo, other case), if any is close."""
    import difflib  # only on the error path

    known = [k for k in known if k != name]
    by_case = {k.lower(): k for k in known}
    if name.lower() in by_case:
        return by_case[name.lower()]
    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return matches[0] if matches else None


class AlreadyExistsError(ArtifactfsError, FileExistsError):
    """A named thing already exists and will not be overwritten."""
