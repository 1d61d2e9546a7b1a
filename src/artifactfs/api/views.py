"""What loading a file or folder artifact hands out: never a way to change
what is stored.

By default (``load_artifact(name)``) a private copy in a fresh temporary
folder only its owner can enter, removed when the step that loaded it ends
or else when the process exits (``materializers.path.private_folder``). For checkpoints too large to copy,
``load_artifact(name, zero_copy=True)`` returns a :class:`PayloadView`: the
stored files themselves, opened read-only (``O_RDONLY`` on a local store,
so a write raises and an ``mmap`` is read-only or copy-on-write; the store's
reader on an object store). It hands out no path into the store, because a
path invites ``path.write_text(...)``, and a hard-link farm would share the
stored inodes (a write through a link is a write to the artifact). A
library that needs a path reads the FUSE mount instead
(``artifactfs mount``: ``<mountpoint>/artifacts/<name>/<version>/``), which
refuses every write with EROFS.
"""

from __future__ import annotations

import io
import posixpath
from typing import IO, TYPE_CHECKING

from artifactfs.errors import ArtifactfsError
from artifactfs.stores.base import ArtifactStore

if TYPE_CHECKING:
    from artifactfs.api.artifacts import ArtifactVersion


class PayloadView:
    """The payload files of one version, readable and never writable.

    ``files`` lists them (paths relative to the version, as in its
    manifest); ``open(path)`` opens one for reading (``path`` may be left
    out when there is a single file), e.g. ``torch.load(view.open(), weights_only=True)`` or
    ``safetensors.torch.load(view.read_bytes("model.safetensors"))``.
    """

    def __init__(self, version: ArtifactVersion, store: ArtifactStore) -> None:
        self.version = version
        self._store = store
        self._files = {f.path: f for f in version.files}

    def __repr__(self) -> str:
        return f"PayloadView({self.version}, {len(self._files)} files, read-only)"

    @property
    def files(self) -> list[str]:
        """The payload's files, relative to the version folder, sorted."""
        return sorted(self._files)

    def size(self, path: str | None = None) -> int:
        """The size of one file (``path`` may be left out when the payload is one file)."""
        return self._files[self._name(path)].size

    def open(self, path: str | None = None, mode: str = "rb", encoding: str | None = None) -> IO:
        """One payload file for reading ('rb', or 'r' with ``encoding``); any other mode is refused."""
        if mode not in ("r", "rb", "rt"):
            raise ArtifactfsError(
                f"{self.version} is a read-only view: mode {mode!r} is refused",
                "open with 'rb' or 'r'; load without zero_copy=True for a private copy you may change",
            )
        name = self._name(path)
        uri = self.version.file_uri(name)
        raw: IO[bytes] = self._store.open(uri, "rb")  # local: beneath the root's descriptor, no link followed
        return raw if "b" in mode else io.TextIOWrapper(raw, encoding=encoding or "utf-8")

    def read_bytes(self, path: str | None = None) -> bytes:
        """The bytes of one payload file."""
        with self.open(path, "rb") as f:
            return f.read()

    def read_text(self, path: str | None = None, encoding: str = "utf-8") -> str:
        """The text of one payload file."""
        with self.open(path, "r", encoding=encoding) as f:
            return f.read()

    def _name(self, path: str | None) -> str:
        if path is None:
            if len(self._files) != 1:
                raise ArtifactfsError(f"{self.version} holds {len(self._files)} files: name one",
                                      f"e.g. view.open({self.files[0]!r})" if self._files else None)
            return next(iter(self._files))
        name = posixpath.normpath(str(path)).lstrip("/")
        if name not in self._files:
            raise FileNotFoundError(f"{self.version} has no file {path!r} (files: {', '.join(self.files[:10])})")
        return name


__all__ = ["PayloadView"]
