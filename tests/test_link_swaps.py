"""Someone who can write a store swaps a payload file or folder for a
symbolic link, once or in a tight loop (``renameat2(RENAME_EXCHANGE)`` in
another process): the pruner never deletes through it, nor outside the
store, and a link never stops its pass; the mount, ``load()`` and the web
view's download route never serve what a link points to (issue 24, items
2 and 8). Every local path operation beneath a store root goes through
``stores.beneath``; these tests attack it from the outside."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

import artifactfs
from artifactfs import load_artifact, register_artifact, save_artifact
from artifactfs.cli.main import cli
from artifactfs.errors import ArtifactfsError
from artifactfs.index.gc import VersionRef
from artifactfs.index.sweep import delete_payload
from gc_helpers import backdate_all, root, states
from link_swaps import as_attacker, flipping, require_root, root_only_secret
from test_mount_helpers import mounted

pytest_plugins = ["index_fixtures"]

TRIES = 30


def gc_now() -> str:
    result = CliRunner().invoke(cli, ["gc", "-y", "--grace", "1h"])
    assert "Traceback" not in result.output, result.output
    return result.output


def reported(output: str, link: Path) -> bool:
    """Whether the pass's output names ``link`` as a link it left alone (lines may wrap)."""
    flat = "".join(output.split())
    return "".join(str(link).split()) in flat and "isasymboliclink" in flat


def json_secret(path: Path, size: int) -> str:
    """A root-only file holding valid JSON of exactly ``size`` bytes (so a
    loader would parse it and a reader checking sizes would take it)."""
    head = '{"secret": "'
    text = head + "S" * (size - len(head) - 2) + '"}'
    root_only_secret(path, size)
    path.write_text(text)
    return text


# -- the pruner -------------------------------------------------------------------------------


def test_pruner_never_deletes_a_kept_version_through_a_folder_swapped_for_a_link(afs_home):
    """(a) A folder registered in place is condemned; before the sweep its
    owner swaps it for a link to the payload folder of a live, keep-tagged
    version holding a file of the same name. Nothing of the kept version
    goes; the link is reported and left; the pass goes on."""
    kept = save_artifact({"precious": True}, "model", tags=["keep"])
    save_artifact({"newer": True}, "model")
    kept_file = Path(kept.uri) / "data.json"
    kept_bytes = kept_file.read_bytes()
    ckpt = root() / "user" / "ckpt"
    ckpt.mkdir(parents=True)
    (ckpt / "data.json").write_text('{"mine": 1}')
    registered = register_artifact(ckpt, "ckpt")
    save_artifact(2, "ckpt")
    backdate_all()
    shutil.rmtree(ckpt)
    ckpt.symlink_to(kept.uri)  # the swap
    output = gc_now()
    assert kept_file.read_bytes() == kept_bytes, output
    assert load_artifact("model", version=kept.version) == {"precious": True}
    assert ckpt.is_symlink() and reported(output, ckpt), output
    assert states()[registered.id] == "condemned"  # not swept: tried again next pass, reported again


def test_a_folder_flipped_to_a_link_during_delete_never_deletes_outside(sqlite_home, tmp_path):
    """(b) While a folder registered in place loses its listed files, it is
    flipped to a link to a folder of root-only files outside the store and
    back, in a tight loop: in ``TRIES`` deletes, not one file outside goes."""
    require_root()
    store = artifactfs.get_store()
    outside = tmp_path / "outside"
    names = [f"f{i:02d}.bin" for i in range(40)]
    for name in names:
        root_only_secret(outside / name, 8)
    lost_outside = 0
    for attempt in range(TRIES):
        folder = root() / "user" / f"ckpt{attempt}"
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_bytes(b"mine")
        ref = VersionRef(attempt + 1, str(uuid.uuid4()), "ckpt", "1", 1, str(folder), "folder", 0, len(names),
                         "registered", "condemned", None, None)
        assert ref.in_place
        with flipping(folder, outside):
            try:
                delete_payload(store, ref, names)
            except (ArtifactfsError, OSError):
                pass  # the flip was met: refused, nothing followed
        lost_outside += sum(not (outside / name).exists() for name in names)
        for name in names:  # put back what went, for the next try
            if not (outside / name).exists():
                root_only_secret(outside / name, 8)
    assert lost_outside == 0, f"{lost_outside} root-only files outside the store were deleted"


def test_a_folder_link_out_of_the_store_does_not_stop_the_sweep(afs_home, tmp_path):
    """(c) A condemned version's payload folder is a link out of the store:
    it is reported and skipped, nothing outside goes, and the rest of the
    pass (other versions, orphans) is swept."""
    outside = tmp_path / "outside"
    root_only_secret(outside / "data.json", 10)
    doomed = [save_artifact({"i": i}, "x") for i in range(6)]
    save_artifact({"i": "last"}, "x")
    orphan = root() / "lost" / "0b6f1a3e-8c1d-4a7e-9f00-123456789abc"
    orphan.mkdir(parents=True)
    (orphan / "data.json").write_text("{}")
    from gc_helpers import backdate_tree

    backdate_tree(orphan)
    backdate_all()
    linked = Path(doomed[0].uri)
    shutil.rmtree(linked)
    linked.symlink_to(outside)
    output = gc_now()
    assert (outside / "data.json").exists()
    assert linked.is_symlink() and reported(output, linked), output
    assert all(not Path(v.uri).exists() for v in doomed[1:]), output
    assert not orphan.exists(), output
    assert states()[doomed[0].id] == "condemned" and all(v.id not in states() for v in doomed[1:])


# -- readers ---------------------------------------------------------------------------------


@pytest.fixture
def public_mount(sqlite_home):
    """A store and a mount (``--allow-other``) at paths every user may reach."""
    require_root()
    from artifactfs.api import register_store, set_active_store

    public = Path(tempfile.mkdtemp(prefix="artifactfs-links-"))
    public.chmod(0o755)
    try:
        (public / "store").mkdir()
        (public / "store").chmod(0o755)
        set_active_store(register_store("public", "local", str(public / "store")).name)
        yield public
    finally:
        shutil.rmtree(public, ignore_errors=True)


def _forget_pages(path: Path) -> None:
    """Drop the mount's page cache of ``path``, so the next read asks the daemon."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_a_link_to_a_root_only_file_is_never_served(public_mount, tmp_path):
    """(d) A payload file replaced by a link to a root-only file (inside the
    store, then outside it in a racing flip): another user reading through
    ``mount --allow-other`` never gets it, nor does ``load()``, nor root
    through the mount; a payload file made root-only in place is not shown
    to another user as the 0644 its manifest says."""
    version = save_artifact({"payload": "p" * 40}, "blob")
    payload = Path(version.uri) / "data.json"
    original = payload.read_bytes()
    inside = public_mount / "store" / "private" / "secret.json"
    json_secret(inside, len(original))
    payload.unlink()
    payload.symlink_to(inside)
    with pytest.raises(ArtifactfsError, match="is a symbolic link"):
        load_artifact("blob")
    with mounted(public_mount / "mnt", "--allow-other", log_path=tmp_path / "mount.log") as mount:
        shown = mount.path / "artifacts" / "blob" / "1" / "data.json"
        read = as_attacker("cat", str(shown))
        assert b"SSSS" not in read.stdout and read.returncode != 0, read
        with pytest.raises(OSError):
            shown.read_bytes()
        payload.unlink()
        payload.write_bytes(original)
        payload.chmod(0o600)  # narrower than the 0644 the mount shows: not served to anyone
        read = as_attacker("cat", str(shown))
        assert read.returncode != 0 and original not in read.stdout, read
        payload.chmod(0o644)
        outside_secret = tmp_path / "secret.json"
        json_secret(outside_secret, len(original))
        served, leaked = 0, 0
        with flipping(payload, outside_secret):
            for _ in range(TRIES * 5):
                try:
                    _forget_pages(shown)
                    data = shown.read_bytes()
                except OSError:
                    continue  # the link was met: EIO
                served += 1
                leaked += b"SSSS" in data
        assert leaked == 0, f"the mount served the root-only secret {leaked} times of {served}"
    assert load_artifact("blob") == {"payload": "p" * 40}


def test_an_open_from_the_lookup_cache_follows_no_link(tmp_path):
    """``open_read_fd(cached_only=True)``, which the mount uses on its event
    loop, opens a payload whose path the kernel has cached, says
    BlockingIOError (open it in a thread) for a link anywhere on the path,
    never following it, and FileNotFoundError for a name known not to be there."""
    from artifactfs.stores.beneath import Root

    store = tmp_path / "store"
    (store / "v1").mkdir(parents=True)
    (store / "v1" / "data.bin").write_bytes(b"payload")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"SSSS")
    (store / "v1" / "link.bin").symlink_to(secret)
    (store / "linked").symlink_to(tmp_path)
    beneath = Root(str(store))
    os.close(beneath.open_read_fd("v1/data.bin"))  # the slow way first: the path is in the lookup cache now
    fd = beneath.open_read_fd("v1/data.bin", cached_only=True)
    try:
        assert os.pread(fd, 100, 0) == b"payload"
    finally:
        os.close(fd)
    for linked in ("v1/link.bin", "linked/secret.bin"):
        os.stat(store / linked)  # the link and its target are cached too
        with pytest.raises(BlockingIOError):
            beneath.open_read_fd(linked, cached_only=True)
        with pytest.raises(ArtifactfsError, match="symbolic link"):
            beneath.open_read_fd(linked)
    with pytest.raises(FileNotFoundError):
        beneath.open_read_fd("v1/missing.bin")  # the kernel caches the miss
    with pytest.raises(FileNotFoundError):
        beneath.open_read_fd("v1/missing.bin", cached_only=True)


def test_the_download_route_never_serves_a_linked_in_file(sqlite_home, tmp_path):
    """(e) The web view's download route, with a payload file swapped for a
    link to a root-only file inside the store, then flipped to a link to
    ``/etc/passwd``-sized secret outside it in a tight loop."""
    require_root()
    from artifactfs.web import WebConfig, create_app
    from web_helpers import client, serving

    version = save_artifact({"payload": "p" * 60}, "blob")
    payload = Path(version.uri) / "data.json"
    original = payload.read_bytes()
    inside = root() / "private" / "secret.json"
    json_secret(inside, len(original))
    payload.unlink()
    payload.symlink_to(inside)
    with serving(create_app(WebConfig())) as base, client(base) as http:
        url = f"/versions/{version.id}/files/data.json"
        answer = http.get(url)
        assert b"SSSS" not in answer.content and answer.status_code == 404, answer
        payload.unlink()
        payload.write_bytes(original)
        outside = tmp_path / "secret.json"
        json_secret(outside, len(original))
        served = leaked = 0
        with flipping(payload, outside):
            for _ in range(TRIES * 3):
                try:
                    answer = http.get(url)
                except Exception:  # noqa: BLE001 - a broken stream is no leak
                    continue
                served += answer.status_code == 200
                leaked += b"SSSS" in answer.content
        assert leaked == 0, f"the download route served the secret {leaked} times of {served}"
        assert http.get(url).content == original
    assert json.loads(original) == {"payload": "p" * 60}
