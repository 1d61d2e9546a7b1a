"""The payload layout (``stores.layout``): the one place that names a
version's folder, what lies beside it, and what is registered in place."""

from artifactfs.stores import layout

UUID = "0b6f1a3e-8c1d-4a7e-9f00-123456789abc"


def test_a_payload_is_its_folder_viz_and_manifest_file():
    folder = layout.payload_folder("model", UUID)
    assert folder == f"model/{UUID}"
    entries = dict(layout.payload_entries(folder + "/"))
    assert entries == {folder: layout.PAYLOAD, f"{folder}.viz": layout.VIZ, f"{folder}.manifest.json": layout.MANIFEST}
    assert {layout.payload_of(path) for path in entries} == {folder}
    assert layout.count_payloads(list(entries) + [f"/root/other/{UUID}"]) == 2


def test_only_uuid4_names_belong_to_the_layout():
    assert layout.classify(UUID) == (UUID, layout.PAYLOAD)
    assert layout.classify(UUID + ".viz") == (UUID, layout.VIZ)
    assert layout.classify(UUID + ".manifest.json") == (UUID, layout.MANIFEST)
    for name in ("checkpoint-7", UUID.replace("-4a7e", "-1a7e"), "x" + UUID, UUID + ".viz.manifest.json"):
        assert layout.classify(name) is None, name
    assert layout.payload_uuid(f"/s/model/{UUID}/") == UUID and layout.payload_uuid("/s/model/ckpt") is None


def test_registered_in_place_is_decided_by_one_rule():
    assert layout.in_layout(f"/s/model/{UUID}", UUID, layout.FOLDER)
    assert layout.registered_in_place(f"/s/model/{UUID}", UUID, layout.FILE)  # a file is never a layout folder
    assert layout.registered_in_place(f"/s/model/x{UUID}", UUID, layout.FOLDER)  # ends with the uuid, is not it
    assert layout.registered_in_place("/s/user/ckpt", UUID, layout.FOLDER)
