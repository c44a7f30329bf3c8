"""upload target issuer

Adds to upload_targets the user who requested the target, whose role is
checked again when the file arrives.

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('upload_targets', sa.Column('issued_by', sa.Integer(), nullable=True))
    op.create_foreign_key(op.f('fk_upload_targets_issued_by_accounts'), 'upload_targets', 'accounts', ['issued_by'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    op.drop_constraint(op.f('fk_upload_targets_issued_by_accounts'), 'upload_targets', type_='foreignkey')
    op.drop_column('upload_targets', 'issued_by')
