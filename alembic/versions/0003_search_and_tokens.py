"""index box search and organization lookups

Revision ID: 0003
Revises: 0001

Box search matches substrings with pg_trgm's GIN indexes, which PostgreSQL
lets a database owner create since version 13 (pg_trgm is a trusted
extension). boxes.released, kept by a trigger on versions, lets search skip
boxes without a released version without joining versions. The other
indexes serve the sort orders of search and finding a user's organizations.
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

# Recomputes boxes.released for the box of each changed version. A box being
# deleted takes its versions along; the update then finds no row, which is fine.
RELEASED_FUNCTION = """
CREATE FUNCTION boxes_refresh_released() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE boxes SET released = EXISTS (
            SELECT 1 FROM versions WHERE box_id = OLD.box_id AND status = 'active'
        ) WHERE id = OLD.box_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE boxes SET released = EXISTS (
            SELECT 1 FROM versions WHERE box_id = NEW.box_id AND status = 'active'
        ) WHERE id = NEW.box_id;
    END IF;
    RETURN NULL;
END
$$
"""
RELEASED_TRIGGER = """
CREATE TRIGGER versions_refresh_box_released
AFTER INSERT OR DELETE OR UPDATE OF status, box_id ON versions
FOR EACH ROW EXECUTE FUNCTION boxes_refresh_released()
"""


def upgrade() -> None:
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    for name, (table, expression) in TRIGRAM_INDEXES.items():
        op.execute(f'CREATE INDEX {name} ON {table} USING gin (({expression}) gin_trgm_ops)')
    op.create_index('ix_boxes_created_at', 'boxes', ['created_at', 'id'], unique=False)
    op.create_index('ix_boxes_downloads', 'boxes', ['downloads', 'id'], unique=False)
    op.create_index('ix_boxes_updated_at', 'boxes', ['updated_at', 'id'], unique=False)
    op.create_index('ix_memberships_user_id', 'memberships', ['user_id'], unique=False)
    op.create_index('ix_versions_box_id_active', 'versions', ['box_id'], unique=False, postgresql_where=sa.text("status = 'active'"))

    op.add_column('boxes', sa.Column('released', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(
        "UPDATE boxes SET released = EXISTS ("
        "SELECT 1 FROM versions WHERE box_id = boxes.id AND status = 'active')"
    )
    op.execute(RELEASED_FUNCTION)
    op.execute(RELEASED_TRIGGER)


def downgrade() -> None:
    op.execute('DROP TRIGGER versions_refresh_box_released ON versions')
    op.execute('DROP FUNCTION boxes_refresh_released()')
    op.drop_column('boxes', 'released')

    op.drop_index('ix_versions_box_id_active', table_name='versions', postgresql_where=sa.text("status = 'active'"))
    op.drop_index('ix_memberships_user_id', table_name='memberships')
    op.drop_index('ix_boxes_updated_at', table_name='boxes')
    op.drop_index('ix_boxes_downloads', table_name='boxes')
    op.drop_index('ix_boxes_created_at', table_name='boxes')
    for name in TRIGRAM_INDEXES:
        op.drop_index(name)
    op.execute('DROP EXTENSION IF EXISTS pg_trgm')
