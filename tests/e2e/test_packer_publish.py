"""Packer's vagrant-cloud post-processor publishes to Atlas, and vagrant installs the result.

The template builds nothing (a ``null`` builder without a communicator);
the ``artifice`` post-processor hands a prepared .box to ``vagrant-cloud``,
which Packer points at Atlas with ``vagrant_cloud_url``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.boxes import build_box, sha256
from tests.conftest import Client, unique

PACKER_TIMEOUT = 300  # seconds


def packer_template(
    box_file: Path, tag: str, version: str, token: str, url: str, direct: bool
) -> dict:
    return {
        "builders": [{"type": "null", "communicator": "none"}],
        "post-processors": [
            [
                {"type": "artifice", "files": [str(box_file)]},
                {
                    "type": "vagrant-cloud",
                    "box_tag": tag,
                    "version": version,
                    "version_description": f"Built by Packer as {version}",
                    "access_token": token,
                    "vagrant_cloud_url": f"{url}/api/v1",
                    "no_direct_upload": not direct,
                },
            ]
        ],
    }


def packer_build(template: dict, workdir: Path) -> subprocess.CompletedProcess[str]:
    path = workdir / "template.json"
    path.write_text(json.dumps(template))
    env = {key: value for key, value in os.environ.items() if not key.startswith("PACKER_")}
    env.update(CHECKPOINT_DISABLE="1", PACKER_CACHE_DIR=str(workdir / "cache"))
    result = subprocess.run(
        ["packer", "build", "-color=false", str(path)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=PACKER_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_packer_publishes_box_that_vagrant_installs(
    atlas_suite: Any, vagrant_factory: Any, tmp_path: Path
) -> None:
    if shutil.which("packer") is None:
        pytest.fail("the packer CLI is not installed; .ci/run installs it from Debian")
    username, organization = unique("builder"), unique("team")
    token = atlas_suite.create_user(username)
    atlas_suite.atlas("orgs", "create", organization, "--owner", username)
    owner = Client(atlas_suite.api_url, username, token)
    tag = f"{organization}/packed"
    created = owner.post("/api/v1/boxes", json={"username": organization, "name": "packed"})
    assert created.status_code == 200, created.text
    first, second = tmp_path / "first.box", tmp_path / "second.box"
    first.write_bytes(build_box("libvirt"))
    second.write_bytes(build_box("libvirt"))

    direct = packer_build(
        packer_template(first, tag, "1.0.0", token, atlas_suite.api_url, direct=True), tmp_path
    )
    through_api = packer_build(
        packer_template(second, tag, "1.1.0", token, atlas_suite.api_url, direct=False), tmp_path
    )
    box = owner.get(f"/api/v1/box/{tag}").json()
    vagrant = vagrant_factory(None, "consumer")
    added = vagrant.run("box", "add", tag)
    listing = vagrant.run("box", "list")

    assert "Version successfully released" in direct.stdout
    assert "Version successfully released" in through_api.stdout
    versions = {version["version"]: version for version in box["versions"]}
    assert versions["1.0.0"]["status"] == "active"
    assert versions["1.1.0"]["status"] == "active"
    assert versions["1.1.0"]["description_markdown"] == "Built by Packer as 1.1.0"
    assert versions["1.0.0"]["providers"][0]["checksum"] == sha256(first.read_bytes())
    assert versions["1.1.0"]["providers"][0]["checksum"] == sha256(second.read_bytes())
    assert "Successfully added box" in added.stdout
    assert f"{tag} (libvirt, 1.1.0)" in listing.stdout
