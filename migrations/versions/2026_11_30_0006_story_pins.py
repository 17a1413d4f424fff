"""story pins: analyst corrections of the storyteller's grouping stick

Revision ID: 0006_story_pins
Revises: 0005_stories
Create Date: 2026-11-30 18:15:00

``stories.pin`` is the correction group of a story an analyst split or moved articles in or
out of (``newsflow stories split|move``): the storyteller never merges two stories with
different pins again, so a split is not undone by the next article that resembles both
halves. ``story_articles.pinned_at`` says when an analyst put an article in its story.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_story_pins'
down_revision: str | None = '0005_stories'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('stories', sa.Column('pin', sa.BigInteger(), nullable=True, comment='correction group: stories with different pins are never merged automatically'))
    op.add_column('story_articles', sa.Column('pinned_at', sa.DateTime(timezone=True), nullable=True, comment='when an analyst put the article in this story (split or move)'))


def downgrade() -> None:
    op.drop_column('story_articles', 'pinned_at')
    op.drop_column('stories', 'pin')
