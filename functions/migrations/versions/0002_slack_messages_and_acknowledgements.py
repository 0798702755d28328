"""Add the Slack message, thread post and delivery tables, and who acknowledged or resolved an episode.

Revision ID: 0002_slack
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = '0002_slack'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('episodes', sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('episodes', sa.Column('acknowledged_by', sa.Text(), nullable=True))
    op.add_column('episodes', sa.Column('resolved_by', sa.Text(), nullable=True))

    op.create_table('slack_messages',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('incident_id', sa.BigInteger(), nullable=False),
    sa.Column('episode_id', sa.BigInteger(), nullable=False),
    sa.Column('channel', sa.Text(), nullable=False),
    sa.Column('ts', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('claimed_by', sa.Text(), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_entry_id', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('episode_id')
    )
    op.create_index(op.f('ix_slack_messages_incident_id'), 'slack_messages', ['incident_id'], unique=False)

    op.create_table('slack_thread_posts',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('entry_id', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('ts', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('claimed_by', sa.Text(), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['timeline_entries.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['slack_messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('entry_id')
    )
    op.create_index(op.f('ix_slack_thread_posts_message_id'), 'slack_thread_posts', ['message_id'], unique=False)

    op.create_table('slack_deliveries',
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('retry_num', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('slack_deliveries')
    op.drop_index(op.f('ix_slack_thread_posts_message_id'), table_name='slack_thread_posts')
    op.drop_table('slack_thread_posts')
    op.drop_index(op.f('ix_slack_messages_incident_id'), table_name='slack_messages')
    op.drop_table('slack_messages')
    op.drop_column('episodes', 'resolved_by')
    op.drop_column('episodes', 'acknowledged_at')
    op.drop_column('episodes', 'acknowledged_by')
