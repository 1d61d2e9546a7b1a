"""Content hashes of payload files: the algorithms a version may record and a
hasher for each.

New versions use BLAKE3 (multithreaded, several GB/s, so hashing keeps up
with the disk); versions saved before it record sha256 and keep verifying
with it. The algorithm is stored per version (``hash_algorithm``) and
covers its content hash and every manifest digest.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import blake3

DEFAULT_ALGORITHM = "blake3"
ALGORITHMS = ("blake3", "sha256")


class Hasher(Protocol):
    def update(self, data: bytes, /) -> object: ...

    def hexdigest(self) -> str: ...


def new_hasher(algorithm: str = DEFAULT_ALGORITHM, spread: bool = True) -> Hasher:
    """A fresh hasher; BLAKE3 spreads large updates over every core, unless
    ``spread=False`` (hashing beside a write: the write needs a core too)."""
    if algorithm == "blake3":
        return blake3.blake3(max_threads=blake3.blake3.AUTO if spread else 1)
    if algorithm == "sha256":
        return hashlib.sha256()
    raise ValueError(f"unknown hash algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})")
