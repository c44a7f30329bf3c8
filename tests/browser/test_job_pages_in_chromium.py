"""The jobs pages in headless Chromium: following an upload's inspection, cancelling a job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.boxes import build_box
from tests.browser.conftest import Browser
from tests.browser.test_pages_in_chromium import create_box
from tests.conftest import unique
from tests.operations import wait_for
from tests.pages import account_id_of, make_person

pytestmark = pytest.mark.browser

# No worker consumes this kind, so its jobs stay queued until cancelled.
UNCONSUMED = "test.unconsumed"


def queued_job(data_rpc: Any, username: str) -> int:
    job = data_rpc.submit_job(UNCONSUMED, {"note": "waits"}, account_id_of(data_rpc, username))
    queued = wait_for(lambda: data_rpc.describe_job(job["id"])["state"] == "queued")
    assert queued, f"job {job['id']} was not queued"
    return int(job["id"])


def upload_box(browser: Browser, name: str, tmp_path: Path) -> None:
    """Create box ``name`` with version 1.0.0 and upload a libvirt .box file to it."""
    create_box(browser, name)
    browser.fill("version", "1.0.0")
    browser.click_text("Create version")
    browser.wait_for("#v-1\\.0\\.0")
    browser.fill("provider", "libvirt")
    browser.fill("architecture", "amd64")
    browser.click_text("Add provider and upload")
    browser.wait_until(lambda: browser.path.endswith("/upload"), "the upload page did not open")
    box_file = tmp_path / f"{name}.box"
    box_file.write_bytes(build_box(architecture="amd64"))
    browser.find('input[type="file"]').send_keys(str(box_file))
    browser.click_text("Upload")
    browser.wait_until(lambda: browser.find("#upload-done").is_displayed(), "upload did not finish")


def reload_until_state(browser: Browser, state: str) -> None:
    """Reload the job page until it shows ``state``, as a person watching it would."""

    def shows_state() -> bool:
        browser.driver.refresh()
        return bool(browser.find_all(f"#job-state.{state}"))

    browser.wait_until(shows_state, f"the job did not reach {state}")


def test_inspection_of_uploaded_box_succeeds(
    browser_factory: Callable[..., Browser], data_rpc: Any, tmp_path: Path
) -> None:
    person = make_person(data_rpc)
    name = unique("inspected")
    browser = browser_factory()
    browser.sign_in(person)
    upload_box(browser, name, tmp_path)

    browser.click_text("Jobs")
    browser.wait_for("#jobs")
    [row] = [
        row
        for row in browser.find_all("#jobs tbody tr")
        if "box.inspect" in row.text and f"{person}/{name}" in row.text
    ]
    browser.screenshot("jobs")
    row.find_element("css selector", "td a").click()
    browser.wait_for("#job-state")
    reload_until_state(browser, "succeeded")
    browser.screenshot("job")

    assert browser.text("#job-box") == f"{person}/{name}"
    assert browser.text("#job-attempts").startswith("1 / ")
    assert "verified" in browser.text("#job-result")
    assert [step.text.split(" ")[0:3] for step in browser.find_all("#job-history li")] == [
        ["pending", "→", "queued"],
        ["queued", "→", "running"],
        ["running", "→", "succeeded"],
    ]
    assert not browser.find_all("form[action$='/cancel']")

    phone = browser_factory(width=390, height=844, phone=True)
    phone.sign_in(person)
    phone.open(browser.path)
    assert phone.text("#job-state") == "succeeded"
    assert phone.run("return document.documentElement.scrollWidth <= window.innerWidth")
    phone.screenshot("job-phone")
    phone.open("/-/jobs")
    assert phone.run("return document.documentElement.scrollWidth <= window.innerWidth")
    phone.screenshot("jobs-phone")


def test_cancel_button_works_without_javascript(
    browser_factory: Callable[..., Browser], data_rpc: Any
) -> None:
    person = make_person(data_rpc)
    job_id = queued_job(data_rpc, person)
    browser = browser_factory(javascript=False)
    browser.sign_in(person)

    browser.open(f"/-/jobs/{job_id}")
    assert browser.text("#job-state") == "queued"
    browser.click_text("Cancel job")
    # A fresh query each time, because the old page's elements go stale when the form posts.
    browser.wait_for("#job-state.cancelled")
    browser.screenshot("job-cancelled")

    assert data_rpc.describe_job(job_id)["state"] == "cancelled"
    assert f"by {person}" in browser.text("#job-history")
    assert not browser.find_all("form[action$='/cancel']")


def test_job_form_without_csrf_token_rejected(browser: Browser, data_rpc: Any) -> None:
    person = make_person(data_rpc)
    job_id = queued_job(data_rpc, person)
    browser.sign_in(person)
    browser.open(f"/-/jobs/{job_id}")
    browser.run(
        "document.querySelector(\"form[action$='/cancel'] input[name=csrf_token]\").remove()"
    )

    browser.click_text("Cancel job")
    browser.driver.switch_to.alert.accept()
    browser.wait_until(lambda: browser.find_all(".notice"), "the refusal did not show")

    assert browser.text("h1") == "Not allowed"
    assert "security token is missing or expired" in browser.text()
    assert data_rpc.describe_job(job_id)["state"] == "queued"


def test_job_is_invisible_to_another_user(
    browser_factory: Callable[..., Browser], data_rpc: Any
) -> None:
    job_id = queued_job(data_rpc, make_person(data_rpc))
    stranger = browser_factory()
    stranger.sign_in(make_person(data_rpc))

    stranger.open(f"/-/jobs/{job_id}")
    stranger.wait_for("h1")
    stranger.screenshot("job-for-stranger")

    assert stranger.text("h1") == "Not found"
    stranger.open("/-/jobs")
    assert f"#{job_id}" not in stranger.text()
