"""Per-entity mention counts and a salience score in [0, 1].

salience = W_TITLE * in_title + W_LEAD * in_lead + W_FREQUENCY * mentions / max_mentions

* ``in_title``: the entity is mentioned in the headline;
* ``in_lead``: mentioned in the first paragraph of the body, or one of its surface forms
  appears in the article's ``lead`` (standfirst) text;
* frequency is relative to the most-mentioned entity of the same article.

A plain weighted sum, so a score can be explained by its three parts. Rounded to 4 places
so that the same article always gives byte-identical output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from services.enricher.resolve import Resolved

W_TITLE = 0.40
W_LEAD = 0.25
W_FREQUENCY = 0.35
SALIENCE_DIGITS = 4


@dataclass(frozen=True, slots=True)
class EntityStats:
    key: str
    mentions: int
    in_title: bool
    in_lead: bool
    salience: float
    first: tuple[int, int]  # (field order, offset) of the first mention


def lead_end(body: str) -> int:
    """Offset where the first non-blank paragraph of ``body`` ends."""
    match = re.search(r"[^\n]*\S[^\n]*", body)
    return match.end() if match else 0


def entity_stats(
    items: Sequence[Resolved], *, body: str, lead: str | None = None
) -> dict[str, EntityStats]:
    """Stats per entity key for one article's resolved mentions."""
    boundary = lead_end(body)
    lead_text = (lead or "").casefold()
    counts: dict[str, int] = {}
    titles: set[str] = set()
    leads: set[str] = set()
    first: dict[str, tuple[int, int]] = {}
    for item in items:
        span = item.span
        counts[item.key] = counts.get(item.key, 0) + 1
        position = (0 if span.field == "title" else 1, span.start)
        if item.key not in first or position < first[item.key]:
            first[item.key] = position
        if span.field == "title":
            titles.add(item.key)
        elif span.start < boundary:
            leads.add(item.key)
        if lead_text and span.text.casefold() in lead_text:
            leads.add(item.key)
    if not counts:
        return {}
    top = max(counts.values())
    return {
        key: EntityStats(
            key=key,
            mentions=count,
            in_title=key in titles,
            in_lead=key in leads,
            salience=round(
                W_TITLE * (key in titles) + W_LEAD * (key in leads) + W_FREQUENCY * count / top,
                SALIENCE_DIGITS,
            ),
            first=first[key],
        )
        for key, count in counts.items()
    }
