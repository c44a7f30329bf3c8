"""Boxes published for tests, through the public API or straight through data's RPC.

The RPC path builds the same rows as the API with fewer requests, for tests
that need many fresh boxes. Uploaded files still go through binstore.
"""

from __future__ import annotations

import functools
from typing import Any

import requests

from tests.boxes import build_box
from tests.conftest import Client, unique
from tests.operations import wait_for

# One small box file serves every test; binstore stores it once by its sha256.
BOX_FILE = build_box("libvirt", disk_bytes=4096)
TERMINAL = {"succeeded", "failed", "cancelled"}


@functools.cache
def box_file_for(provider: str) -> bytes:
    """Return a small box whose metadata.json names ``provider``, so inspection verifies it."""
    return BOX_FILE if provider == "libvirt" else build_box(provider, disk_bytes=4096)


def inspections_finished(jobs: list[dict[str, Any]]) -> bool:
    return bool(jobs) and all(job["state"] in TERMINAL for job in jobs)


def wait_until_inspected(client: Client, tag: str) -> list[dict[str, Any]]:
    """Wait until every box.inspect job of ``tag`` has finished; return the jobs."""

    def finished() -> list[dict[str, Any]] | None:
        response = client.get("/api/v1/jobs", params={"box": tag, "kind": "box.inspect"})
        assert response.status_code == 200, response.text
        jobs = response.json()["jobs"]
        return jobs if inspections_finished(jobs) else None

    jobs = wait_for(finished, timeout=60)
    assert jobs, f"the inspection of {tag} did not finish"
    return jobs


def api_publish(
    client: Client,
    namespace: str,
    versions: tuple[str, ...] = ("1.0.0",),
    private: bool = False,
    name: str | None = None,
    short_description: str | None = None,
    provider: str = "libvirt",
    content: bytes | None = None,
) -> str:
    """Create a box through the API and release each of ``versions``; return its tag."""
    name = name or unique("box")
    fields: dict[str, Any] = {"username": namespace, "name": name, "is_private": private}
    if short_description is not None:
        fields["short_description"] = short_description
    created = client.post("/api/v1/boxes", json=fields)
    assert created.status_code == 200, created.text
    tag = f"{namespace}/{name}"
    for version in versions:
        api_release(client, tag, version, provider, content)
    return tag


def api_release(
    client: Client,
    tag: str,
    version: str,
    provider: str = "libvirt",
    content: bytes | None = None,
) -> None:
    """Create ``version`` of ``tag`` with one provider, upload ``content`` and release it.

    The default content is a box for ``provider``; the release waits for its inspection.
    """
    base = f"/api/v1/box/{tag}"
    steps = [
        client.post(f"{base}/versions", json={"version": {"version": version}}),
        client.post(f"{base}/version/{version}/providers", json={"provider": {"name": provider}}),
    ]
    target = client.get(f"{base}/version/{version}/provider/{provider}/upload")
    steps.append(target)
    content = box_file_for(provider) if content is None else content
    steps.append(requests.put(target.json()["upload_path"], data=content, timeout=30))
    steps.append(client.put(f"{base}/version/{version}/release"))
    for step in steps:
        assert step.status_code == 200, step.text
    wait_until_inspected(client, tag)


class RpcPublisher:
    """Builds boxes for one actor through data's RPC methods."""

    def __init__(self, data_rpc: Any, binstore_url: str, actor: dict[str, Any]) -> None:
        self.data = data_rpc
        self.binstore_url = binstore_url
        self.actor = actor

    def box(self, namespace: str, private: bool, name: str | None = None) -> str:
        name = name or unique("box")
        self.data.create_box(
            self.actor, {"username": namespace, "name": name, "is_private": private}
        )
        return f"{namespace}/{name}"

    def version(self, tag: str, version: str, file: str = "upload", release: bool = False) -> None:
        """Add ``version`` with a libvirt provider, released if asked.

        ``file`` is "upload" to store BOX_FILE in binstore, "url" to point the
        provider at an external URL (which needs no upload) or "none".
        """
        namespace, name = tag.split("/")
        provider: dict[str, Any] = {"name": "libvirt"}
        if file == "url":
            provider["url"] = f"https://boxes.example/{name}/{version}.box"
        self.data.create_version(self.actor, namespace, name, {"version": version})
        self.data.create_provider(self.actor, namespace, name, version, provider)
        if file == "upload":
            target = self.data.create_upload_target(
                self.actor, namespace, name, version, "libvirt", None, False
            )
            stored = requests.put(
                f"{self.binstore_url}/uploads/{target['token']}", data=BOX_FILE, timeout=30
            )
            assert stored.status_code == 200, stored.text
            self.wait_until_inspected(tag)
        if release:
            self.data.release_version(self.actor, namespace, name, version)

    def wait_until_inspected(self, tag: str) -> None:
        def finished() -> bool:
            jobs = self.data.find_jobs(box=tag, kind="box.inspect")["jobs"]
            return inspections_finished(jobs)

        assert wait_for(finished, timeout=60), f"the inspection of {tag} did not finish"

    def released_box(self, namespace: str, private: bool, unreleased_file: str = "url") -> str:
        """Return a box with released 1.0.0 and unreleased 2.0.0, each with a libvirt provider.

        1.0.0's provider points at an external URL; 2.0.0's has ``unreleased_file``.
        """
        tag = self.box(namespace, private)
        self.version(tag, "1.0.0", file="url", release=True)
        self.version(tag, "2.0.0", file=unreleased_file)
        return tag
