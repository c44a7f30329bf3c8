"""The vagrant CLI against Atlas: search, private boxes, password login and updates.

Boxes are published through the API, which is faster than through vagrant;
every command under test is the real vagrant CLI. A vagrant command that
sends a token to a server other than Vagrant Cloud waits five seconds
after a warning, so these tests run such commands sparingly.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from typing import Any

from tests.conftest import Client, unique
from tests.publishing import api_publish

LOGIN_TIMEOUT = 120  # seconds


def publisher(atlas_suite: Any, password: str | None = None) -> Client:
    username = unique("pub")
    token = atlas_suite.create_user(username, password)
    return Client(atlas_suite.api_url, username, token)


def log_in_with_password(vagrant: Any, username: str, password: str) -> tuple[int, str]:
    """Run ``vagrant cloud auth login`` on a terminal and type the password at its prompt.

    vagrant reads the password only from a terminal, so a pipe will not do.
    """
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        ["vagrant", "cloud", "auth", "login", "--username", username, "--description", "e2e"],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=vagrant.env,
        cwd=vagrant.cwd,
        close_fds=True,
    )
    os.close(secondary)
    output = b""
    typed = False
    deadline = time.monotonic() + LOGIN_TIMEOUT
    try:
        while time.monotonic() < deadline:
            readable, _, _ = select.select([primary], [], [], 0.5)
            if not readable:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal closes when vagrant exits
                break
            output += chunk
            if not typed and b"Password" in output:
                os.write(primary, password.encode() + b"\n")
                typed = True
        return process.wait(timeout=30), output.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(primary)


def test_cloud_search_shows_private_boxes_only_with_token(
    atlas_suite: Any, vagrant_factory: Any
) -> None:
    owner = publisher(atlas_suite)
    word = unique("find")
    public = api_publish(owner, owner.username, name=f"{word}-public", provider="virtualbox")
    private = api_publish(owner, owner.username, name=f"{word}-private", private=True)

    anonymous = vagrant_factory(None, "anonymous").run("cloud", "search", word, "--json")
    signed_in = vagrant_factory(owner.token, "owner").run("cloud", "search", word)
    nothing = vagrant_factory(None, "nothing").run("cloud", "search", unique("absent"))

    assert json.loads(anonymous.stdout.strip().splitlines()[-1]) == [
        {"name": public, "version": "1.0.0", "downloads": "0", "providers": "virtualbox"}
    ]
    assert f"| {public} " in signed_in.stdout
    assert f"| {private} " in signed_in.stdout
    assert "No results found" in nothing.stdout + nothing.stderr


def test_cloud_box_show_of_private_box(atlas_suite: Any, vagrant_factory: Any) -> None:
    owner = publisher(atlas_suite)
    tag = api_publish(owner, owner.username, private=True)

    shown = vagrant_factory(owner.token, "owner").run("cloud", "box", "show", tag)
    hidden = vagrant_factory(None, "anonymous").run("cloud", "box", "show", tag, check=False)
    stranger = vagrant_factory(publisher(atlas_suite).token, "stranger").run(
        "cloud", "box", "show", tag, check=False
    )

    assert f"Box:              {tag}" in shown.stdout
    assert "Private:          yes" in shown.stdout
    assert "Current Version:  1.0.0" in shown.stdout
    assert hidden.returncode != 0
    assert f"Failed to locate requested box: {tag}" in hidden.stderr
    assert stranger.returncode != 0
    assert f"Failed to locate requested box: {tag}" in stranger.stderr


def test_box_add_of_private_box_needs_token(atlas_suite: Any, vagrant_factory: Any) -> None:
    owner = publisher(atlas_suite)
    tag = api_publish(owner, owner.username, private=True)

    without = vagrant_factory(None, "anonymous").run("box", "add", tag, check=False)
    consumer = vagrant_factory(owner.token, "consumer")
    added = consumer.run("box", "add", tag)
    listing = consumer.run("box", "list")

    assert without.returncode != 0
    assert f"The box '{tag}' could not be found or" in without.stderr
    assert "could not be accessed in the remote catalog" in without.stderr
    assert "Successfully added box" in added.stdout
    assert f"{tag} (libvirt, 1.0.0)" in listing.stdout


def test_password_login_then_private_box_add(atlas_suite: Any, vagrant_factory: Any) -> None:
    password = "a long e2e password"
    owner = publisher(atlas_suite, password)
    tag = api_publish(owner, owner.username, private=True)
    vagrant = vagrant_factory(None, "login")

    code, output = log_in_with_password(vagrant, owner.username, password)
    whoami = vagrant.run("cloud", "auth", "whoami")
    added = vagrant.run("box", "add", tag)
    tokens = owner.get("/api/v1/tokens").json()["tokens"]

    assert code == 0, output
    assert "You are now logged in." in output
    assert f"Currently logged in as {owner.username}" in whoami.stdout
    assert "Successfully added box" in added.stdout
    assert "e2e" in [token["description"] for token in tokens]


def test_box_outdated_and_update_skip_revoked_version(
    atlas_suite: Any, vagrant_factory: Any
) -> None:
    owner = publisher(atlas_suite)
    tag = api_publish(owner, owner.username, versions=("1.0.0", "1.1.0", "1.2.0"))
    vagrant = vagrant_factory(None, "consumer")

    vagrant.run("box", "add", tag, "--box-version", "1.0.0")
    before_revoke = vagrant.run("box", "outdated", "--global")
    revoked = owner.put(f"/api/v1/box/{tag}/version/1.2.0/revoke")
    after_revoke = vagrant.run("box", "outdated", "--global")
    update = vagrant.run("box", "update", "--box", tag)
    after_update = vagrant.run("box", "outdated", "--global")
    listing = vagrant.run("box", "list")

    assert f"'{tag}' for 'libvirt' is outdated! Current: 1.0.0. Latest: 1.2.0" in (
        before_revoke.stdout
    )
    assert revoked.status_code == 200
    assert f"'{tag}' for 'libvirt' is outdated! Current: 1.0.0. Latest: 1.1.0" in (
        after_revoke.stdout
    )
    assert f"Successfully added box '{tag}' (v1.1.0) for 'libvirt'" in update.stdout
    assert f"'{tag}' for 'libvirt' (v1.1.0) is up to date" in after_update.stdout
    assert f"{tag} (libvirt, 1.1.0)" in listing.stdout
    assert "1.2.0" not in listing.stdout
