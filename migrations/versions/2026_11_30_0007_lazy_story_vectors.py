"""story_articles.vector may be NULL: the storyteller encodes an article only when needed

Revision ID: 0007_lazy_story_vectors
Revises: 0005_stories
Create Date: 2026-11-30 19:30:00

The storyteller encodes an article's title + lead (E5, ~35 ms of CPU) only when a decision
depends on text; an article placed on entity evidence alone (or a wire copy) has no vector.
Numbered 0007 because a parallel branch adds 0006; re-chain ``down_revision`` to the head
when the branches meet.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007_lazy_story_vectors'
down_revision: str | None = '0005_stories'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column(
        'story_articles',
        'vector',
        existing_type=sa.LargeBinary(),
        nullable=True,
        comment='float16 title + lead vector; NULL when the article was placed without encoding it',
    )


def downgrade() -> None:
    # an article without a vector gets a zero one (384 float16 zeros: E5's dimension), which
    # the older code compares as unrelated text
    op.execute(
        "UPDATE story_articles SET vector = decode(repeat('00', 768), 'hex')"
        " WHERE vector IS NULL"
    )
    op.alter_column(
        'story_articles',
        'vector',
        existing_type=sa.LargeBinary(),
        nullable=False,
        comment=None,
    )
