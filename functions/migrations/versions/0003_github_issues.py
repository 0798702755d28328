"""Add github_issues and github_comments, which make GitHub issue and comment writes idempotent.

Revision ID: 0003_github
Revises: 0002_slack
"""

import sqlalchemy as sa
from alembic import op

revision = '0003_github'
down_revision = '0002_slack'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('github_issues',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.BigInteger(), nullable=False),
    sa.Column('episode_id', sa.BigInteger(), nullable=False),
    sa.Column('repository', sa.Text(), nullable=False),
    sa.Column('marker', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('number', sa.Integer(), nullable=True),
    sa.Column('html_url', sa.Text(), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_entry_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'open', 'closed')", name='github_issues_state'),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('episode_id')
    )
    op.create_index('github_issues_incident_id_idx', 'github_issues', ['incident_id', 'episode_id'], unique=False)
    op.create_table('github_comments',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('entry_id', sa.BigInteger(), nullable=False),
    sa.Column('issue_id', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('comment_id', sa.BigInteger(), nullable=True),
    sa.Column('html_url', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("state IN ('pending', 'posted')", name='github_comments_state'),
    sa.ForeignKeyConstraint(['entry_id'], ['timeline_entries.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['issue_id'], ['github_issues.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('entry_id')
    )
    op.create_index(op.f('ix_github_comments_issue_id'), 'github_comments', ['issue_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_github_comments_issue_id'), table_name='github_comments')
    op.drop_table('github_comments')
    op.drop_index('github_issues_incident_id_idx', table_name='github_issues')
    op.drop_table('github_issues')
