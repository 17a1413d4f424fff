"""watches and alerts: saved queries, one alert per (watch, article), scanned articles

Revision ID: 0004_watches_alerts
Revises: 0003_search_language
Create Date: 2026-11-30 15:20:00

``uq_alerts_watch_article`` is the idempotency key of alerts: a redelivered, re-enriched or
restarted article never alerts twice for one watch. ``ix_alerts_pending`` indexes only the
alerts still to publish or deliver, so the alerter's restart sweep stays cheap;
``ix_entities_merged_into`` finds the entities merged into one (few are).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004_watches_alerts'
down_revision: str | None = '0003_search_language'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'watches',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('query', sa.Text(), nullable=False),
        sa.Column('query_input', sa.Text(), nullable=False),
        sa.Column('webhook_url', sa.Text(), nullable=True),
        sa.Column('webhook_secret', sa.Text(), nullable=True,
                  comment='Standard Webhooks signing secret (whsec_<base64>)'),
        sa.Column('paused', sa.Boolean(), server_default='false', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('last_status', sa.SmallInteger(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('consecutive_failures', sa.Integer(), server_default='0', nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_watches')),
        sa.UniqueConstraint('name', name=op.f('uq_watches_name')),
    )
    op.create_table(
        'alerts',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('watch_id', sa.BigInteger(), nullable=False),
        sa.Column('article_id', sa.BigInteger(), nullable=False),
        sa.Column('matched_terms', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
        sa.Column('matched_entities', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True,
                  comment='When it was produced to news.alerts.v1 (NULL: not yet)'),
        sa.Column('delivery', sa.String(length=16), server_default='none', nullable=False,
                  comment='none|pending|delivered|failed|gone'),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_status', sa.SmallInteger(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['article_id'], ['articles.id'],
                                name=op.f('fk_alerts_article_id_articles'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['watch_id'], ['watches.id'],
                                name=op.f('fk_alerts_watch_id_watches'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
        sa.UniqueConstraint('watch_id', 'article_id', name='uq_alerts_watch_article'),
    )
    op.create_index('ix_alerts_article_id', 'alerts', ['article_id'], unique=False)
    op.create_index('ix_alerts_pending', 'alerts', ['id'], unique=False,
                    postgresql_where=sa.text("delivery = 'pending' OR published_at IS NULL"))
    op.create_table(
        'alert_scans',
        sa.Column('article_id', sa.BigInteger(), nullable=False),
        sa.Column('enriched_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('scanned_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('article_id', name=op.f('pk_alert_scans')),
    )
    # entities merged into a given one (a watch saved before a merge keeps matching)
    op.create_index('ix_entities_merged_into', 'entities', ['merged_into'], unique=False,
                    postgresql_where=sa.text('merged_into IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_entities_merged_into', table_name='entities',
                  postgresql_where=sa.text('merged_into IS NOT NULL'))
    op.drop_table('alert_scans')
    op.drop_index('ix_alerts_pending', table_name='alerts',
                  postgresql_where=sa.text("delivery = 'pending' OR published_at IS NULL"))
    op.drop_index('ix_alerts_article_id', table_name='alerts')
    op.drop_table('alerts')
    op.drop_table('watches')
