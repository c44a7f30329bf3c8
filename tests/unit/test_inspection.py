"""box.inspect's reading of .box files, on real archives."""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import tarfile

import pytest

from services.workers.inspection import Expectation, inspect
from tests.boxes import build_box, sha256


def chunks(content: bytes, size: int = 1000) -> list[bytes]:
    return [content[i : i + size] for i in range(0, len(content), size)]


def expect(content: bytes, **fields: str) -> Expectation:
    values = {"provider": "libvirt", "architecture": "amd64", "sha256": sha256(content)}
    values.update(fields)
    return Expectation(**values)  # type: ignore[arg-type]


def tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def test_matching_box_is_verified() -> None:
    box = build_box("libvirt", disk_bytes=300_000)

    verdict = inspect(chunks(box), expect(box))

    assert verdict.verified
    assert verdict.reason is None


def test_box_for_another_provider_is_rejected() -> None:
    box = build_box("virtualbox")

    verdict = inspect(chunks(box), expect(box))

    assert not verdict.verified
    assert verdict.reason == (
        "metadata.json names provider 'virtualbox', but the box was uploaded for 'libvirt'"
    )


def test_box_for_another_architecture_is_rejected() -> None:
    box = build_box("libvirt", architecture="arm64")

    verdict = inspect(chunks(box), expect(box))

    assert not verdict.verified
    assert "architecture 'arm64'" in (verdict.reason or "")


def test_box_without_architecture_matches_any() -> None:
    box = build_box("libvirt", architecture=None)

    assert inspect(chunks(box), expect(box, architecture="arm64")).verified


def test_uncompressed_bzip2_and_xz_boxes_are_read() -> None:
    members = {"./metadata.json": b'{"provider": "libvirt"}', "box.img": b"x" * 5000}
    for content in (tar(members), bz2.compress(tar(members)), lzma.compress(tar(members))):
        assert inspect(chunks(content), expect(content)).verified


def test_box_without_metadata_is_rejected() -> None:
    content = tar({"box.img": b"disk"})

    verdict = inspect(chunks(content), expect(content))

    assert verdict.reason == "the box has no metadata.json"


def test_metadata_that_is_not_json_is_rejected() -> None:
    content = tar({"metadata.json": b"provider: libvirt"})

    verdict = inspect(chunks(content), expect(content))

    assert "metadata.json in the box is not valid JSON" in (verdict.reason or "")


def test_file_that_is_not_an_archive_is_rejected() -> None:
    content = b"this is not a box" * 100

    verdict = inspect(chunks(content), expect(content))

    assert "not a tar archive" in (verdict.reason or "")


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_truncated_box_is_rejected(mode: str) -> None:
    members = {"metadata.json": b'{"provider": "libvirt"}', "box.img": b"x" * 100_000}
    whole = tar(members, mode)
    content = whole[: len(whole) // 2]

    verdict = inspect(chunks(content), expect(content))

    assert not verdict.verified
    assert "not a tar archive that Vagrant can read" in (verdict.reason or "")


def test_sha256_mismatch_is_rejected() -> None:
    box = build_box()

    verdict = inspect(chunks(box), expect(box, sha256="0" * 64))

    assert verdict.reason == "the stored file does not match its sha256; upload it again"


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha384", "sha512"])
def test_declared_checksum_is_verified(algorithm: str) -> None:
    box = build_box()
    good = hashlib.new(algorithm, box).hexdigest()

    assert inspect(chunks(box), expect(box, checksum_type=algorithm, checksum=good)).verified
    verdict = inspect(chunks(box), expect(box, checksum_type=algorithm, checksum="ab" * 8))
    assert verdict.reason == f"the file's {algorithm} does not match the declared checksum"
