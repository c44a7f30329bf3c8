"""box.inspect after uploads: only verified providers are listed and served."""

from __future__ import annotations

import requests
from sqlalchemy import create_engine, text

from tests.boxes import build_box
from tests.conftest import Client, unique
from tests.publishing import wait_until_inspected
from tests.responses import assert_error


def upload(client: Client, content: bytes, provider: str = "libvirt") -> str:
    """Create a box with released 1.0.0 whose ``provider`` gets ``content``; return its tag."""
    tag = f"{client.username}/{unique('box')}"
    base = f"/api/v1/box/{tag}"
    steps = [
        client.post("/api/v1/boxes", json={"username": client.username, "name": tag.split("/")[1]}),
        client.post(f"{base}/versions", json={"version": {"version": "1.0.0"}}),
        client.post(f"{base}/version/1.0.0/providers", json={"provider": {"name": provider}}),
    ]
    target = client.get(f"{base}/version/1.0.0/provider/{provider}/upload")
    steps.append(target)
    steps.append(requests.put(target.json()["upload_path"], data=content, timeout=30))
    steps.append(client.put(f"{base}/version/1.0.0/release"))
    for step in steps:
        assert step.status_code == 200, step.text
    return tag


def metadata_versions(client: Client, tag: str) -> list[dict]:
    response = client.get(f"/{tag}", headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    return list(response.json()["versions"])


def test_box_for_another_provider_is_rejected(user: Client) -> None:
    tag = upload(user, build_box("virtualbox"), provider="libvirt")

    [job] = wait_until_inspected(user, tag)

    assert job["state"] == "succeeded"
    assert job["result"] == {
        "verdict": "rejected",
        "reason": "metadata.json names provider 'virtualbox', but the box was uploaded "
        "for 'libvirt'",
    }
    assert metadata_versions(user, tag) == []
    provider = user.get(f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt").json()
    assert provider["download_url"] is None
    namespace, name = tag.split("/")
    download = user.get(
        f"/{namespace}/boxes/{name}/versions/1.0.0/providers/libvirt/unknown/vagrant.box"
    )
    assert_error(
        download,
        404,
        "provider libvirt of version 1.0.0 has no box file: inspection rejected it because "
        "metadata.json names provider 'virtualbox'",
    )


def test_good_box_is_served_after_inspection(user: Client) -> None:
    content = build_box("libvirt")
    tag = upload(user, content)

    [job] = wait_until_inspected(user, tag)

    assert job["result"] == {"verdict": "verified", "reason": None}
    [version] = metadata_versions(user, tag)
    url = version["providers"][0]["url"]
    assert user.session.get(url, timeout=30).content == content


def test_job_history_of_an_inspection(user: Client) -> None:
    tag = upload(user, build_box("libvirt"))
    [job] = wait_until_inspected(user, tag)

    detail = user.get(f"/api/v1/jobs/{job['id']}").json()

    assert detail["kind"] == "box.inspect"
    assert detail["box"] == tag
    assert [step["to"] for step in detail["history"]] == ["queued", "running", "succeeded"]


def test_provider_waiting_for_inspection_is_not_served(user: Client, database_url: str) -> None:
    tag = upload(user, build_box("libvirt"))
    wait_until_inspected(user, tag)
    provider_path = f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt"
    namespace, name = tag.split("/")
    download_path = (
        f"/{namespace}/boxes/{name}/versions/1.0.0/providers/libvirt/unknown/vagrant.box"
    )

    # Put the provider back to where it is between its upload and its inspection.
    set_inspection(database_url, tag, "pending")

    assert metadata_versions(user, tag) == []
    assert user.get(provider_path).json()["download_url"] is None
    assert_error(user.get(download_path), 404, "its inspection is still running")

    set_inspection(database_url, tag, "verified")

    assert len(metadata_versions(user, tag)) == 1
    assert user.get(provider_path).json()["download_url"] is not None
    assert user.get(download_path, allow_redirects=False).status_code == 302


def set_inspection(database_url: str, tag: str, state: str) -> None:
    namespace, name = tag.split("/")
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE providers SET inspection = :state FROM versions, boxes, accounts "
                    "WHERE providers.version_id = versions.id AND versions.box_id = boxes.id "
                    "AND boxes.account_id = accounts.id "
                    "AND accounts.username = :namespace AND boxes.name = :name"
                ),
                {"state": state, "namespace": namespace, "name": name},
            )
    finally:
        engine.dispose()


def test_release_needs_a_file_not_rejected(user: Client) -> None:
    tag = f"{user.username}/{unique('box')}"
    base = f"/api/v1/box/{tag}"
    user.post("/api/v1/boxes", json={"username": user.username, "name": tag.split("/")[1]})
    user.post(f"{base}/versions", json={"version": {"version": "1.0.0"}})
    user.post(f"{base}/version/1.0.0/providers", json={"provider": {"name": "libvirt"}})
    target = user.get(f"{base}/version/1.0.0/provider/libvirt/upload").json()
    requests.put(target["upload_path"], data=build_box("virtualbox"), timeout=30)
    wait_until_inspected(user, tag)

    released = user.put(f"{base}/version/1.0.0/release")

    assert_error(released, 422, "has no provider with a box file that inspection accepted")


def test_changed_provider_is_inspected_again(user: Client) -> None:
    tag = upload(user, build_box("libvirt"))
    wait_until_inspected(user, tag)
    provider = f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt"

    changed = user.put(provider, json={"provider": {"name": "virtualbox"}})
    jobs = wait_until_inspected(user, tag)

    assert changed.status_code == 200, changed.text
    assert [job["result"]["verdict"] for job in jobs] == ["rejected", "verified"]
    assert metadata_versions(user, tag) == []
    renamed = user.get(f"/api/v1/box/{tag}/version/1.0.0/provider/virtualbox").json()
    assert renamed["download_url"] is None


def test_unchanged_fields_keep_the_verdict(user: Client) -> None:
    tag = upload(user, build_box("libvirt"))
    wait_until_inspected(user, tag)
    provider = f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt"

    changed = user.put(provider, json={"provider": {"default_architecture": True}})
    jobs = wait_until_inspected(user, tag)

    assert changed.status_code == 200, changed.text
    assert len(jobs) == 1
    assert len(metadata_versions(user, tag)) == 1
