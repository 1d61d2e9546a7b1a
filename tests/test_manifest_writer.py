"""The hashing writer under every payload: a small chunk written while a
large one is still being hashed on the helper thread is hashed after it,
never beside it on the writing thread (blake3 1.0 raised "Already
borrowed"; a locking hasher would silently hash out of order)."""

import hashlib
import io
import threading

from artifactfs.stores import manifest


class GatedHasher:
    """sha256 that records the order of updates; a large update waits for the gate."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate, self.inner, self.order = gate, hashlib.sha256(), []

    def update(self, data) -> None:
        if len(data) >= manifest.PARALLEL_HASH_CHUNK:
            assert self.gate.wait(30)
        self.order.append(len(data))
        self.inner.update(data)

    def hexdigest(self) -> str:
        return self.inner.hexdigest()


def test_small_chunk_after_a_large_one_is_hashed_in_order(monkeypatch):
    gate = threading.Event()
    hashers = []
    monkeypatch.setattr(manifest, "new_hasher",
                        lambda algorithm, spread=True: hashers.append(GatedHasher(gate)) or hashers[-1])
    closed = {}
    raw = io.BytesIO()
    writer = manifest._HashingWriter(raw, lambda size, digest: closed.update(size=size, digest=digest),
                                     text=False, encoding="utf-8", algorithm="sha256")
    big, small = b"a" * manifest.PARALLEL_HASH_CHUNK, b"tail"
    writer.write(big)  # hashed on the helper, which waits at the gate
    writer.write(small)  # must queue behind it, not hash now on this thread
    assert hashers[0].order == []
    gate.set()
    writer.close()
    assert hashers[0].order == [len(big), len(small)]
    assert closed == {"size": len(big) + len(small), "digest": hashlib.sha256(big + small).hexdigest()}
