"""undeclared checksums

Atlas used to store the sha256 of a provider's first file as the
provider's declared checksum when the publisher declared none, so a later
upload of another file was rejected. It now serves that sha256 without
storing it. This clears the checksums that equal the stored file's
sha256, which the rule made and which a publisher may also have declared:
either way the checksum served stays the same.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE providers SET checksum_type = NULL, checksum = NULL"
        " WHERE checksum_type = 'sha256' AND checksum = artifact_sha256"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE providers SET checksum_type = 'sha256', checksum = artifact_sha256"
        " WHERE checksum_type IS NULL AND artifact_sha256 IS NOT NULL"
    )
