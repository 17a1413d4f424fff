"""``stories list|show`` tables render web text literally (titles are not rich markup)."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

from rich.console import Console

from services.cli.stories import list_table, timeline_table

HOSTILE = "[/] PKK [bold red]attack[/] in Van [link=http://x]"
T0 = datetime(2026, 11, 20, 7, 5, tzinfo=UTC)


def _render(renderable: object) -> str:
    out = StringIO()
    Console(file=out, width=400, color_system=None).print(renderable)
    return out.getvalue()


def test_list_table_shows_markup_like_headline_and_source_verbatim() -> None:
    rows = [
        {
            "id": 7,
            "last_updated": T0,
            "article_count": 2,
            "sources": ["a", "b"],
            "languages": ["en", "tr"],
            "first_report": {"source": "[i]wire[/i]"},
            "headline": HOSTILE,
        },
        {
            "id": 8,
            "last_updated": None,
            "article_count": 1,
            "sources": [],
            "languages": [],
            "first_report": None,
            "headline": None,
        },
    ]
    text = _render(list_table(rows))
    assert HOSTILE in text
    assert "[i]wire[/i]" in text


def test_timeline_table_shows_markup_like_title_verbatim() -> None:
    story = {
        "timeline": [
            {"published_at": T0, "source": "[b]x[/b]", "role": "first_report", "title": HOSTILE},
            {"published_at": None, "source": "y", "role": "update", "title": None},
        ]
    }
    text = _render(timeline_table(story))
    assert HOSTILE in text
    assert "[b]x[/b]" in text


def test_story_header_says_which_id_was_merged_and_escapes_the_headline() -> None:
    from services.cli.stories import story_header

    story = {
        "id": 3,
        "redirected_from": [9],
        "headline": HOSTILE,
        "article_count": 4,
        "sources": ["a", "b"],
        "languages": ["ar", "en"],
        "first_seen": T0,
        "last_updated": T0,
        "top_entities": [{"key": "GPE:[van]", "count": 2}],
    }
    text = _render(story_header(story))
    assert "story #9 was merged into #3" in text
    assert HOSTILE in text and "GPE:[van] (2)" in text
    plain = _render(story_header({**story, "redirected_from": []}))
    assert "merged" not in plain


def test_untitled_story_and_article_say_so_instead_of_a_blank_cell() -> None:
    """A page without a title is stored with '': `stories list` showed a blank headline."""
    from services.cli.stories import story_header

    row = {
        "id": 10,
        "last_updated": T0,
        "article_count": 1,
        "sources": ["a"],
        "languages": ["en"],
        "first_report": None,
        "headline": "",
    }
    assert "(no title)" in _render(list_table([row]))
    story = {**row, "first_seen": T0, "top_entities": [], "redirected_from": []}
    assert "(no title)" in _render(story_header(story))
    timeline = {
        "timeline": [{"published_at": T0, "source": "a", "role": "first_report", "title": ""}]
    }
    assert "(no title)" in _render(timeline_table(timeline))
