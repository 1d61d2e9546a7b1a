"""Many versions at once, for tests and benchmarks only (kept out of the
package: nothing in the product may insert rows this way): live version rows and their
manifests inserted straight into the index, as saves would leave them
(artifact, version and manifest rows, sizes, hashes), in large batches,
without writing payloads. Listing, stat and the index's own queries never touch a store,
so their speed at 100k versions can be measured in seconds of filling.

Nothing in the product calls this: a real save goes through the write
protocol (``api.writing`` and ``index.artifacts.insert_version``).
"""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select

from artifactfs.index.db import Index
from artifactfs.index.generation import bump_generation
from artifactfs.index.models import Artifact, VersionRow, Store, VersionFile, utcnow


BATCH = 5000  # versions per transaction


def insert_live_versions(index: Index, artifacts: int, versions: int, files: tuple[str, ...],
                         store_name: str = "default", file_size: int = 1000, root_uri: str | None = None,
                         prefix: str = "a") -> int:
    """Insert ``artifacts`` new artifacts named ``<prefix><id:05d>`` with
    ``versions`` live versions each, every version with the manifest
    ``files``, about :data:`BATCH` versions per transaction. Returns how many versions."""
    now = utcnow()
    with index.write() as session:
        store = session.scalar(select(Store).where(Store.name == store_name))
        root = (root_uri or store.root_uri).rstrip("/")
        first = (session.scalar(select(Artifact.id).order_by(Artifact.id.desc()).limit(1)) or 0) + 1
        session.execute(insert(Artifact), [{"name": f"{prefix}{first + i:05d}", "created_at": now}
                                           for i in range(artifacts)])
        artifact_ids = list(session.scalars(select(Artifact.id).where(Artifact.id >= first).order_by(Artifact.id)))
        bump_generation(session)
    per_batch = max(1, BATCH // max(versions, 1))
    for start in range(0, len(artifact_ids), per_batch):
        batch = artifact_ids[start:start + per_batch]
        rows = [_version_row(artifact_id, number, store.id, root, prefix, file_size * len(files), len(files), now)
                for artifact_id in batch for number in range(1, versions + 1)]
        with index.write() as session:
            session.execute(insert(VersionRow), rows)
            if files:
                ids = dict(session.execute(select(VersionRow.uuid, VersionRow.id)
                                           .where(VersionRow.artifact_id.in_(batch))).all())
                session.execute(insert(VersionFile), [
                    {"version_id": ids[r["uuid"]], "path": path, "size": file_size, "mode": 0o644, "digest": None}
                    for r in rows for path in files])
            bump_generation(session)
    return artifacts * versions


def _version_row(artifact_id: int, number: int, store_id: int, root: str, prefix: str, size: int, count: int,
                 now) -> dict:
    uid = str(uuid.uuid4())
    return {"uuid": uid, "artifact_id": artifact_id, "version": str(number), "version_number": number,
            "store_id": store_id, "uri": f"{root}/{prefix}{artifact_id:05d}/{uid}", "payload_kind": "folder",
            "materializer": None, "data_type": None, "content_hash": uid.replace("-", ""), "size": size,
            "file_count": count, "state": "live", "save_type": "manual", "visualizations": [], "created_at": now}
