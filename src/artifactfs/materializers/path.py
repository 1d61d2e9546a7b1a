"""Local files and folders (``pathlib.Path``) stored as themselves: a file
under its own name, a folder as its own tree, never an archive, so the mount
shows a checkpoint folder exactly as it was.

Layout: a file ``model.pt`` becomes ``<version>/model.pt``; a folder
``ckpt/`` becomes ``<version>/<every file of ckpt, at its relative path>``.
The layout tells which of the two it was: exactly one top-level file loads
as that file, anything else as a folder. Only a folder holding exactly one
file records ``kind: folder`` in its metadata (ZenML records nothing but the
size), which ``load`` reads back.

Before anything is written the whole source is checked: special files
(sockets, FIFOs, devices), broken symlinks and symlinks leading outside the
source folder are refused. Symlinks inside it are stored as the files they
point to; empty folders are not stored (object stores have none). Each file
is then opened without following a link out of the folder (a single file:
out of its own folder), so a link swapped in after the check is refused too,
and stored with its own permission bits (``stores.localfiles``).

Loading never hands out the stored files themselves: a write to what
``load`` returns must not change the artifact. It returns a private copy in
a fresh temporary folder (0700), removed when the step that loaded it ends
(in a step run, as in ZenML) or else when the process exits (copy what you
want to keep); ``artifactfs.load_artifact(..., zero_copy=True)`` gives a
read-only view of a large payload instead.
"""

from __future__ import annotations

import atexit
import os
import pathlib
import posixpath
import shutil
import stat
import tempfile
import threading
from typing import Any

from artifactfs.enums import ArtifactType
from artifactfs.materializers.base import BaseMaterializer, MaterializerError, _hooks
from artifactfs.stores.base import COPY_CHUNK
from artifactfs.stores.beneath import within as _within
from artifactfs.stores.localfiles import open_beneath, resolve_named


def plan_folder(root: str) -> list[tuple[str, str]]:
    """``(relative '/'-separated path, local file to read)`` for every file of
    the folder ``root``, following symlinks that stay inside it."""
    real_root = os.path.realpath(root)
    files: list[tuple[str, str]] = []

    def visit(folder: str, relative: str, active: frozenset[tuple[int, int]]) -> None:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                source = os.path.join(folder, entry.name)
                rel = posixpath.join(relative, entry.name) if relative else entry.name
                info = os.lstat(source)
                if stat.S_ISLNK(info.st_mode):
                    target = os.path.realpath(source)
                    if not _within(target, real_root):
                        raise MaterializerError(
                            f"symlink {source} points outside the folder being saved (to {target})",
                            "copy the target into the folder, or remove the link",
                        )
                    try:
                        info = os.stat(source)
                    except FileNotFoundError:
                        raise MaterializerError(f"symlink {source} points to nothing", "remove the link") from None
                if stat.S_ISDIR(info.st_mode):
                    key = (info.st_dev, info.st_ino)
                    if key in active:
                        raise MaterializerError(f"symlink loop at {source}", "remove the link")
                    visit(source, rel, active | {key})
                elif stat.S_ISREG(info.st_mode):
                    files.append((rel, source))
                else:
                    raise MaterializerError(
                        f"{source} is a special file (socket, FIFO or device) and cannot be stored",
                        "remove it from the folder, or save the folder's regular files only",
                    )

    top = os.stat(root)
    visit(root, "", frozenset({(top.st_dev, top.st_ino)}))
    return files


class PathMaterializer(BaseMaterializer):
    """``pathlib.Path`` of a local file or folder -> that file or tree."""

    ASSOCIATED_TYPES = (pathlib.Path,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    def save(self, data: pathlib.Path) -> None:
        try:
            source = resolve_named(os.fspath(data))
            info = os.stat(source)
        except FileNotFoundError:
            raise MaterializerError(f"cannot save {source}: no such file or folder") from None
        if stat.S_ISREG(info.st_mode):
            self._store_file(os.path.dirname(source), os.path.basename(source), _file_name(data))
        elif stat.S_ISDIR(info.st_mode):
            files = plan_folder(source)  # checks everything before writing anything
            if not files:
                self.artifact_store.makedirs(self.uri)  # an empty local folder stays a folder
            for relative, _ in files:
                self._store_file(source, relative, relative)
        else:
            raise MaterializerError(f"{source} is a special file (socket, FIFO or device) and cannot be stored")

    def _store_file(self, tree: str, relative: str, target: str) -> None:
        """One file, opened inside ``tree`` only, read once, with its mode."""
        with open_beneath(tree, relative) as src:
            mode = stat.S_IMODE(os.fstat(src.fileno()).st_mode)
            with self.artifact_store.open(self.path(target), "wb", file_mode=mode) as dst:
                shutil.copyfileobj(src, dst, COPY_CHUNK)

    def load(self, data_type: type) -> pathlib.Path:
        """A private copy in a fresh temporary folder (see the module's
        docstring for when it is removed)."""
        store = self.artifact_store
        files = store.find(self.uri) if store.isdir(self.uri) else []
        base = private_folder()
        for relative in files:
            target = base.joinpath(*relative.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            store.get(self.path(relative), str(target))
            mode = store.stat(self.path(relative)).get("mode")  # a script stays executable
            if isinstance(mode, int):
                os.chmod(target, stat.S_IMODE(mode) & 0o777)
        kind = self.recorded_metadata.get("kind")
        single_file = len(files) == 1 and "/" not in files[0]
        if kind == "file" or (kind is None and single_file):
            return base / files[0]
        return base

    # ZenML records only the storage size of a path; ``kind`` is recorded only
    # where the layout alone would mislead ``load``: a folder holding one file.
    def extract_metadata(self, data: pathlib.Path) -> dict[str, Any]:
        if os.path.isdir(data):
            files = plan_folder(os.fspath(data))
            if len(files) == 1 and "/" not in files[0][0]:
                return {"kind": "folder"}
        return {}


_copies: list[str] = []
_copies_lock = threading.Lock()


def private_folder() -> pathlib.Path:
    """A fresh temporary folder only its owner can enter, where loaded files
    and folders are copied to: removed when the running step ends (inside a
    step run), at the latest when the process exits."""
    folder = tempfile.mkdtemp(prefix="artifactfs-")  # mkdtemp makes it 0700
    if _hooks["after_step"] is not None:
        _hooks["after_step"](folder)
    with _copies_lock:
        if not _copies:
            atexit.register(_remove_copies)
        _copies.append(folder)
    return pathlib.Path(folder)


def _remove_copies() -> None:
    with _copies_lock:
        folders, _copies[:] = list(_copies), []
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _file_name(path: pathlib.Path) -> str:
    name = pathlib.Path(os.path.realpath(path)).name if not path.name else path.name
    if not name or name in (".", ".."):
        raise MaterializerError(f"cannot tell the file name of {path}")
    return name
