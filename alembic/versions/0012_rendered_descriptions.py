"""rendered descriptions

Adds description_html to boxes and versions: the Markdown description
rendered when it is written, and renders the descriptions stored so far.

Revision ID: 0012
Revises: 0011
"""

from alembic import op
import sqlalchemy as sa
from markdown_it import MarkdownIt

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# The renderer's settings as the data service uses them: raw HTML is escaped.
RENDERER = MarkdownIt("commonmark", {"html": False, "linkify": False})


def upgrade() -> None:
    connection = op.get_bind()
    for table in ('boxes', 'versions'):
        op.add_column(table, sa.Column('description_html', sa.Text(), nullable=True))
        rows = connection.execute(
            sa.text(f"SELECT id, description FROM {table} WHERE description IS NOT NULL AND description <> ''")
        ).all()
        for row_id, description in rows:
            connection.execute(
                sa.text(f"UPDATE {table} SET description_html = :html WHERE id = :id"),
                {"html": RENDERER.render(description), "id": row_id},
            )


def downgrade() -> None:
    op.drop_column('versions', 'description_html')
    op.drop_column('boxes', 'description_html')
