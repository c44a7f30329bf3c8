"""webhooks and box imports

Adds the webhooks table, and to upload_targets the box.import job that
uploads through a target and the checksum declared for that upload.

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('box_id', sa.Integer(), nullable=True),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('events', postgresql.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('secret_sealed', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_webhooks_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['box_id'], ['boxes.id'], name=op.f('fk_webhooks_box_id_boxes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhooks'))
    )
    op.create_index(op.f('ix_webhooks_account_id'), 'webhooks', ['account_id'], unique=False)
    op.create_index(op.f('ix_webhooks_box_id'), 'webhooks', ['box_id'], unique=False)
    op.add_column('upload_targets', sa.Column('job_id', sa.BigInteger(), nullable=True))
    op.add_column('upload_targets', sa.Column('checksum', sa.String(length=128), nullable=True))
    op.add_column('upload_targets', sa.Column('checksum_type', sa.String(length=16), nullable=True))
    op.create_index(op.f('ix_upload_targets_job_id'), 'upload_targets', ['job_id'], unique=False)
    op.create_foreign_key(op.f('fk_upload_targets_job_id_jobs'), 'upload_targets', 'jobs', ['job_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    op.drop_constraint(op.f('fk_upload_targets_job_id_jobs'), 'upload_targets', type_='foreignkey')
    op.drop_index(op.f('ix_upload_targets_job_id'), table_name='upload_targets')
    op.drop_column('upload_targets', 'checksum_type')
    op.drop_column('upload_targets', 'checksum')
    op.drop_column('upload_targets', 'job_id')
    op.drop_index(op.f('ix_webhooks_box_id'), table_name='webhooks')
    op.drop_index(op.f('ix_webhooks_account_id'), table_name='webhooks')
    op.drop_table('webhooks')
