"""jobs, their history, webhooks, and inspected provider states

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

JOB_STATES = ('pending', 'queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')


def upgrade() -> None:
    # A new enum value cannot be used in the transaction that adds it.
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE provider_state ADD VALUE IF NOT EXISTS 'verified'")
        op.execute("ALTER TYPE provider_state ADD VALUE IF NOT EXISTS 'rejected'")
    # Files stored before inspection existed were served as they were; keep serving them.
    op.execute(
        "UPDATE providers SET state = 'verified' "
        "WHERE state = 'uploaded' AND artifact_sha256 IS NOT NULL"
    )

    job_state = postgresql.ENUM(*JOB_STATES, name='job_state', create_type=False)
    job_state.create(op.get_bind(), checkfirst=True)
    op.create_table('jobs',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('state', job_state, nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('run_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('worker', sa.String(length=128), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('box_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('attempt >= 0', name=op.f('ck_jobs_attempt_not_negative')),
    sa.CheckConstraint('max_attempts >= 1', name=op.f('ck_jobs_max_attempts_positive')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_jobs_account_id_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['box_id'], ['boxes.id'], name=op.f('fk_jobs_box_id_boxes'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    op.create_index('ix_jobs_state_run_after', 'jobs', ['state', 'run_after'], unique=False)
    op.create_index('ix_jobs_box_id_id', 'jobs', ['box_id', 'id'], unique=False)
    op.create_index('ix_jobs_account_id_id', 'jobs', ['account_id', 'id'], unique=False)
    op.create_index('ix_jobs_kind_id', 'jobs', ['kind', 'id'], unique=False)
    op.create_index('ix_jobs_running_lease', 'jobs', ['lease_expires_at'], unique=False, postgresql_where=sa.text("state = 'running'"))
    op.create_table('job_transitions',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('job_id', sa.BigInteger(), nullable=False),
    sa.Column('from_state', job_state, nullable=True),
    sa.Column('to_state', job_state, nullable=False),
    sa.Column('trigger', sa.String(length=32), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_transitions_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_transitions'))
    )
    op.create_index(op.f('ix_job_transitions_job_id'), 'job_transitions', ['job_id'], unique=False)
    op.create_table('webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('box_id', sa.Integer(), nullable=True),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('events', postgresql.ARRAY(sa.String(length=64)), nullable=False),
    sa.Column('description', sa.String(length=512), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('secret_encrypted', sa.String(length=256), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_webhooks_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['box_id'], ['boxes.id'], name=op.f('fk_webhooks_box_id_boxes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhooks'))
    )
    op.create_index('ix_webhooks_account_id_box_id', 'webhooks', ['account_id', 'box_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhooks_account_id_box_id', table_name='webhooks')
    op.drop_table('webhooks')
    op.drop_index(op.f('ix_job_transitions_job_id'), table_name='job_transitions')
    op.drop_table('job_transitions')
    op.drop_index('ix_jobs_running_lease', table_name='jobs', postgresql_where=sa.text("state = 'running'"))
    op.drop_index('ix_jobs_kind_id', table_name='jobs')
    op.drop_index('ix_jobs_account_id_id', table_name='jobs')
    op.drop_index('ix_jobs_box_id_id', table_name='jobs')
    op.drop_index('ix_jobs_state_run_after', table_name='jobs')
    op.drop_table('jobs')
    sa.Enum(name='job_state').drop(op.get_bind(), checkfirst=True)

    # PostgreSQL cannot drop enum values, so the type is rebuilt without them.
    # Verified files stay served; rejected ones count as missing.
    op.execute("ALTER TYPE provider_state RENAME TO provider_state_with_inspection")
    op.execute("CREATE TYPE provider_state AS ENUM ('pending', 'uploaded')")
    op.execute(
        "ALTER TABLE providers ALTER COLUMN state TYPE provider_state USING ("
        "CASE state::text WHEN 'verified' THEN 'uploaded' WHEN 'rejected' THEN 'pending' "
        "ELSE state::text END)::provider_state"
    )
    op.execute("DROP TYPE provider_state_with_inspection")
