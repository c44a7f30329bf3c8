"""index box search and organization lookups

Revision ID: 0003
Revises: 0001

Box search matches substrings with pg_trgm's GIN indexes, which PostgreSQL
lets a database owner create since version 13 (pg_trgm is a trusted
extension). The other indexes serve the sort orders of search, the
"has a released version" filter and finding a user's organizations.
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None

TRIGRAM_INDEXES = {
    'ix_accounts_username_trgm': ('accounts', 'lower(username)'),
    'ix_boxes_name_trgm': ('boxes', 'lower(name)'),
    'ix_boxes_short_description_trgm': ('boxes', 'lower(short_description)'),
}


def upgrade() -> None:
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    for name, (table, expression) in TRIGRAM_INDEXES.items():
        op.execute(f'CREATE INDEX {name} ON {table} USING gin (({expression}) gin_trgm_ops)')
    op.create_index('ix_boxes_created_at', 'boxes', ['created_at', 'id'], unique=False)
    op.create_index('ix_boxes_downloads', 'boxes', ['downloads', 'id'], unique=False)
    op.create_index('ix_boxes_updated_at', 'boxes', ['updated_at', 'id'], unique=False)
    op.create_index('ix_memberships_user_id', 'memberships', ['user_id'], unique=False)
    op.create_index('ix_versions_box_id_active', 'versions', ['box_id'], unique=False, postgresql_where=sa.text("status = 'active'"))


def downgrade() -> None:
    op.drop_index('ix_versions_box_id_active', table_name='versions', postgresql_where=sa.text("status = 'active'"))
    op.drop_index('ix_memberships_user_id', table_name='memberships')
    op.drop_index('ix_boxes_updated_at', table_name='boxes')
    op.drop_index('ix_boxes_downloads', table_name='boxes')
    op.drop_index('ix_boxes_created_at', table_name='boxes')
    for name in TRIGRAM_INDEXES:
        op.drop_index(name)
    op.execute('DROP EXTENSION IF EXISTS pg_trgm')
