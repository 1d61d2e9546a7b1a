"""Whether a checkpoint on disk is complete: the one owner of that rule, for
the watcher and for :class:`artifactfs.checkpoints.CheckpointRegistrar` alike.

Quiet time is not completeness: a trainer may pause longer than any settle
time in the middle of a file. A checkpoint is complete when

- no process holds any of its files open for writing (read from Linux's
  ``/proc``; the watcher also follows the writer's close, inotify's
  ``IN_CLOSE_WRITE``),
- a folder meets its completion signal (:data:`CLOSED`: every file closed;
  or a marker file the trainer writes last, such as ``COMPLETE`` or the
  framework's own last file), and
- every file whose format says where it ends is whole:

  - zip archives (PyTorch's ``torch.save`` format, ``.ckpt``/``.pt``/``.pth``,
    ``.npz``, and any file starting with a zip header): the end-of-central-
    directory record must be there, ``zipfile`` must read the central
    directory, and every member must lie inside the file;
  - ``.safetensors``: an 8-byte header length, a JSON header, and data whose
    end (the largest ``data_offsets``) is exactly the end of the file;
  - ``.npy``: a header that parses and ``shape * itemsize`` bytes after it.

A file without such a format (raw bytes, a legacy pickled ``torch.save``)
is complete once its writer has closed it. A trainer killed mid-write has its
files closed by the kernel: only a format check can tell such a file is cut
short.

It owns reading files and ``/proc`` only; deciding when to look, reporting
and retrying are the watcher's.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import zipfile

from artifactfs.errors import ArtifactfsError

#: Suffixes that PyTorch and Lightning write as zip archives (or, rarely, as
#: a legacy pickle, which starts with 0x80 and has no check).
ZIP_SUFFIXES = (".ckpt", ".pt", ".pth", ".npz", ".zip")
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_NPY_MAGIC = b"\x93NUMPY"
#: safetensors refuses headers above 100 MB; a larger length is garbage.
_SAFETENSORS_MAX_HEADER = 100_000_000


#: The folder completion signal "every file in it closed by its writer".
CLOSED = "closed"


def folder_marker(signal: str | None) -> str | None:
    """The marker file name a folder checkpoint must hold to be complete, or
    ``None`` for :data:`CLOSED` (every file closed by its writer).

    Raises:
        ArtifactfsError: ``signal`` is neither ``closed`` nor a plain file name.
    """
    if signal is None or signal == CLOSED:
        return None
    if not signal or "/" in signal or "\\" in signal or signal in (".", ".."):
        raise ArtifactfsError(
            f"{signal!r} is not a folder completion signal",
            f"pass {CLOSED!r} (every file closed by its writer) or the name of a file the trainer writes "
            "last into each checkpoint folder, such as COMPLETE",
        )
    return signal


def incomplete_reason(path: str, marker: str | None = None) -> str | None:
    """Why the checkpoint file or folder at ``path`` is not complete yet, or
    ``None`` when it is.

    Args:
        path: a checkpoint file or folder.
        marker: for a folder, the file (directly inside it) whose presence
            says the trainer finished it (:func:`folder_marker`); ``None``:
            every file closed is enough.
    """
    if stat.S_ISDIR(os.lstat(path).st_mode):
        reason = _marker_reason(path, marker) if marker is not None else None
        reason = reason or _folder_reason(path)
    else:
        reason = _file_at(path)
    if reason is not None:
        return reason
    writers = open_for_writing(path)  # last: it lists every process, the checks above read one checkpoint
    if writers:
        file, pid = min(writers.items())
        where = os.path.relpath(file, path) if file != path else "it"
        return f"{where} is still open for writing (process {pid}{_process_name(pid)})"
    return None


def _marker_reason(folder: str, marker: str) -> str | None:
    try:
        if not stat.S_ISREG(os.lstat(os.path.join(folder, marker)).st_mode):
            return f"its completion marker {marker} is not a file"
    except FileNotFoundError:
        return f"no completion marker {marker} in it yet"
    return None


def _file_at(path: str) -> str | None:
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


def open_for_writing(path: str) -> dict[str, int]:
    """Files at or below ``path`` that a process holds open for writing, each
    with one such process id (Linux's ``/proc``; empty elsewhere, and blind
    to processes of other users when not run as root)."""
    prefix = os.path.abspath(path).rstrip("/") + "/"
    exact = prefix[:-1]
    found: dict[str, int] = {}
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return found
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone meanwhile, or another user's process
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target != exact and not target.startswith(prefix):
                continue
            if _writable(pid, fd):
                found.setdefault(target, int(pid))
    return found


def _writable(pid: str, fd: str) -> bool:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as info:
            for line in info:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & os.O_ACCMODE != os.O_RDONLY
    except (OSError, ValueError, IndexError):
        pass
    return False


def _process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return f", {comm.read().strip()}"
    except OSError:
        return ""


def _folder_reason(folder: str) -> str | None:
    for current, dirs, files in os.walk(folder):  # os.walk never follows links into folders
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(current, name)
            try:
                reason = _file_at(path)
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


__all__ = ["CLOSED", "ZIP_SUFFIXES", "folder_marker", "incomplete_reason", "open_for_writing"]
