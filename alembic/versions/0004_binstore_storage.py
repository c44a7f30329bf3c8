"""track orphaned artifacts and resumable upload sizes

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('artifacts', sa.Column('orphaned_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('upload_targets', sa.Column('size', sa.BigInteger(), nullable=True))
    op.create_index(op.f('ix_providers_artifact_sha256'), 'providers', ['artifact_sha256'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_providers_artifact_sha256'), table_name='providers')
    op.drop_column('upload_targets', 'size')
    op.drop_column('artifacts', 'orphaned_at')
