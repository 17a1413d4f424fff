"""articles.search in the article's language: turkish, arabic, english, ... else simple

Revision ID: 0003_search_language
Revises: 0002
Create Date: 2026-11-30 16:30:00

The body part of the generated tsvector used 'english' for every article, so a Turkish
"operasyonunda" or an Arabic "والعملية" was stemmed as if it were English. It now uses the
configuration of the article's ``language`` (the enricher's, stored by the writer): snowball
'turkish', 'arabic', 'english', ... and 'simple' for Kurdish, Persian and the rest. A CASE
over regconfig constants is immutable, as a generated column requires. The column is
recomputed for every row (a table rewrite), then the GIN index is rebuilt.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0003_search_language'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the same expression as shared.db.models.SEARCH_VECTOR_SQL at this revision
SEARCH_BY_LANGUAGE = (
    "setweight(to_tsvector('simple', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector(CASE language WHEN 'en' THEN 'english'::regconfig "
    "WHEN 'tr' THEN 'turkish'::regconfig WHEN 'ar' THEN 'arabic'::regconfig "
    "WHEN 'de' THEN 'german'::regconfig WHEN 'fr' THEN 'french'::regconfig "
    "WHEN 'es' THEN 'spanish'::regconfig WHEN 'ru' THEN 'russian'::regconfig "
    "ELSE 'simple'::regconfig END, coalesce(body_text, '')), 'B')"
)
SEARCH_ENGLISH = (
    "setweight(to_tsvector('simple', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(body_text, '')), 'B')"
)


def _replace_search(expression: str) -> None:
    op.execute("DROP INDEX IF EXISTS ix_articles_search")
    op.execute("ALTER TABLE articles DROP COLUMN search")
    op.execute(
        f"ALTER TABLE articles ADD COLUMN search tsvector GENERATED ALWAYS AS ({expression}) STORED"
    )
    if _has_lz4():  # as migration 0002 set it
        op.execute("ALTER TABLE articles ALTER COLUMN search SET COMPRESSION lz4")
    op.execute("CREATE INDEX ix_articles_search ON articles USING gin (search)")


def upgrade() -> None:
    _replace_search(SEARCH_BY_LANGUAGE)


def downgrade() -> None:
    _replace_search(SEARCH_ENGLISH)


def _has_lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.server_version_info < (14,):
        return False
    return bool(bind.exec_driver_sql(
        "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
        "AND 'lz4' = ANY(enumvals)").scalar())
