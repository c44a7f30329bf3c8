"""inspect providers' box files

Adds providers.inspection. Hosted files stored before inspection existed
get a pending box.inspect job each, so they are served again once verified.

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

INSPECTION_STATE = postgresql.ENUM('pending', 'verified', 'rejected', name='inspection_state')


def upgrade() -> None:
    INSPECTION_STATE.create(op.get_bind())
    op.add_column('providers', sa.Column('inspection', INSPECTION_STATE, nullable=True))
    op.execute(
        """
        UPDATE providers SET inspection = 'pending'
        WHERE state = 'uploaded' AND artifact_sha256 IS NOT NULL AND original_url IS NULL
        """
    )
    op.execute(
        """
        INSERT INTO jobs (kind, payload, state, attempt, max_attempts, account_id, box_id,
                          created_at, updated_at)
        SELECT 'box.inspect',
               jsonb_build_object('provider_id', p.id, 'sha256', p.artifact_sha256),
               'pending', 0, 5, b.account_id, b.id, now(), now()
        FROM providers p
        JOIN versions v ON v.id = p.version_id
        JOIN boxes b ON b.id = v.box_id
        WHERE p.inspection = 'pending'
        ORDER BY p.id
        """
    )


def downgrade() -> None:
    op.execute("DELETE FROM jobs WHERE kind = 'box.inspect'")
    op.drop_column('providers', 'inspection')
    INSPECTION_STATE.drop(op.get_bind())
