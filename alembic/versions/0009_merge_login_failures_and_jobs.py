"""merge the login failures and jobs migrations

Both 0007 and 0008 follow 0006. Joining them here, rather than moving one
after the other, keeps every database upgradable, whichever of the two it
already has.

Revision ID: 0009
Revises: 0007, 0008
"""

revision = '0009'
down_revision = ('0007', '0008')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
