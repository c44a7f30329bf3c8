"""Turn stored rows into the objects the Vagrant Cloud API returns.

The field sets match Vagrant Cloud's exactly: ruby-vagrant-cloud rejects
unknown keys in some responses and decides that an object exists from
``created_at``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from markdown_it import MarkdownIt

from services.toolkit.threads import run_in_thread

from .models import Account, Box, Provider, Version, VersionStatus

# Raw HTML in descriptions is escaped, not passed through, so a description
# cannot inject script into pages that show it.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


def timestamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_markdown(text: str | None) -> str:
    return _markdown.render(text) if text else ""


@dataclass(frozen=True)
class Description:
    """A Markdown description and its HTML, rendered once, when it is written."""

    markdown: str | None
    html: str | None

    @classmethod
    def render(cls, text: str | None) -> Description:
        """Render ``text`` on a thread, where the interpreter keeps switching to other requests.

        Rendering 64 KiB of Markdown took up to 0.7 s in a measurement
        (markdown-it-py 4, many brackets). Callers render before they lock
        the box, so that other requests on it do not wait for this.
        """
        return cls(text, run_in_thread(render_markdown, text) if text else None)

    def set_on(self, item: Box | Version) -> None:
        item.description = self.markdown
        item.description_html = self.html


def description_html(item: Box | Version) -> str:
    """Return the description of a box or version as HTML, rendered when it was written."""
    if item.description_html is None and item.description:
        # Written by SQL around the data service, so rendered now.
        return render_markdown(item.description)
    return item.description_html or ""


def version_key(version: str) -> tuple[tuple[int, ...], int, str]:
    """Sort key that orders versions as Vagrant does: numerically, pre-releases first."""
    number, _, pre = version.partition("-")
    parts = tuple(int(part) for part in re.findall(r"\d+", number))
    return (parts, 0 if pre else 1, pre)


class Urls:
    """Public URLs of API objects, built from the gateway's public URL."""

    def __init__(self, public_url: str) -> None:
        self.base = public_url.rstrip("/")

    def version_path(self, box: Box, version: Version) -> str:
        return (
            f"{self.base}/api/v1/box/{quote(box.account.username)}/{quote(box.name)}"
            f"/version/{quote(version.version)}"
        )

    def download(self, box: Box, version: Version, provider: Provider) -> str:
        return (
            f"{self.base}/{quote(box.account.username)}/boxes/{quote(box.name)}"
            f"/versions/{quote(version.version)}/providers/{quote(provider.name)}"
            f"/{quote(provider.architecture)}/vagrant.box"
        )


def provider_dict(urls: Urls, box: Box, version: Version, provider: Provider) -> dict[str, Any]:
    hosted = provider.original_url is None
    checksum_type, checksum = provider.served_checksum
    return {
        "name": provider.name,
        "architecture": provider.architecture,
        "default_architecture": provider.default_architecture,
        "hosted": hosted,
        "hosted_token": None,
        "original_url": provider.original_url,
        "download_url": urls.download(box, version, provider) if provider.served else None,
        "checksum": checksum,
        "checksum_type": checksum_type,
        "created_at": timestamp(provider.created_at),
        "updated_at": timestamp(provider.updated_at),
    }


def version_dict(urls: Urls, box: Box, version: Version) -> dict[str, Any]:
    path = urls.version_path(box, version)
    return {
        "version": version.version,
        "number": version.version,
        "status": version.status.value,
        "description_html": description_html(version),
        "description_markdown": version.description or "",
        "release_url": f"{path}/release",
        "revoke_url": f"{path}/revoke",
        "providers": [
            provider_dict(urls, box, version, provider)
            for provider in sorted(version.providers, key=lambda p: (p.name, p.architecture))
        ],
        "created_at": timestamp(version.created_at),
        "updated_at": timestamp(version.updated_at),
    }


def sorted_versions(box: Box) -> list[Version]:
    return sorted(box.versions, key=lambda v: version_key(v.version), reverse=True)


def current_version(box: Box) -> Version | None:
    active = [v for v in sorted_versions(box) if v.status == VersionStatus.ACTIVE]
    return active[0] if active else None


def box_dict(
    urls: Urls, box: Box, with_versions: bool = True, with_unreleased: bool = True
) -> dict[str, Any]:
    """Build the Vagrant Cloud box object.

    Search results and account listings leave out ``versions``;
    ``with_unreleased=False`` hides unreleased versions from readers who
    hold no role on the box's account.
    """
    current = current_version(box)
    result: dict[str, Any] = {
        "tag": f"{box.account.username}/{box.name}",
        "name": box.name,
        "username": box.account.username,
        "short_description": box.short_description or "",
        "description_markdown": box.description or "",
        "description_html": description_html(box),
        "private": box.private,
        "downloads": box.downloads,
        "created_at": timestamp(box.created_at),
        "updated_at": timestamp(box.updated_at),
        "current_version": version_dict(urls, box, current) if current else None,
    }
    if with_versions:
        result["versions"] = [
            version_dict(urls, box, v)
            for v in sorted_versions(box)
            if with_unreleased or v.status != VersionStatus.UNRELEASED
        ]
    return result


def account_dict(urls: Urls, account: Account, boxes: list[Box]) -> dict[str, Any]:
    """Build a user or organization with its boxes.

    The boxes leave out ``versions``: ruby-vagrant-cloud loads them on demand
    from the box itself, and shows every version twice when both carry them.
    """
    return {
        "username": account.username,
        "avatar_url": None,
        "profile_html": render_markdown(account.profile_markdown),
        "profile_markdown": account.profile_markdown or "",
        "boxes": [box_dict(urls, box, with_versions=False) for box in boxes],
    }


def downloads_dict(box: Box, with_unreleased: bool) -> dict[str, Any]:
    """Build the download counts of a box and of each of its providers."""
    return {
        "tag": f"{box.account.username}/{box.name}",
        "downloads": box.downloads,
        "versions": [
            {
                "version": version.version,
                "status": version.status.value,
                "downloads": sum(p.downloads for p in version.providers),
                "providers": [
                    {"name": p.name, "architecture": p.architecture, "downloads": p.downloads}
                    for p in sorted(version.providers, key=lambda p: (p.name, p.architecture))
                ],
            }
            for version in sorted_versions(box)
            if with_unreleased or version.status != VersionStatus.UNRELEASED
        ],
    }


def _metadata_provider(urls: Urls, box: Box, version: Version, provider: Provider) -> dict:
    checksum_type, checksum = provider.served_checksum
    return {
        "name": provider.name,
        "url": provider.original_url or urls.download(box, version, provider),
        "checksum": checksum,
        "checksum_type": checksum_type,
        "architecture": provider.architecture,
        "default_architecture": provider.default_architecture,
    }


def metadata_dict(urls: Urls, box: Box) -> dict[str, Any]:
    """Build the box catalog that ``vagrant box add`` reads: released versions only."""
    versions = []
    for version in sorted_versions(box):
        if version.status != VersionStatus.ACTIVE:
            continue
        providers = [
            _metadata_provider(urls, box, version, p)
            for p in sorted(version.providers, key=lambda p: (p.name, p.architecture))
            if p.served
        ]
        if providers:
            versions.append(
                {
                    "version": version.version,
                    "status": version.status.value,
                    "description_html": description_html(version),
                    "description_markdown": version.description or "",
                    "providers": providers,
                }
            )
    return {
        "name": f"{box.account.username}/{box.name}",
        "description": box.short_description or "",
        "short_description": box.short_description or "",
        "versions": versions,
    }
