"""Pages for publishing: create a box, a version and a provider, upload, release, revoke.

Each form posts to the gateway, which calls the same data service methods
as the API. The box file itself goes from the browser to binstore.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from werkzeug.wrappers import Request, Response

from services.toolkit.crypto import UPLOAD_ERROR_PURPOSE, upload_error_subject, verify
from services.toolkit.errors import AtlasError

from ..web.base import PageBase, page
from ..web.security import Visitor
from ..web.templating import box_path

VERSION_PAGE = "/<username>/boxes/<name>/versions/<version>"
# Roles in an organization that may create its boxes, as the data service's access rules define.
MANAGER_ROLES = ("owner", "admin")
PROVIDER_PAGE = VERSION_PAGE + "/providers/<provider>/<architecture>"


def version_anchor(username: str, name: str, version: str) -> str:
    return f"{box_path(username, name)}#v-{quote(version)}"


def upload_page_path(username: str, name: str, version: str, provider: str, arch: str) -> str:
    return (
        f"{box_path(username, name)}/versions/{quote(version)}"
        f"/providers/{quote(provider)}/{quote(arch)}/upload"
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class PublishPageRoutes(PageBase):
    def box_owners(self, actor: dict) -> list[str]:
        """Return the accounts whose boxes ``actor`` may create: their own and managed ones."""
        memberships = self.data.list_organizations(actor)["organizations"]
        managed = [m["organization"] for m in memberships if m["role"] in MANAGER_ROLES]
        return [actor["username"], *managed]

    @page("GET", "/-/new")
    def new_box_form(self, request: Request, visitor: Visitor) -> Response:
        actor = self.require_visitor(request, visitor)
        values = {"username": request.args.get("owner") or actor["username"]}
        return self.render(
            request, visitor, "new_box.html", values=values, owners=self.box_owners(actor)
        )

    @page("POST", "/-/new")
    def submit_new_box(self, request: Request, visitor: Visitor) -> Response:
        actor = self.require_visitor(request, visitor)
        form = self.form(request, visitor)
        fields = {
            "username": form.get("username", "").strip(),
            "name": form.get("name", "").strip(),
            "short_description": form.get("short_description", ""),
            "description": form.get("description", ""),
            "is_private": form.get("private") == "on",
        }
        try:
            box = self.data.create_box(actor, fields)
        except AtlasError as exc:
            return self.render(
                request,
                visitor,
                "new_box.html",
                status=exc.status,
                error=str(exc),
                values=form.to_dict(),
                owners=self.box_owners(actor),
            )
        return self.redirect(visitor, box_path(box["username"], box["name"]))

    @page("POST", "/<username>/boxes/<name>/versions")
    def submit_version(
        self, request: Request, visitor: Visitor, username: str, name: str
    ) -> Response:
        actor = self.require_visitor(request, visitor)
        form = self.form(request, visitor)
        version = form.get("version", "").strip()
        fields = {"version": version, "description": form.get("description", "")}
        try:
            self.data.create_version(actor, username, name, fields)
        except AtlasError as exc:
            return self.render_box(
                request, visitor, username, name, exc.status, str(exc), form.to_dict()
            )
        return self.redirect(visitor, version_anchor(username, name, version))

    @page("POST", VERSION_PAGE + "/providers")
    def submit_provider(
        self, request: Request, visitor: Visitor, username: str, name: str, version: str
    ) -> Response:
        actor = self.require_visitor(request, visitor)
        form = self.form(request, visitor)
        fields = {
            "name": form.get("provider", "").strip(),
            "architecture": form.get("architecture", "").strip() or None,
            "checksum_type": form.get("checksum_type", "").strip() or None,
            "checksum": form.get("checksum", "").strip() or None,
        }
        try:
            provider = self.data.create_provider(actor, username, name, version, fields)
        except AtlasError as exc:
            return self.render_box(
                request, visitor, username, name, exc.status, str(exc), form.to_dict()
            )
        return self.redirect(
            visitor,
            upload_page_path(username, name, version, provider["name"], provider["architecture"]),
        )

    @page("GET", PROVIDER_PAGE + "/upload")
    def upload_page(
        self,
        request: Request,
        visitor: Visitor,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str,
    ) -> Response:
        actor = self.require_visitor(request, visitor)
        found = self.data.get_provider(actor, username, name, version, provider, architecture)
        context = {
            "username": username,
            "name": name,
            "version": version,
            "provider": found,
            "box_url": version_anchor(username, name, version),
        }
        page_path = upload_page_path(username, name, version, provider, architecture)
        if request.args.get("upload") == "done":
            return self.render(request, visitor, "upload.html", done=True, **context)

        target = self.data.create_upload_target(
            actor, username, name, version, provider, architecture, False
        )
        upload_url = self.upload_url(target["token"])
        return self.render(
            request,
            visitor,
            "upload.html",
            extra_origins=(_origin(upload_url),),
            done=False,
            expected=target,
            error=self._upload_error(request, page_path),
            upload_url=upload_url,
            next_url=self.public_url + page_path,
            **context,
        )

    def _upload_error(self, request: Request, page_path: str) -> str | None:
        """Return the error that binstore signed for an upload from the page at ``page_path``."""
        message = request.args.get("upload_error")
        signature = request.args.get("signature", "")
        if not message:
            return None
        subject = upload_error_subject(page_path, message)
        if verify(self.secret_key, UPLOAD_ERROR_PURPOSE, subject, signature):
            return f"The upload failed: {message}"
        return None

    @page("POST", VERSION_PAGE + "/release")
    def submit_release(
        self, request: Request, visitor: Visitor, username: str, name: str, version: str
    ) -> Response:
        return self._change_status("release_version", request, visitor, username, name, version)

    @page("POST", VERSION_PAGE + "/revoke")
    def submit_revoke(
        self, request: Request, visitor: Visitor, username: str, name: str, version: str
    ) -> Response:
        return self._change_status("revoke_version", request, visitor, username, name, version)

    def _change_status(
        self,
        method: str,
        request: Request,
        visitor: Visitor,
        username: str,
        name: str,
        version: str,
    ) -> Response:
        actor = self.require_visitor(request, visitor)
        self.form(request, visitor)
        try:
            getattr(self.data, method)(actor, username, name, version)
        except AtlasError as exc:
            return self.render_box(request, visitor, username, name, exc.status, str(exc))
        return self.redirect(visitor, version_anchor(username, name, version))
