"""No secret reaches a log: a whole session of use, then every log file is searched.

The suite runs at debug level, so that the lines operators switch on to
investigate are searched too. The flow uses each kind of secret Atlas
handles: passwords (right and wrong), API tokens from every source, the
session cookie, upload tokens of both upload kinds, the signatures of
download URLs, sent in headers, paths, query strings and bodies, and the
signature in the URL of a box import, which the workers request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.boxes import build_box, sha256
from tests.conftest import Client, unique
from tests.loopback import BoxSource
from tests.operations import wait_for
from tests.pages import PageVisitor, csrf_from
from tests.publishing import wait_until_inspected
from tests.suite_process import RunningSuite, SuiteFailed, running_suite

TOKEN_ON_PAGE = re.compile(r'<pre class="secret" id="new-token">([^<]+)</pre>')


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logged-suite")


@pytest.fixture(scope="module")
def suite(workdir: Path) -> Iterator[RunningSuite]:
    try:
        with running_suite(
            workdir, {"ATLAS_LOG_LEVEL": "DEBUG", "ATLAS_OUTBOUND_ALLOWLIST": "127.0.0.1"}
        ) as running:
            yield running
    except SuiteFailed as exc:
        pytest.fail(str(exc))


class Secrets:
    """Every secret the flow used, by a name that says where it came from."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, name: str, value: str | None) -> str:
        assert value, f"the flow produced no {name}"
        self.values[name] = value
        return value


def upload_token(upload_path: str) -> str:
    return urlsplit(upload_path).path.rsplit("/", 1)[-1]


def publish(client: Client, secrets: Secrets, tag: str, version: str, direct: bool) -> bytes:
    """Create ``version`` of ``tag`` with an uploaded libvirt file and release it."""
    content = build_box("libvirt", disk_bytes=8192)
    base = f"/api/v1/box/{tag}/version/{version}"
    provider = {"name": "libvirt", "checksum": sha256(content), "checksum_type": "sha256"}
    created = [
        client.post(f"/api/v1/box/{tag}/versions", json={"version": {"version": version}}),
        client.post(f"{base}/providers", json={"provider": provider}),
    ]
    for response in created:
        assert response.status_code == 200, response.text

    target = client.get(f"{base}/provider/libvirt/upload" + ("/direct" if direct else ""))
    assert target.status_code == 200, target.text
    upload_path = target.json()["upload_path"]
    secrets.add(f"upload token of {version}", upload_token(upload_path))
    stored = requests.put(upload_path, data=content, timeout=60)
    assert stored.status_code == 200, stored.text
    if direct:
        callback = target.json()["callback"]
        secrets.add(
            f"callback token of {version}", upload_token(callback.removesuffix("/complete"))
        )
        completed = client.put(urlsplit(callback).path)
        assert completed.status_code == 200, completed.text

    inspections = wait_until_inspected(client, tag)
    assert {job["state"] for job in inspections} == {"succeeded"}, inspections

    released = client.put(f"{base}/release")
    assert released.status_code == 200, released.text
    return content


def import_from_signed_url(client: Client, secrets: Secrets, tag: str, version: str) -> None:
    """Import ``version`` of ``tag`` from a loopback source whose URL carries a signature."""
    source = BoxSource(build_box("libvirt", disk_bytes=8192))
    signature = secrets.add("signature in an import URL", unique("signature"))
    base = f"/api/v1/box/{tag}/version/{version}"
    try:
        created = [
            client.post(f"/api/v1/box/{tag}/versions", json={"version": {"version": version}}),
            client.post(f"{base}/providers", json={"provider": {"name": "libvirt"}}),
        ]
        for response in created:
            assert response.status_code == 200, response.text
        submitted = client.post(
            f"{base}/provider/libvirt/import",
            json={"url": f"{source.file_url}?X-Signature={signature}"},
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        finished = wait_for(
            lambda: client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "succeeded",
            timeout=60,
        )
        assert finished, client.get(f"/api/v1/jobs/{job_id}").json()
        assert source.ranges == [None]
    finally:
        source.stop()


def download(suite: RunningSuite, secrets: Secrets, path: str, **kwargs: object) -> bytes:
    """Follow a download through its signed binstore URL and record the signature."""
    redirect = requests.get(suite.api_url + path, allow_redirects=False, timeout=30, **kwargs)
    assert redirect.status_code == 302, redirect.text
    location = redirect.headers["Location"]
    secrets.add(f"download signature for {path}", parse_qs(urlsplit(location).query)["token"][0])
    fetched = requests.get(location, timeout=60)
    assert fetched.status_code == 200, fetched.text
    return fetched.content


def sign_in_on_pages(suite: RunningSuite, secrets: Secrets, username: str, password: str) -> None:
    visitor = PageVisitor(suite.api_url)
    wrong = visitor.submit(
        "/-/sign-in",
        "/-/sign-in",
        {"login": username, "password": secrets.add("wrong page password", unique("guess"))},
    )
    assert wrong.status_code == 401
    visitor.sign_in(username, password)
    secrets.add("session cookie", visitor.http.cookies.get("atlas_session"))

    tokens_page = visitor.get("/-/tokens")
    created = visitor.post(
        "/-/tokens",
        data={"csrf_token": csrf_from(tokens_page.text), "description": "from the page"},
    )
    assert created.status_code == 200, created.text
    match = TOKEN_ON_PAGE.search(created.text)
    assert match, "the tokens page shows no new token"
    secrets.add("token created on the page", match.group(1))

    signed_out = visitor.post(
        "/-/sign-out", data={"csrf_token": csrf_from(created.text)}, allow_redirects=False
    )
    assert signed_out.status_code == 303


def run_flow(suite: RunningSuite) -> Secrets:
    secrets = Secrets()
    username = unique("owner")
    password = secrets.add("password", f"pw-{unique('secret')}")
    cli_token = secrets.add("token from atlas users create", suite.create_user(username, password))
    cli_output = suite.atlas("tokens", "create", username)
    secrets.add("token from atlas tokens create", cli_output.split("store it now): ")[1].split()[0])

    wrong = requests.post(
        suite.api_url + "/api/v1/authenticate",
        json={"user": {"login": username, "password": secrets.add("wrong password", "pw-guess")}},
        timeout=30,
    )
    assert wrong.status_code == 401
    login = requests.post(
        suite.api_url + "/api/v2/authenticate",
        json={"user": {"login": username, "password": password}, "token": {"description": "t"}},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    api_token = secrets.add("token from POST /authenticate", login.json()["token"])

    client = Client(suite.api_url, username, api_token)
    name = unique("box")
    box = client.post(
        "/api/v1/boxes", json={"username": username, "name": name, "is_private": True}
    )
    assert box.status_code == 200, box.text
    tag = f"{username}/{name}"
    content = publish(client, secrets, tag, "1.0.0", direct=False)
    direct_content = publish(client, secrets, tag, "2.0.0", direct=True)
    import_from_signed_url(client, secrets, tag, "3.0.0")

    first_url = client.get(f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt").json()
    second_url = client.get(f"/api/v1/box/{tag}/version/2.0.0/provider/libvirt").json()
    by_header = download(
        suite,
        secrets,
        urlsplit(first_url["download_url"]).path,
        headers={"X-Atlas-Token": cli_token},
    )
    by_query = download(
        suite, secrets, urlsplit(second_url["download_url"]).path + f"?access_token={api_token}"
    )
    assert by_header == content
    assert by_query == direct_content
    whoami = requests.get(
        f"{suite.api_url}/api/v1/authenticate?access_token={cli_token}", timeout=30
    )
    assert whoami.status_code == 200, whoami.text

    sign_in_on_pages(suite, secrets, username, password)
    revoked = requests.delete(
        suite.api_url + "/api/v1/authenticate",
        headers={"Authorization": f"Bearer {api_token}"},
        timeout=30,
    )
    assert revoked.status_code == 204
    return secrets


def test_logs_contain_no_secret(suite: RunningSuite, workdir: Path) -> None:
    secrets = run_flow(suite)

    logs = {path: path.read_text(errors="replace") for path in workdir.rglob("*.log")}
    leaks = [
        f"{name} in {path.name}: {line.replace(value, '<' + name + '>')[:400]}"
        for name, value in secrets.values.items()
        for path, text in logs.items()
        for line in text.splitlines()
        if value in line
    ]

    assert suite.log_path in logs
    assert "atlas.access" in logs[suite.log_path], "the request log is missing"
    assert " DEBUG " in logs[suite.log_path], "the suite did not log at debug level"
    assert not leaks, "secrets in the logs:\n" + "\n".join(leaks)
