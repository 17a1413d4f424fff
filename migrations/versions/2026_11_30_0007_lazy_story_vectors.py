"""lazy story vectors: story_articles.vector may be NULL, stories keep a pending opener

Revision ID: 0007_lazy_story_vectors
Revises: 0006_story_pins
Create Date: 2026-11-30 19:30:00

The storyteller encodes an article's title + lead (E5, ~35 ms of CPU) only when a decision
depends on text; an article placed on entity evidence alone (or a wire copy) has no vector.
A story opened by an article that had nothing to compare with keeps that opener pending
(id and text) until a later article's text is compared with the story.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007_lazy_story_vectors'
down_revision: str | None = '0006_story_pins'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'stories',
        sa.Column(
            'pending_article_id',
            sa.BigInteger(),
            nullable=True,
            comment='the opener, not encoded yet (encoded when a later article is compared)',
        ),
    )
    op.add_column(
        'stories',
        sa.Column(
            'pending_text',
            sa.Text(),
            nullable=True,
            comment="the pending opener's encoder input (title + lead)",
        ),
    )
    op.alter_column(
        'story_articles',
        'vector',
        existing_type=sa.LargeBinary(),
        nullable=True,
        comment='float16 title + lead vector; NULL when the article was placed without encoding it',
    )


def downgrade() -> None:
    op.drop_column('stories', 'pending_text')
    op.drop_column('stories', 'pending_article_id')
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
