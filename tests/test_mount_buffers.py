"""The mount daemon's GET buffers (mount/remote.py ``keep_piece_buffers``):
the memory of a freed piece is reused by the next one, not mapped afresh
(a page fault and the kernel's zeroing for every byte of every piece)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PIECES = r"""
import resource, sys, threading
from artifactfs.mount.remote import keep_piece_buffers

kept = sys.argv[1] == "kept" and keep_piece_buffers()
chunks = [b"x" * (256 << 10)] * 256  # a 64 MiB piece as an HTTP client receives it

def fetch(faults):
    for n in range(4):  # four pieces, one after the other, like read-ahead GETs
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        piece = b"".join(chunks)
        del piece
        if n:  # the first piece may fault: nothing was freed yet
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

faults = []
worker = threading.Thread(target=fetch, args=(faults,))  # GETs arrive in the fsspec IO thread
worker.start()
worker.join()
print(kept, sum(faults))
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PIECES, mode], capture_output=True, text=True, check=True).stdout
    kept, faults = out.split()
    return kept, int(faults)


def test_freed_piece_buffers_are_reused_without_page_faults():
    """Three 64 MiB pieces after a first: with the default glibc settings
    each is mapped afresh (16,384 page faults apiece); once the daemon's
    settings are in place, their memory is reused."""
    plain_kept, plain = _faults("plain")
    kept, faults = _faults("kept")
    if kept != "True":
        pytest.skip("this C library has no mallopt")
    assert plain_kept == "False" and plain > 3 * 10_000, plain  # the cost this avoids is real here
    assert faults < 3 * 1_000, faults
