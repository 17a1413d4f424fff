"""articles: indexes on stored_at and updated_at

Revision ID: 0009_article_times
Revises: 0008_unfinished_links
Create Date: 2026-11-30 19:00:00

``newsflow run`` counts what its run stored and updated, and which stored articles still
wait for their story or alert scan, by ``stored_at``/``updated_at``; each count was a scan of
the whole ``articles`` table: at 50,000 articles one status refresh took 110 ms of
PostgreSQL time (every second), and it grew with the table. With these indexes the counts
read only the run's rows (3.7 ms for a fresh run). ``replay --stored-since`` and the
re-drive's window of unscanned articles use them too.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0009_article_times'
down_revision: str | None = '0008_unfinished_links'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_articles_stored_at', 'articles', ['stored_at'], unique=False)
    op.create_index('ix_articles_updated_at', 'articles', ['updated_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_articles_updated_at', table_name='articles')
    op.drop_index('ix_articles_stored_at', table_name='articles')
