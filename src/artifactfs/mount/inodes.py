"""Inode numbers of the mount: derived from integer ids of the index, so they
are the same after a restart and never name another object.

An inode is ``kind << 56 | payload`` (below 2**63, so signed 64-bit readers
are safe too). Integer primary keys of the index come from AUTOINCREMENT
sequences and are never reused, hence neither are inodes.

====================  ======  ===========================================
kind                  number  payload
====================  ======  ===========================================
SPECIAL               0       1 root, 2 ``/pipelines``, 3 ``/artifacts``
PIPELINE              1       pipeline.id
RUN                   2       pipeline_run.id
STEP                  3       step_run.id
OUTPUT                4       step_io.id: an output's version folder
OUTPUT_DOC            5       step_io.id: ``<output>.json`` beside it
ARTIFACT              6       artifact.id
VERSION               7       artifact_version.id: ``/artifacts/<n>/<v>/``
VERSION_DOC           8       artifact_version.id: ``<v>.json``
LATEST                9       artifact.id: the ``latest`` symlink
FILE                  10      version_file.id: a payload file (the same
                              inode under ``/artifacts`` and every
                              ``/pipelines`` output of that version: hard
                              links, so the page cache is shared)
VERSION_DIR           11      version id << 20 | folder number
OUTPUT_DIR            12      step_io id << 20 | folder number
====================  ======  ===========================================

Sub-folders of a version come from its manifest paths ("optim/state.bin"),
which never change: a version's folders, sorted by path, are numbered from 1
(0 is the version folder itself). Directories cannot be hard links in Linux,
so the same folder is a different inode under ``/artifacts`` and under each
``/pipelines`` output. Limits: 2**56 rows per table, and for sub-folders
2**36 versions or outputs and 2**20 - 1 folders per version.
"""

from __future__ import annotations

import enum

KIND_SHIFT = 56
PAYLOAD_MASK = (1 << KIND_SHIFT) - 1
FOLDER_BITS = 20
FOLDER_MASK = (1 << FOLDER_BITS) - 1
MAX_FOLDERS = FOLDER_MASK
MAX_FOLDER_OWNER = (1 << (KIND_SHIFT - FOLDER_BITS)) - 1

ROOT = 1
PIPELINES = 2
ARTIFACTS = 3


class Kind(enum.IntEnum):
    SPECIAL = 0
    PIPELINE = 1
    RUN = 2
    STEP = 3
    OUTPUT = 4
    OUTPUT_DOC = 5
    ARTIFACT = 6
    VERSION = 7
    VERSION_DOC = 8
    LATEST = 9
    FILE = 10
    VERSION_DIR = 11
    OUTPUT_DIR = 12


class InodeOverflow(ValueError):
    """An id too large for the inode scheme."""


def make(kind: Kind, payload: int) -> int:
    """The inode of kind ``kind`` for index id ``payload`` (``InodeOverflow`` when it does not fit)."""
    if not 0 < payload <= PAYLOAD_MASK:
        raise InodeOverflow(f"id {payload} does not fit an inode of kind {kind.name}")
    return (int(kind) << KIND_SHIFT) | payload


def split(inode: int) -> tuple[Kind, int]:
    """``(kind, payload)``; raises ``ValueError`` for a number no inode has."""
    return Kind(inode >> KIND_SHIFT), inode & PAYLOAD_MASK


def folder(kind: Kind, owner: int, number: int) -> int:
    """A sub-folder of a version (``VERSION_DIR``, owner = version id) or of
    an output (``OUTPUT_DIR``, owner = step_io id); number 0 is the top."""
    if number == 0:
        return make(Kind.VERSION if kind == Kind.VERSION_DIR else Kind.OUTPUT, owner)
    if not 0 < owner <= MAX_FOLDER_OWNER or not 0 < number <= MAX_FOLDERS:
        raise InodeOverflow(f"folder {number} of {owner} does not fit an inode")
    return make(kind, owner << FOLDER_BITS | number)


def split_folder(payload: int) -> tuple[int, int]:
    """``(owner id, folder number)`` of a ``VERSION_DIR``/``OUTPUT_DIR`` payload."""
    return payload >> FOLDER_BITS, payload & FOLDER_MASK
