"""A publisher and a consumer using Atlas in headless Chromium, as people would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.boxes import build_box, sha256
from tests.browser.conftest import Browser
from tests.conftest import Client, Suite, unique
from tests.operations import wait_for
from tests.pages import make_person

pytestmark = pytest.mark.browser

# Records every value the upload page's progress bar shows, to check it climbs to 100.
RECORD_PROGRESS = """
window.progressSeen = [];
const bar = document.getElementById("upload-progress");
new MutationObserver(() => window.progressSeen.push(Number(bar.value)))
  .observe(document.getElementById("upload-percent"),
           {childList: true, characterData: true, subtree: true});
"""


def create_box(
    browser: Browser, name: str, private: bool = False, screenshot: str | None = None
) -> None:
    browser.open("/-/new")
    browser.fill("name", name)
    browser.fill("short_description", "Debian 12 for libvirt")
    browser.fill("description", "A **minimal** Debian image.\n\n- user `vagrant`\n- 2 GiB disk")
    if private:
        browser.click('input[name="private"]')
    if screenshot:
        browser.screenshot(screenshot)
    browser.click("main form button[type=submit]")
    browser.wait_until(lambda: "/boxes/" in browser.path, "the box page did not open")


def test_publisher_flow_from_sign_in_to_search(
    browser_factory: Callable[..., Browser], data_rpc: Any, suite: Suite, tmp_path: Path
) -> None:
    person = make_person(data_rpc)
    name = unique("debian")
    browser = browser_factory()

    browser.open("/-/sign-in")
    browser.screenshot("sign-in")
    browser.sign_in(person)

    browser.open("/-/tokens")
    browser.fill("description", "laptop")
    browser.click("main form button[type=submit]")
    token = browser.wait_for("#new-token").text
    assert "laptop" in browser.text("#tokens")
    browser.screenshot("tokens")
    whoami = requests.get(
        f"{suite.api_url}/api/v1/authenticate",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert whoami.json()["user"]["username"] == person

    create_box(browser, name, screenshot="new-box")
    browser.fill("version", "1.0.0")
    browser.click_text("Create version")
    browser.wait_for("#v-1\\.0\\.0")
    browser.fill("provider", "libvirt")
    browser.fill("architecture", "amd64")
    browser.click_text("Add provider and upload")
    browser.wait_until(lambda: browser.path.endswith("/upload"), "the upload page did not open")
    browser.screenshot("upload")

    content = build_box(architecture="amd64", disk_bytes=6 * 1024 * 1024)
    box_file = tmp_path / "debian.box"
    box_file.write_bytes(content)
    browser.run(RECORD_PROGRESS)
    browser.find('input[type="file"]').send_keys(str(box_file))
    browser.click_text("Upload")
    browser.wait_until(lambda: browser.find("#upload-done").is_displayed(), "upload did not finish")
    progress = browser.run("return window.progressSeen")
    assert browser.text("#upload-percent") == "100%"
    assert progress[-1] == 100
    assert progress == sorted(progress)
    browser.screenshot("upload-complete")

    browser.click_text("Back to the box")
    browser.wait_for("#v-1\\.0\\.0")
    browser.click_text("Release v1.0.0")
    browser.wait_until(lambda: browser.find_all("#v-1\\.0\\.0 .badge.active"), "no release")
    add_line = browser.text("#box-add")
    assert add_line == (
        f"export VAGRANT_SERVER_URL={suite.api_url}\nvagrant box add {person}/{name}"
    )
    assert sha256(content) in browser.text(".providers")

    browser.screenshot("box")

    # Metadata lists the provider once box.inspect has verified the file.
    def served_metadata() -> dict | None:
        found = requests.get(
            f"{suite.api_url}/{person}/{name}", headers={"Accept": "application/json"}, timeout=10
        ).json()
        return found if found["versions"] else None

    metadata = wait_for(served_metadata, timeout=60)
    assert metadata, "the uploaded box was not verified"
    download = requests.get(metadata["versions"][0]["providers"][0]["url"], timeout=30)
    assert sha256(download.content) == sha256(content)

    browser.open("/")
    browser.fill("q", name)
    browser.fill("provider", "libvirt")
    browser.click("form.search button[type=submit]")
    browser.wait_until(lambda: "q=" in browser.path, "the search did not run")
    assert [link.text for link in browser.find_all(".boxes .tag")] == [f"{person}/{name}"]
    browser.screenshot("search")
    browser.open("/-/health")
    assert browser.text("#overall") == "passing"
    assert browser.text("#service-data .badge") == "passing"
    browser.screenshot("health")


def test_box_page_fits_a_phone_screen(
    browser_factory: Callable[..., Browser], data_rpc: Any, suite: Suite
) -> None:
    person = make_person(data_rpc)
    token = data_rpc.issue_token(person, "test")["token"]
    owner = Client(suite.api_url, person, token)
    name = unique("ubuntu")
    owner.post(
        "/api/v1/boxes",
        json={"username": person, "name": name, "short_description": "Ubuntu 24.04 LTS"},
    )
    owner.post(f"/api/v1/box/{person}/{name}/versions", json={"version": {"version": "2.0.0"}})
    owner.post(
        f"/api/v1/box/{person}/{name}/version/2.0.0/providers",
        json={"provider": {"name": "virtualbox", "architecture": "amd64"}},
    )
    upload = owner.get(f"/api/v1/box/{person}/{name}/version/2.0.0/provider/virtualbox/upload")
    requests.put(upload.json()["upload_path"], data=build_box("virtualbox"), timeout=30)
    owner.put(f"/api/v1/box/{person}/{name}/version/2.0.0/release")
    phone = browser_factory(width=390, height=844, phone=True)

    phone.open(f"/{person}/boxes/{name}")

    assert f"vagrant box add {person}/{name}" in phone.text("#box-add")
    assert phone.run("return document.documentElement.scrollWidth <= window.innerWidth")
    phone.screenshot("box-phone")


def test_private_box_is_invisible_to_another_user(
    browser_factory: Callable[..., Browser], data_rpc: Any
) -> None:
    owner_name = make_person(data_rpc)
    stranger_name = make_person(data_rpc)
    name = unique("internal")
    owner = browser_factory()
    owner.sign_in(owner_name)
    create_box(owner, name, private=True)
    assert "private" in owner.text("h1")

    stranger = browser_factory()
    stranger.sign_in(stranger_name)
    stranger.open(f"/{owner_name}/boxes/{name}")
    stranger.wait_for("h1")
    stranger.screenshot("private-box-for-stranger")

    assert stranger.text("h1") == "Not found"
    stranger.open(f"/{owner_name}")
    assert name not in stranger.text()


def test_form_without_csrf_token_rejected(browser: Browser, data_rpc: Any, suite: Suite) -> None:
    person = make_person(data_rpc)
    name = unique("forged")
    browser.sign_in(person)
    browser.open("/-/new")
    browser.run('document.querySelector("main form input[name=csrf_token]").remove()')
    browser.fill("name", name)

    browser.click("main form button[type=submit]")
    browser.wait_until(lambda: browser.find_all(".notice"), "the refusal did not show")

    assert browser.text("h1") == "Not allowed"
    assert "security token is missing or expired" in browser.text()
    box = requests.get(f"{suite.api_url}/api/v1/box/{person}/{name}", timeout=10)
    assert box.status_code == 404


def test_publishing_works_without_javascript(
    browser_factory: Callable[..., Browser], data_rpc: Any, suite: Suite, tmp_path: Path
) -> None:
    person = make_person(data_rpc)
    name = unique("nojs")
    browser = browser_factory(javascript=False)
    browser.sign_in(person)
    create_box(browser, name)
    browser.fill("version", "0.1.0")
    browser.click_text("Create version")
    browser.wait_for("#v-0\\.1\\.0")
    browser.fill("provider", "libvirt")
    browser.click_text("Add provider and upload")
    browser.wait_until(lambda: browser.path.endswith("/upload"), "the upload page did not open")
    box_file = tmp_path / "nojs.box"
    box_file.write_bytes(build_box())

    browser.find('input[type="file"]').send_keys(str(box_file))
    browser.click_text("Upload")
    # Binstore redirects the plain form post back; with scripts the page would not reload.
    # The upload page has a hidden #upload-done for scripts, so the new address comes first.
    browser.wait_until(
        lambda: browser.path.endswith("/upload?upload=done"), "binstore did not redirect back"
    )
    assert browser.wait_for("#upload-done").is_displayed()
    browser.screenshot("upload-complete-without-javascript")
    browser.click_text("Back to the box")
    browser.click_text("Release v0.1.0")
    browser.wait_until(lambda: browser.find_all("#v-0\\.1\\.0 .badge.active"), "no release")

    assert f"vagrant box add {person}/{name}" in browser.text("#box-add")
