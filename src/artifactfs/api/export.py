"""Copy a version's payload out of its store into a local folder."""

from __future__ import annotations

import contextlib
import os
import secrets
import zipfile
from collections.abc import Callable
from pathlib import Path

from artifactfs.api.artifacts import ArtifactVersion
from artifactfs.api.writing import check_relative
from artifactfs.errors import AlreadyExistsError, PathEscapeError
from artifactfs.stores.base import COPY_CHUNK
from artifactfs.stores.beneath import LinkFound, Root


def export_version(version: ArtifactVersion, dest: str | os.PathLike, progress: Callable[[int], None] | None = None) -> list[Path]:
    """Write every manifest file under ``dest`` (created if missing); never
    overwrites an existing file. Returns the written paths.

    ``dest`` may be a folder others can write (a shared scratch folder): below
    it every file and folder is made beneath its descriptor without following
    a link (``stores.beneath``), each file written under a fresh partial name
    and renamed into place only where nothing exists yet, so no link planted
    there is written through and no file that appeared meanwhile is replaced."""
    root_path = Path(dest).absolute()
    files = version.files
    relatives = [check_relative(f.path, str(version)) for f in files]
    targets = [root_path / relative for relative in relatives]
    clashes = [str(t) for t in targets if os.path.lexists(t)]
    if clashes:
        raise AlreadyExistsError(f"{clashes[0]} already exists", "export into an empty or new folder")
    store = version.open_store()
    root_path.mkdir(parents=True, exist_ok=True)
    root = Root(str(root_path))
    with _in_destination(root):
        for entry, relative in zip(files, relatives):
            folder, _, name = relative.rpartition("/")
            partial = f"{folder}/{_partial_name(name)}" if folder else _partial_name(name)
            # the recorded mode: a 0600 file stays private, a script stays executable
            fd = root.open_write_fd(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, entry.mode)
            try:
                with store.open(version.file_uri(entry.path), "rb") as fin, os.fdopen(fd, "wb") as fout:
                    while chunk := fin.read(COPY_CHUNK):
                        fout.write(chunk)
                        if progress:
                            progress(len(chunk))
                _rename_into_place(root, partial, relative)
            except BaseException:
                _forget(root, partial)
                raise
    return targets


def zip_version(version: ArtifactVersion, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Every manifest file of ``version`` into one zip at ``path`` (ZenML's
    ``download_files``), streamed in chunks; written beside the target and
    renamed into place, so a failed download leaves no half a zip. The
    partial file is made fresh beneath the target's folder (never through a
    link planted there), and without ``overwrite`` the rename replaces nothing."""
    target = Path(path).absolute()
    if os.path.lexists(target) and not overwrite:
        raise AlreadyExistsError(f"{target} already exists", "pass overwrite=True to replace it")
    store = version.open_store()
    root = Root(str(target.parent))
    partial = _partial_name(target.name)
    with _in_destination(root):
        fd = root.open_write_fd(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
                for entry in version.files:
                    with store.open(version.file_uri(entry.path), "rb") as fin, \
                            archive.open(check_relative(entry.path, str(version)), "w", force_zip64=True) as fout:
                        while chunk := fin.read(COPY_CHUNK):
                            fout.write(chunk)
            if overwrite:
                root.rename(partial, target.name)
            else:
                _rename_into_place(root, partial, target.name)
        finally:
            _forget(root, partial)
    return target


def _partial_name(name: str) -> str:
    """A fresh hidden name beside ``name`` (nobody can have planted it in advance)."""
    return f".{name}.{secrets.token_hex(6)}.partial"


def _rename_into_place(root: Root, partial: str, relative: str) -> None:
    try:
        root.rename(partial, relative, replace=False)
    except FileExistsError:
        raise AlreadyExistsError(f"{root.full(relative)} already exists (it appeared during the export)",
                                 "export into an empty or new folder") from None


def _forget(root: Root, partial: str) -> None:
    try:
        root.unlink(partial)
    except OSError:
        pass  # renamed into place already, or never made


@contextlib.contextmanager
def _in_destination(root: Root):
    """A link met beneath the destination, said as the destination's."""
    try:
        yield
    except LinkFound as exc:
        raise PathEscapeError(
            f"{exc.path} is a symbolic link inside the export destination {root.path}: nothing is written "
            "through a link there",
            "remove the link, or export into a new folder that only you can write",
        ) from None
