"""box.inspect: an uploaded box is served only after its inspection verified it."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import requests

from tests.boxes import build_box, sha256
from tests.conftest import Client, inspected_provider, wait_for
from tests.integration.test_api_boxes import (
    assert_error,
    create_box,
    create_provider,
    create_version,
    upload,
)

PROVIDER_PATH = "/api/v1/box/{user}/{box}/version/1.0.0/provider/libvirt"


def uploaded_box(client: Client, content: bytes, **provider_fields: Any) -> str:
    box = create_box(client)
    create_version(client, box)
    create_provider(client, box, **provider_fields)
    response = upload(client, box, content)
    assert response.status_code == 200, response.text
    return box


def test_box_naming_another_provider_is_rejected(user: Client, anonymous: Client) -> None:
    box = uploaded_box(user, build_box("virtualbox"))

    inspection = inspected_provider(user, box)
    release = user.put(f"/api/v1/box/{user.username}/{box}/version/1.0.0/release")
    provider = user.get(PROVIDER_PATH.format(user=user.username, box=box)).json()
    metadata = anonymous.get(f"/{user.username}/{box}").json()
    download = anonymous.get(
        f"/{user.username}/boxes/{box}/versions/1.0.0/providers/libvirt/unknown/vagrant.box"
    )

    assert inspection is not None
    assert inspection["state"] == "succeeded"
    assert inspection["result"]["verdict"] == "rejected"
    assert inspection["result"]["reason"] == (
        "metadata.json names provider 'virtualbox', but the box was uploaded for provider 'libvirt'"
    )
    assert_error(release, 422, "no provider with a box file")
    assert provider["download_url"] is None
    assert metadata["versions"] == []
    assert_error(download, 404, "names provider 'virtualbox'")


def test_good_box_is_downloadable_after_inspection(user: Client, anonymous: Client) -> None:
    content = build_box("libvirt", architecture="amd64")
    box = uploaded_box(user, content, architecture="amd64")

    inspection = inspected_provider(user, box)
    user.put(f"/api/v1/box/{user.username}/{box}/version/1.0.0/release")
    metadata = anonymous.get(f"/{user.username}/{box}").json()
    url = metadata["versions"][0]["providers"][0]["url"]

    assert inspection is not None
    assert inspection["result"] == {
        "verdict": "verified",
        "reason": None,
        "metadata": {"provider": "libvirt", "architecture": "amd64", "format": "qcow2"},
        "applied": True,
    }
    assert [h["trigger"] for h in inspection["history"]] == [
        "submit",
        "enqueue",
        "start",
        "succeed",
    ]
    assert requests.get(url, timeout=30).content == content


def test_box_for_another_architecture_is_rejected(user: Client) -> None:
    box = uploaded_box(user, build_box("libvirt", architecture="arm64"), architecture="amd64")

    inspection = inspected_provider(user, box)

    assert inspection is not None
    assert inspection["result"]["verdict"] == "rejected"
    assert "architecture 'arm64'" in inspection["result"]["reason"]


def test_file_that_is_no_box_is_rejected(user: Client) -> None:
    box = uploaded_box(user, b"this is not a tar archive at all" * 100)

    inspection = inspected_provider(user, box)

    assert inspection is not None
    assert inspection["result"]["verdict"] == "rejected"
    assert "not a tar archive" in inspection["result"]["reason"]


def test_uncompressed_box_without_metadata_is_rejected(user: Client) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("Vagrantfile")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"# x"))
    box = uploaded_box(user, buffer.getvalue())

    inspection = inspected_provider(user, box)

    assert inspection is not None
    assert (
        inspection["result"]["reason"] == "the box has no metadata.json at the top of its archive"
    )


def test_reupload_after_rejection_is_inspected_again(user: Client) -> None:
    good = build_box("libvirt")
    box = uploaded_box(user, build_box("docker"))
    first = inspected_provider(user, box)
    user.put(
        PROVIDER_PATH.format(user=user.username, box=box),
        json={"provider": {"checksum_type": "sha256", "checksum": sha256(good)}},
    )

    assert upload(user, box, good).status_code == 200

    def second_inspection() -> dict[str, Any] | None:
        found = inspected_provider(user, box)
        return found if found and found["id"] != first["id"] else None

    second = wait_for(second_inspection)
    provider = user.get(PROVIDER_PATH.format(user=user.username, box=box)).json()

    assert first["result"]["verdict"] == "rejected"
    assert second["result"]["verdict"] == "verified"
    assert provider["checksum"] == sha256(good)
    assert provider["download_url"] is not None


def test_changed_architecture_is_inspected_again(user: Client) -> None:
    box = uploaded_box(user, build_box("libvirt", architecture="amd64"), architecture="amd64")
    first = inspected_provider(user, box)

    changed = user.put(
        f"/api/v2/box/{user.username}/{box}/version/1.0.0/provider/libvirt/amd64",
        json={"provider": {"architecture": "arm64"}},
    )

    def second_inspection() -> dict[str, Any] | None:
        found = inspected_provider(user, box)
        return found if found and found["id"] != first["id"] else None

    second = wait_for(second_inspection)

    assert changed.status_code == 200, changed.text
    assert changed.json()["download_url"] is None
    assert first["result"]["verdict"] == "verified"
    assert second["result"]["verdict"] == "rejected"
    assert "architecture 'amd64'" in second["result"]["reason"]
