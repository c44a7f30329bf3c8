"""create login failures

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_failures',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('login_hash', sa.String(length=64), nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index('ix_login_failures_client_address_failed_at', 'login_failures', ['client_address', 'failed_at'], unique=False)
    op.create_index('ix_login_failures_failed_at', 'login_failures', ['failed_at'], unique=False)
    op.create_index('ix_login_failures_login_hash_failed_at', 'login_failures', ['login_hash', 'failed_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_login_failures_login_hash_failed_at', table_name='login_failures')
    op.drop_index('ix_login_failures_failed_at', table_name='login_failures')
    op.drop_index('ix_login_failures_client_address_failed_at', table_name='login_failures')
    op.drop_table('login_failures')
