"""A box published with ``vagrant cloud publish`` installs with ``vagrant box add``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests

from tests.boxes import build_box
from tests.conftest import unique


def test_publish_then_box_add(atlas_suite: Any, vagrant_factory: Any, tmp_path: Path) -> None:
    username = unique("publisher")
    organization = unique("org")
    token = atlas_suite.create_user(username)
    atlas_suite.atlas("orgs", "create", organization, "--owner", username)
    box_file = tmp_path / "test.box"
    box_file.write_bytes(build_box("libvirt", disk_bytes=256 * 1024))
    publisher = vagrant_factory(token, "publisher")
    consumer = vagrant_factory(None, "consumer")

    whoami = publisher.run("cloud", "auth", "whoami")
    publish = publisher.run(
        "cloud",
        "publish",
        f"{organization}/base",
        "1.0.0",
        "libvirt",
        str(box_file),
        "--release",
        "--force",
    )
    show = publisher.run("cloud", "box", "show", f"{organization}/base")
    add = consumer.run("box", "add", f"{organization}/base")
    listing = consumer.run("box", "list")

    assert username in whoami.stdout
    assert "Complete! Published" in publish.stdout
    assert re.search(r"Current Version:\s+1\.0\.0", show.stdout)
    assert "Successfully added box" in add.stdout
    assert f"{organization}/base (libvirt, 1.0.0)" in listing.stdout


def test_cloud_box_commands(atlas_suite: Any, vagrant_factory: Any) -> None:
    username = unique("maker")
    token = atlas_suite.create_user(username)
    vagrant = vagrant_factory(token)
    tag = f"{username}/tools"

    create = vagrant.run("cloud", "box", "create", tag, "--short-description", "Tool box")
    update = vagrant.run("cloud", "box", "update", tag, "--short-description", "Better tools")
    show = vagrant.run("cloud", "box", "show", tag)
    version = vagrant.run("cloud", "version", "create", tag, "0.1.0")
    provider = vagrant.run("cloud", "provider", "create", tag, "libvirt", "0.1.0")
    stored_box = requests.get(f"{atlas_suite.api_url}/api/v1/box/{tag}", timeout=10).json()
    delete = vagrant.run("cloud", "box", "delete", tag, "--force")
    missing = vagrant.run("cloud", "box", "show", tag, check=False)

    assert create.returncode == 0
    assert update.returncode == 0
    assert tag in show.stdout
    assert stored_box["short_description"] == "Better tools"
    assert version.returncode == 0
    assert provider.returncode == 0
    assert delete.returncode == 0
    assert missing.returncode != 0


def test_login_with_token_and_bad_token(atlas_suite: Any, vagrant_factory: Any) -> None:
    username = unique("login")
    token = atlas_suite.create_user(username)
    vagrant = vagrant_factory()

    good = vagrant.run("cloud", "auth", "login", "--token", token)
    whoami = vagrant.run("cloud", "auth", "whoami")
    bad = vagrant_factory("not-a-real-token", "bad").run("cloud", "auth", "whoami", check=False)

    assert good.returncode == 0
    assert username in whoami.stdout
    assert bad.returncode != 0


def test_version_and_provider_lifecycle(
    atlas_suite: Any, vagrant_factory: Any, tmp_path: Path
) -> None:
    username = unique("cycle")
    token = atlas_suite.create_user(username)
    vagrant = vagrant_factory(token)
    tag = f"{username}/cycle"
    box_file = tmp_path / "cycle.box"
    box_file.write_bytes(build_box("libvirt"))
    vagrant.run("cloud", "box", "create", tag)
    vagrant.run("cloud", "version", "create", tag, "1.0.0")
    vagrant.run("cloud", "provider", "create", tag, "libvirt", "1.0.0")

    upload = vagrant.run("cloud", "provider", "upload", tag, "libvirt", "1.0.0", str(box_file))
    release = vagrant.run("cloud", "version", "release", tag, "1.0.0", "--force")
    released = requests.get(f"{atlas_suite.api_url}/api/v1/box/{tag}", timeout=10).json()
    revoke = vagrant.run("cloud", "version", "revoke", tag, "1.0.0", "--force")
    revoked = requests.get(f"{atlas_suite.api_url}/{tag}", timeout=10).json()
    delete_provider = vagrant.run("cloud", "provider", "delete", tag, "libvirt", "1.0.0", "--force")
    delete_version = vagrant.run("cloud", "version", "delete", tag, "1.0.0", "--force")
    remaining = requests.get(f"{atlas_suite.api_url}/api/v1/box/{tag}", timeout=10).json()

    assert upload.returncode == 0
    assert release.returncode == 0
    assert released["current_version"]["version"] == "1.0.0"
    assert revoke.returncode == 0
    assert revoked["versions"] == []
    assert delete_provider.returncode == 0
    assert delete_version.returncode == 0
    assert remaining["versions"] == []
