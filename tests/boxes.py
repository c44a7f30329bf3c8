"""Real .box files for tests: gzipped tar archives as Vagrant expects them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile


def build_box(
    provider: str = "libvirt",
    architecture: str | None = None,
    disk_bytes: int = 65536,
    metadata: dict | None = None,
) -> bytes:
    """Return a box with ``metadata.json``, a ``Vagrantfile`` and a random disk file."""
    fields = {"provider": provider, "format": "qcow2", "virtual_size": 1}
    if architecture:
        fields["architecture"] = architecture
    if metadata is not None:
        fields = metadata
    members = {
        "metadata.json": json.dumps(fields).encode(),
        "Vagrantfile": b'Vagrant.configure("2") do |config|\nend\n',
        "box.img": os.urandom(disk_bytes),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
