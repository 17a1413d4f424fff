"""Kept so code written against the old module keeps importing. The writer's storage is split
by concern: :mod:`services.writer.articles` (articles, entities, aliases, links),
:mod:`services.writer.dead_letters`, :mod:`services.writer.archive` (pages); database error
classification is :mod:`shared.db.errors`."""

from services.writer.archive import store_pages, write_pages
from services.writer.articles import (
    AliasMemory,
    StoreReport,
    article_ids,
    mark_links,
    merge_reports,
    store_enriched,
    write_batch,
    write_parallel,
)
from services.writer.dead_letters import store_dead_letters, write_dead_letters
from shared.db.errors import db_error_kind, is_transient_db_error

__all__ = [
    "AliasMemory",
    "StoreReport",
    "article_ids",
    "db_error_kind",
    "is_transient_db_error",
    "mark_links",
    "merge_reports",
    "store_dead_letters",
    "store_enriched",
    "store_pages",
    "write_batch",
    "write_dead_letters",
    "write_pages",
    "write_parallel",
]
