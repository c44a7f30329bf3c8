"""merge the login failures and jobs migrations

0007 (login failures) and 0008 (jobs, followed by 0009) both follow 0006.
Joining the two branches here, rather than moving one after the other,
keeps every database upgradable, whichever branch it already has.

Revision ID: 0010
Revises: 0007, 0009
"""

revision = '0010'
down_revision = ('0007', '0009')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
