"""A simulated trainer, run as its own process by tests/test_watch.py: it
writes checkpoints in pieces with pauses (longer than the watcher's settle
time), the way a slow `torch.save` to a network disk looks from outside, and
logs each finished content as one JSON line {"path", "digest"} (BLAKE3 per
file, as manifests record it).

    python checkpoint_trainer.py MODE FOLDER LOG PAUSE COUNT

MODE:
  raw      COUNT raw-format files step=N.bin (no format can tell their end)
  folder   COUNT folders checkpoint-N/ of 5 files, then a COMPLETE marker
  rewrite  last.bin rewritten in place COUNT times; best.bin reused (replaced
           by rename) every third time
"""

import json
import os
import sys
import time

import blake3


def write_in_pieces(path: str, data: bytes, pieces: int, pause: float) -> None:
    """One open, ``pieces`` writes, a pause after each but the last, one close."""
    step = -(-len(data) // pieces)
    with open(path, "wb") as f:
        for i in range(pieces):
            f.write(data[i * step:(i + 1) * step])
            f.flush()
            if i < pieces - 1:
                time.sleep(pause)


def log(out, path: str, data: bytes) -> None:
    out.write(json.dumps({"path": path, "digest": blake3.blake3(data).hexdigest()}) + "\n")
    out.flush()


def main(mode: str, folder: str, log_path: str, pause: float, count: int) -> None:
    with open(log_path, "a") as out:
        for n in range(count):
            if mode == "raw":
                data = os.urandom(200_000)
                path = os.path.join(folder, f"step={n}.bin")
                write_in_pieces(path, data, 3, pause)
                log(out, path, data)
            elif mode == "folder":
                checkpoint = os.path.join(folder, f"checkpoint-{n}")
                os.mkdir(checkpoint)
                gap = float(os.environ.get("TRAINER_FILE_GAP", "0"))
                for i in range(5):
                    data = os.urandom(50_000)
                    write_in_pieces(os.path.join(checkpoint, f"part-{i}.bin"), data, 2, pause)
                    time.sleep(gap)
                with open(os.path.join(checkpoint, "COMPLETE"), "w"):
                    pass
                log(out, checkpoint, b"")
            elif mode == "rewrite":
                data = os.urandom(100_000)
                path = os.path.join(folder, "last.bin")
                write_in_pieces(path, data, 2, pause)  # in place: the same inode, truncated and rewritten
                log(out, path, data)
                if n % 3 == 0:
                    best = os.urandom(80_000)
                    write_in_pieces(os.path.join(folder, ".best.tmp"), best, 2, pause)
                    os.replace(os.path.join(folder, ".best.tmp"), os.path.join(folder, "best.bin"))
                    log(out, os.path.join(folder, "best.bin"), best)
                # The same name's next content comes later, once the watcher could register this one
                # (new names need no gap: the watcher registers them whenever they are complete).
                time.sleep(3 * pause)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
