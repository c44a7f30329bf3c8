"""Cancelling, retrying and filtering jobs in headless Chromium."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import Browser
from tests.jobkinds import RECORD, UNSERVED
from tests.pages import make_person

pytestmark = pytest.mark.browser


def test_queued_job_is_cancelled_from_its_page(
    browser_factory: Callable[..., Browser], data_rpc: Any
) -> None:
    person = make_person(data_rpc)
    job = data_rpc.submit_job(UNSERVED, {}, account=person)
    browser = browser_factory()
    browser.sign_in(person)

    browser.open(f"/-/jobs/{job['id']}")
    browser.wait_until(lambda: browser.find("#job-state").text == "queued", "not queued")
    browser.run("window.confirm = () => true")
    browser.click_text("Cancel")
    browser.wait_until(lambda: browser.find("#job-state").text == "cancelled", "not cancelled")

    assert f"by {person}" in browser.text(".timeline")


def test_failed_job_is_retried_from_its_page(
    browser_factory: Callable[..., Browser], data_rpc: Any
) -> None:
    person = make_person(data_rpc)
    job = data_rpc.submit_job(RECORD, {"permanent": True}, account=person)
    browser = browser_factory()
    browser.sign_in(person)

    browser.open(f"/-/jobs/{job['id']}")
    browser.wait_until(lambda: browser.find("#job-state").text == "failed", "did not fail")
    browser.click_text("Retry")
    browser.wait_until(lambda: "retry" in browser.text(".timeline"), "no retry in the history")

    assert f"by {person}" in browser.text(".timeline")


def test_job_list_filters_by_state(browser: Browser, data_rpc: Any) -> None:
    person = make_person(data_rpc)
    queued = data_rpc.submit_job(UNSERVED, {}, account=person)
    browser.sign_in(person)

    browser.open("/-/jobs?state=cancelled")
    listed_cancelled = [link.text for link in browser.find_all("tbody a")]
    browser.open("/-/jobs?state=queued&kind=" + UNSERVED)
    listed_queued = [link.text for link in browser.find_all("tbody a")]

    assert f"#{queued['id']}" not in listed_cancelled
    assert f"#{queued['id']}" in listed_queued
