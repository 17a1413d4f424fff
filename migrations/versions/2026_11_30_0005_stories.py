"""stories: one row per incident, its articles with their roles, and the candidate index

Revision ID: 0005_stories
Revises: 0004_watches_alerts
Create Date: 2026-11-30 15:30:00

``stories`` holds each story's summary and assignment state (a merged story stays, with
``merged_into``); ``story_articles`` gives every stored article its story and role (the
article id is the natural key: one story per article); ``story_keys`` files live stories
under their entity keys with their coverage span, the index candidates come from.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0005_stories'
down_revision: str | None = '0004_watches_alerts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('stories',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('headline', sa.Text(), nullable=True),
    sa.Column('headline_article_id', sa.BigInteger(), nullable=True),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('article_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('sources', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('languages', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('top_entities', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('first_report_article_id', sa.BigInteger(), nullable=True),
    sa.Column('first_report_source', sa.Text(), nullable=True),
    sa.Column('weights', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('counts', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('reports', sa.Integer(), server_default='0', nullable=False),
    sa.Column('merged_into', sa.BigInteger(), nullable=True),
    sa.Column('vectors', sa.LargeBinary(), nullable=True, comment='float16 text vectors of up to 8 representative reports'),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['merged_into'], ['stories.id'], name=op.f('fk_stories_merged_into_stories'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stories'))
    )
    op.create_index(op.f('ix_stories_last_updated'), 'stories', ['last_updated'], unique=False)
    op.create_index(op.f('ix_stories_merged_into'), 'stories', ['merged_into'], unique=False)
    op.create_table('story_articles',
    sa.Column('article_id', sa.BigInteger(), nullable=False),
    sa.Column('story_id', sa.BigInteger(), nullable=False),
    sa.Column('canonical_url', sa.Text(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('copy_of', sa.Text(), nullable=True),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['story_id'], ['stories.id'], name=op.f('fk_story_articles_story_id_stories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('article_id', name=op.f('pk_story_articles'))
    )
    op.create_index(op.f('ix_story_articles_canonical_url'), 'story_articles', ['canonical_url'], unique=False)
    op.create_index(op.f('ix_story_articles_story_id'), 'story_articles', ['story_id'], unique=False)
    op.create_table('story_keys',
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('story_id', sa.BigInteger(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['story_id'], ['stories.id'], name=op.f('fk_story_keys_story_id_stories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key', 'story_id', name=op.f('pk_story_keys'))
    )
    op.create_index('ix_story_keys_key_last_updated', 'story_keys', ['key', 'last_updated'], unique=False)
    op.create_index('ix_story_keys_story_id', 'story_keys', ['story_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_story_keys_story_id', table_name='story_keys')
    op.drop_index('ix_story_keys_key_last_updated', table_name='story_keys')
    op.drop_table('story_keys')
    op.drop_index(op.f('ix_story_articles_story_id'), table_name='story_articles')
    op.drop_index(op.f('ix_story_articles_canonical_url'), table_name='story_articles')
    op.drop_table('story_articles')
    op.drop_index(op.f('ix_stories_merged_into'), table_name='stories')
    op.drop_index(op.f('ix_stories_last_updated'), table_name='stories')
    op.drop_table('stories')
