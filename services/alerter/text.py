"""Text folding shared by queries and articles, so a query term and the text it should match
are normalised by the same function the enricher uses for entity names.

``Şırnak``, ``SIRNAK`` and ``Sirnak`` all fold to ``sirnak``; ``al-Sudani`` folds to the two
tokens ``al sudani``. The enricher's :func:`fold` is imported behind a function boundary so the
alerter's import graph does not pull in the enricher at module import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable


@functools.cache
def _folder() -> Callable[[str], str]:
    from services.enricher.canonical import fold

    # fold() is lru-cached for short surface forms; article bodies are unique and large, so
    # they bypass the cache (65,536 cached bodies would hold hundreds of MB).
    return getattr(fold, "__wrapped__", fold)


def fold_text(text: str) -> str:
    """Casefolded, diacritic-free, punctuation-free text: words separated by single spaces."""
    return _folder()(text)


def tokens(text: str | None) -> list[str]:
    """The folded words of *text* in order (empty for None)."""
    if not text:
        return []
    return fold_text(text).split()
