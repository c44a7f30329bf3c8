"""create jobs

Revision ID: 0008
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None

# Created with the jobs table; the transitions table reuses it.
JOB_STATE = postgresql.ENUM(name='job_state', create_type=False)


def upgrade() -> None:
    op.create_table('jobs',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('state', sa.Enum('pending', 'queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled', name='job_state'), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('run_after', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('worker', sa.String(length=128), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('box_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('attempt >= 0 AND max_attempts >= 1', name=op.f('ck_jobs_attempts_valid')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_jobs_account_id_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['box_id'], ['boxes.id'], name=op.f('fk_jobs_box_id_boxes'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    op.create_index(op.f('ix_jobs_account_id'), 'jobs', ['account_id'], unique=False)
    op.create_index(op.f('ix_jobs_box_id'), 'jobs', ['box_id'], unique=False)
    op.create_index('ix_jobs_kind_state', 'jobs', ['kind', 'state'], unique=False)
    op.create_index('ix_jobs_state_id', 'jobs', ['state', 'id'], unique=False)
    op.create_table('job_transitions',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('job_id', sa.BigInteger(), nullable=False),
    sa.Column('from_state', JOB_STATE, nullable=False),
    sa.Column('to_state', JOB_STATE, nullable=False),
    sa.Column('trigger', sa.String(length=32), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_transitions_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_transitions'))
    )
    op.create_index(op.f('ix_job_transitions_job_id'), 'job_transitions', ['job_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_job_transitions_job_id'), table_name='job_transitions')
    op.drop_table('job_transitions')
    op.drop_index('ix_jobs_state_id', table_name='jobs')
    op.drop_index('ix_jobs_kind_state', table_name='jobs')
    op.drop_index(op.f('ix_jobs_box_id'), table_name='jobs')
    op.drop_index(op.f('ix_jobs_account_id'), table_name='jobs')
    op.drop_table('jobs')
    op.execute('DROP TYPE job_state')
