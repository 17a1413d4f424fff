"""article_entities without per-row foreign-key checks; lz4 on the wide JSON columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 03:00:00

Why: PostgreSQL checks a foreign key with one trigger call per inserted row. At ~30 links
per article the two checks on ``article_entities`` cost as much PostgreSQL CPU as the
article row itself (measured 0.2 of 0.74 ms per article, ``tests/bench/writer.py``).

What keeps the links consistent instead:

* inserts: only the writer inserts links, for article rows it upserted in the same
  transaction (row-locked) and for entity ids it locked ``FOR KEY SHARE`` in that
  transaction (one statement per batch, the lock a foreign-key check would take per row);
* deletes: the former ``ON DELETE CASCADE`` is kept by statement-level triggers on
  ``articles`` and ``entities`` (one set-based DELETE per statement, via transition tables),
  and ``TRUNCATE articles`` (or ``entities``) empties the links too.

lz4: ``mentions`` (~8 KB of JSON per article) and the tsvector are the widest values in an
article row; pglz compressed them at several times lz4's CPU cost.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LZ4_COLUMNS = ("mentions", "removed", "enrichment", "search")

# One statement per op.execute: asyncpg prepares each, and a prepared statement is one command.
CASCADE_STATEMENTS = (
    """\
CREATE FUNCTION article_entities_cascade_articles() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM article_entities WHERE article_id IN (SELECT id FROM gone);
    RETURN NULL;
END $$
""",
    """\
CREATE FUNCTION article_entities_cascade_entities() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM article_entities WHERE entity_id IN (SELECT id FROM gone);
    RETURN NULL;
END $$
""",
    """\
CREATE FUNCTION article_entities_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- DELETE, not TRUNCATE: 'TRUNCATE articles, article_entities' would make a nested
    -- TRUNCATE fail (table in use); by then the links are gone and this deletes nothing.
    DELETE FROM article_entities;
    RETURN NULL;
END $$
""",
    """\
CREATE TRIGGER trg_articles_delete_links AFTER DELETE ON articles
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
    EXECUTE FUNCTION article_entities_cascade_articles()
""",
    """\
CREATE TRIGGER trg_entities_delete_links AFTER DELETE ON entities
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
    EXECUTE FUNCTION article_entities_cascade_entities()
""",
    """\
CREATE TRIGGER trg_articles_truncate_links AFTER TRUNCATE ON articles
    FOR EACH STATEMENT EXECUTE FUNCTION article_entities_truncate()
""",
    """\
CREATE TRIGGER trg_entities_truncate_links AFTER TRUNCATE ON entities
    FOR EACH STATEMENT EXECUTE FUNCTION article_entities_truncate()
""",
)


def upgrade() -> None:
    op.drop_constraint(
        'fk_article_entities_article_id_articles', 'article_entities', type_='foreignkey'
    )
    op.drop_constraint(
        'fk_article_entities_entity_id_entities', 'article_entities', type_='foreignkey'
    )
    for statement in CASCADE_STATEMENTS:
        op.execute(statement)
    if _has_lz4():
        for column in LZ4_COLUMNS:
            op.execute(f"ALTER TABLE articles ALTER COLUMN {column} SET COMPRESSION lz4")


def downgrade() -> None:
    if _has_lz4():
        for column in LZ4_COLUMNS:
            op.execute(f"ALTER TABLE articles ALTER COLUMN {column} SET COMPRESSION default")
    for table, trigger in (
        ("articles", "trg_articles_delete_links"),
        ("entities", "trg_entities_delete_links"),
        ("articles", "trg_articles_truncate_links"),
        ("entities", "trg_entities_truncate_links"),
    ):
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for function in (
        "article_entities_cascade_articles",
        "article_entities_cascade_entities",
        "article_entities_truncate",
    ):
        op.execute(f"DROP FUNCTION {function}()")
    # A link to a row deleted by hand while the triggers were off would block the constraint.
    op.execute(
        "DELETE FROM article_entities l WHERE NOT EXISTS "
        "(SELECT 1 FROM articles a WHERE a.id = l.article_id) "
        "OR NOT EXISTS (SELECT 1 FROM entities e WHERE e.id = l.entity_id)"
    )
    op.create_foreign_key(
        'fk_article_entities_article_id_articles', 'article_entities', 'articles',
        ['article_id'], ['id'], ondelete='CASCADE',
    )
    op.create_foreign_key(
        'fk_article_entities_entity_id_entities', 'article_entities', 'entities',
        ['entity_id'], ['id'], ondelete='CASCADE',
    )


def _has_lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.server_version_info < (14,):
        return False
    return bool(bind.exec_driver_sql(
        "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
        "AND 'lz4' = ANY(enumvals)").scalar())
