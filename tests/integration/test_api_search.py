"""Box search through ``GET /api/v1/search`` and ``/api/v2/search``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Client, unique
from tests.publishing import api_publish, api_release
from tests.responses import BOX_FIELDS, RUBY_CLIENT_BOX_KEYS, assert_error


def search(client: Client, api: str = "v1", **parameters: Any) -> list[dict]:
    response = client.get(f"/api/{api}/search", params=parameters)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"boxes"}
    return list(body["boxes"])


def tags(boxes: list[dict]) -> list[str]:
    return [box["tag"] for box in boxes]


def test_search_result_has_only_keys_ruby_client_accepts(user: Client, anonymous: Client) -> None:
    tag = api_publish(user, user.username, short_description="Searchable box")

    found = search(anonymous, q=tag.split("/")[1])

    assert tags(found) == [tag]
    assert set(found[0]) <= RUBY_CLIENT_BOX_KEYS
    assert set(found[0]) == BOX_FIELDS - {"versions"}
    assert found[0]["current_version"]["version"] == "1.0.0"
    assert found[0]["current_version"]["providers"][0]["name"] == "libvirt"


def test_search_matches_name_description_and_owner(user: Client, anonymous: Client) -> None:
    word = unique("word")
    by_name = api_publish(user, user.username, name=f"{word}-box")
    by_description = api_publish(user, user.username, short_description=f"A {word.upper()} box")
    other = api_publish(user, user.username)

    by_word = tags(search(anonymous, q=word))
    by_owner = tags(search(anonymous, q=user.username, limit=100))

    assert sorted(by_word) == sorted([by_name, by_description])
    assert sorted(by_owner) == sorted([by_name, by_description, other])


def test_search_by_owner_and_name(user: Client, make_user: Any, anonymous: Client) -> None:
    other = make_user()
    name = unique("shared")
    mine = api_publish(user, user.username, name=name)
    api_publish(other, other.username, name=name)

    found = tags(search(anonymous, q=f"{user.username}/{name}"))

    assert found == [mine]


def test_search_treats_like_wildcards_literally(user: Client, anonymous: Client) -> None:
    api_publish(user, user.username, short_description="plain")

    assert search(anonymous, q=f"{user.username}%") == []
    assert search(anonymous, q="_" * 20) == []


def test_search_leaves_out_boxes_without_released_version(user: Client, anonymous: Client) -> None:
    word = unique("draft")
    user.post("/api/v1/boxes", json={"username": user.username, "name": word})
    user.post(f"/api/v1/box/{user.username}/{word}/versions", json={"version": "1.0.0"})
    released = api_publish(user, user.username, name=f"{word}-released")

    assert tags(search(anonymous, q=word)) == [released]


def test_search_follows_release_revoke_and_delete(user: Client, anonymous: Client) -> None:
    tag = api_publish(user, user.username, versions=("1.0.0", "1.1.0"))
    name = tag.split("/")[1]
    box = f"/api/v1/box/{tag}"

    user.put(f"{box}/version/1.1.0/revoke")
    after_one_revoke = tags(search(anonymous, q=name))
    user.put(f"{box}/version/1.0.0/revoke")
    after_both_revoked = tags(search(anonymous, q=name))
    api_release(user, tag, "2.0.0")
    after_new_release = tags(search(anonymous, q=name))
    user.delete(f"{box}/version/2.0.0")
    after_delete = tags(search(anonymous, q=name))

    assert after_one_revoke == [tag]
    assert after_both_revoked == []
    assert after_new_release == [tag]
    assert after_delete == []


def test_search_filters_by_provider_and_architecture(user: Client, anonymous: Client) -> None:
    word = unique("prov")
    libvirt = api_publish(user, user.username, name=f"{word}-a")
    virtualbox = api_publish(user, user.username, name=f"{word}-b", provider="virtualbox")
    arm = f"{user.username}/{word}-c"
    user.post("/api/v2/boxes", json={"username": user.username, "name": f"{word}-c"})
    user.post(f"/api/v2/box/{arm}/versions", json={"version": {"version": "1.0"}})
    user.post(
        f"/api/v2/box/{arm}/version/1.0/providers",
        json={
            "provider": {
                "name": "libvirt",
                "architecture": "arm64",
                "url": "https://boxes.example/arm.box",
            }
        },
    )
    user.put(f"/api/v2/box/{arm}/version/1.0/release")

    assert sorted(tags(search(anonymous, q=word, provider="libvirt"))) == sorted([libvirt, arm])
    assert tags(search(anonymous, q=word, provider="virtualbox")) == [virtualbox]
    assert tags(search(anonymous, "v2", q=word, architecture="arm64")) == [arm]
    assert tags(search(anonymous, "v2", q=word, provider="virtualbox", architecture="arm64")) == []


def test_search_sorts_and_pages(user: Client, anonymous: Client) -> None:
    word = unique("sort")
    first, second, third = (api_publish(user, user.username, name=f"{word}-{i}") for i in range(3))
    for tag, count in ((first, 2), (second, 0), (third, 1)):
        namespace, name = tag.split("/")
        for _ in range(count):
            user.get(
                f"/{namespace}/boxes/{name}/versions/1.0.0/providers/libvirt/unknown/vagrant.box",
                allow_redirects=False,
            )

    by_downloads = tags(search(anonymous, q=word))
    by_downloads_asc = tags(search(anonymous, q=word, order="asc"))
    by_created = tags(search(anonymous, q=word, sort="created", order="asc"))
    by_updated = tags(search(anonymous, q=word, sort="updated"))
    pages = [tags(search(anonymous, q=word, sort="created", limit=2, page=n)) for n in (1, 2, 3)]

    assert by_downloads == [first, third, second]
    assert by_downloads_asc == [second, third, first]
    assert by_created == [first, second, third]
    assert by_updated == [third, second, first]
    assert pages == [[third, second], [first], []]


def test_search_shows_private_boxes_to_their_readers(
    user: Client, make_user: Any, anonymous: Client
) -> None:
    word = unique("secret")
    private = api_publish(user, user.username, name=word, private=True)
    stranger = make_user()

    assert tags(search(user, q=word)) == [private]
    assert search(stranger, q=word) == []
    assert search(anonymous, q=word) == []


def test_search_accepts_token_parameter(user: Client, anonymous: Client) -> None:
    tag = api_publish(user, user.username)

    found = search(anonymous, q=tag.split("/")[1], access_token=user.token)

    assert tags(found) == [tag]


def test_search_with_unknown_parameter_is_400(anonymous: Client) -> None:
    response = anonymous.get("/api/v1/search", params={"q": "box", "color": "blue"})

    assert_error(response, 400, "unknown query parameter 'color'; this route accepts")


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"limit": "101"}, "limit: Input should be less than or equal to 100"),
        ({"limit": "0"}, "limit: Input should be greater than or equal to 1"),
        ({"limit": "many"}, "limit: Input should be a valid integer"),
        ({"page": "0"}, "page: Input should be greater than or equal to 1"),
        ({"sort": "name"}, "sort: Input should be 'downloads', 'created' or 'updated'"),
        ({"order": "up"}, "order: Input should be 'desc' or 'asc'"),
        ({"provider": "Bad Provider"}, "provider: String should match pattern"),
        ({"q": "x" * 257}, "q: String should have at most 256 characters"),
    ],
)
def test_search_with_invalid_parameter_is_422(
    anonymous: Client, parameters: dict, message: str
) -> None:
    assert_error(anonymous.get("/api/v1/search", params=parameters), 422, message)


def test_nul_character_in_request_is_400(user: Client, anonymous: Client) -> None:
    in_query = anonymous.get("/api/v1/search", params={"q": "a\x00b"})
    in_path = anonymous.get("/api/v1/box/a%00b/c")
    in_body = user.post(
        "/api/v1/boxes", json={"username": user.username, "name": "nul", "description": "a\x00"}
    )

    assert_error(in_query, 400, "request URL contains a NUL character")
    assert_error(in_path, 400, "request URL contains a NUL character")
    assert_error(in_body, 400, "request body contains a NUL character")
