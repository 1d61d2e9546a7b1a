"""Whether a checkpoint on disk is complete, where its format can tell.

A trainer that dies mid-write leaves a file that stays quiet forever, so
"no writes for the settle time" alone would register it. These formats say
by themselves where they end:

- zip archives (PyTorch's ``torch.save`` format, ``.ckpt``/``.pt``/``.pth``,
  ``.npz``, and any file starting with a zip header): the end-of-central-
  directory record must be there, ``zipfile`` must read the central
  directory, and every member must lie inside the file;
- ``.safetensors``: an 8-byte header length, a JSON header, and data whose
  end (the largest ``data_offsets``) is exactly the end of the file;
- ``.npy``: a header that parses and ``shape * itemsize`` bytes after it.

A folder checkpoint (HF Trainer's ``checkpoint-100/``) is complete when
every file in it that has one of these formats is. Other files, and
formats without a check (a legacy pickled ``torch.save``), are judged by the
settle time alone, by the watcher.

It owns reading formats only; deciding when to look, reporting and
retrying are the watcher's.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import zipfile

#: Suffixes that PyTorch and Lightning write as zip archives (or, rarely, as
#: a legacy pickle, which starts with 0x80 and has no check).
ZIP_SUFFIXES = (".ckpt", ".pt", ".pth", ".npz", ".zip")
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_NPY_MAGIC = b"\x93NUMPY"
#: safetensors refuses headers above 100 MB; a larger length is garbage.
_SAFETENSORS_MAX_HEADER = 100_000_000


def incomplete_reason(path: str) -> str | None:
    """Why the checkpoint file or folder at ``path`` is not complete yet, or
    ``None`` when it is (or when nothing in it has a format that can tell)."""
    if stat.S_ISDIR(os.lstat(path).st_mode):
        return _folder_reason(path)
    try:  # never follow a link, never block on a FIFO swapped in meanwhile
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a symlink; a FIFO or socket
            return None
        raise
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        os.set_blocking(fd, True)
        return _file_reason(f, path, info.st_size)


def _folder_reason(folder: str) -> str | None:
    for current, dirs, files in os.walk(folder):  # os.walk never follows links into folders
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(current, name)
            try:
                reason = incomplete_reason(path)
            except FileNotFoundError:
                continue  # removed meanwhile (a trainer's temporary file)
            if reason is not None:
                return f"{os.path.relpath(path, folder)}: {reason}"
    return None


def _file_reason(f, path: str, size: int) -> str | None:
    name = path.lower()
    head = f.read(8)
    if name.endswith(".safetensors"):
        return _safetensors_reason(f, head, size)
    if name.endswith(".npy") or head.startswith(_NPY_MAGIC):
        return _npy_reason(f, size)
    if head.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
        return _zip_reason(f, size)
    if name.endswith(ZIP_SUFFIXES) and _ZIP_MAGIC.startswith(head):
        return "empty" if not head else "cut short inside the zip header"
    return None


def _zip_reason(f, size: int) -> str | None:
    try:
        with zipfile.ZipFile(f) as archive:
            for member in archive.infolist():
                if member.header_offset + member.compress_size > size:
                    return f"zip member {member.filename!r} runs past the end of the file"
                with archive.open(member):  # reads and checks the member's local header
                    pass
    except (NotImplementedError, RuntimeError):  # an unknown compression, encryption: not ours to judge
        return None
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        return f"not a complete zip archive ({exc}): its central directory is missing or damaged"
    return None


def _safetensors_reason(f, head: bytes, size: int) -> str | None:
    if len(head) < 8:
        return f"{size} bytes, shorter than the 8-byte header length"
    (header_size,) = struct.unpack("<Q", head)
    if header_size > _SAFETENSORS_MAX_HEADER:
        return f"header length {header_size} is not plausible"
    if 8 + header_size > size:
        return f"header of {header_size} bytes is cut short ({size - 8} bytes after the length)"
    try:
        header = json.loads(f.read(header_size))
        ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        return f"header is not valid safetensors JSON ({exc})"
    expected = 8 + header_size + max(ends, default=0)
    if size != expected:
        return f"{size} bytes, but its header says {expected}"
    return None


def _npy_reason(f, size: int) -> str | None:
    from numpy.lib import format as npy  # numpy is a dependency; imported only when a .npy is seen

    f.seek(0)
    try:
        version = npy.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(f)
        else:
            return None  # version 3.0 has no public reader: the settle time decides
    except (ValueError, EOFError, OSError) as exc:
        return f"header is incomplete or damaged ({exc})"
    if dtype.hasobject:
        return None  # pickled objects: their length is not known in advance
    count = 1
    for extent in shape:
        count *= extent
    expected = f.tell() + count * dtype.itemsize
    if size != expected:
        return f"{size} bytes, but its header (shape {tuple(shape)}, {dtype}) says {expected}"
    return None


__all__ = ["ZIP_SUFFIXES", "incomplete_reason"]
