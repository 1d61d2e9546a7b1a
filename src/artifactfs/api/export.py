"""Copy a version's payload out of its store into a local folder."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

from artifactfs.api.artifacts import ArtifactVersion
from artifactfs.api.writing import check_relative
from artifactfs.errors import AlreadyExistsError
from artifactfs.stores.base import COPY_CHUNK
from artifactfs.stores.localfiles import opener_with_mode


def export_version(version: ArtifactVersion, dest: str | os.PathLike, progress: Callable[[int], None] | None = None) -> list[Path]:
    """Write every manifest file under ``dest`` (created if missing); never
    overwrites an existing file. Returns the written paths."""
    root = Path(dest).absolute()
    files = version.files
    targets = [root / check_relative(f.path, str(version)) for f in files]
    clashes = [str(t) for t in targets if t.exists()]
    if clashes:
        raise AlreadyExistsError(f"{clashes[0]} already exists", "export into an empty or new folder")
    store = version.open_store()
    for entry, target in zip(files, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        # the recorded mode: a 0600 file stays private, a script stays executable
        with store.open(version.file_uri(entry.path), "rb") as fin, \
                open(partial, "wb", opener=opener_with_mode(entry.mode)) as fout:
            while chunk := fin.read(COPY_CHUNK):
                fout.write(chunk)
                if progress:
                    progress(len(chunk))
        os.replace(partial, target)
    return targets


def zip_version(version: ArtifactVersion, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Every manifest file of ``version`` into one zip at ``path`` (ZenML's
    ``download_files``), streamed in chunks; written beside the target and
    renamed into place, so a failed download leaves no half a zip."""
    target = Path(path).absolute()
    if target.exists() and not overwrite:
        raise AlreadyExistsError(f"{target} already exists", "pass overwrite=True to replace it")
    store = version.open_store()
    partial = target.with_name(f".{target.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for entry in version.files:
                with store.open(version.file_uri(entry.path), "rb") as fin, \
                        archive.open(check_relative(entry.path, str(version)), "w", force_zip64=True) as fout:
                    while chunk := fin.read(COPY_CHUNK):
                        fout.write(chunk)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
