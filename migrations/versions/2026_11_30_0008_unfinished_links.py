"""unfinished links: a partial index for the re-drive, and the feed entry until the outcome

Revision ID: 0008_unfinished_links
Revises: 0007_lazy_story_vectors
Create Date: 2026-11-30 18:30:00

The re-drive (``newsflow recover``, and ``newsflow run`` after a recovery) reads the links
without an outcome, ``WHERE done_at IS NULL`` in ``(first_seen_at, url)`` order; without an
index on that predicate it scanned every row of ``seen_links`` (90 days of links). The
partial index holds only the unfinished ones: a few hundred in flight, however big the table.

``seen_links.entry`` keeps the feed entry (title, published date, authors, guid) while the
link is unfinished, so a re-sent link carries it again; the writer clears it with the outcome.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0008_unfinished_links'
down_revision: str | None = '0007_lazy_story_vectors'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('seen_links', sa.Column('entry', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_index(
        'ix_seen_links_unfinished',
        'seen_links',
        ['first_seen_at', 'url'],
        unique=False,
        postgresql_where=sa.text('done_at IS NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_seen_links_unfinished', table_name='seen_links', postgresql_where=sa.text('done_at IS NULL'))
    op.drop_column('seen_links', 'entry')
