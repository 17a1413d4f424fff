"""Issue 17, case 7: the publisher's own name never becomes an entity mention of its articles."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from services.enricher.canonical import fold
from services.enricher.pipeline import Enricher
from services.parser.pipeline import parse_page
from shared.messages import Page
from shared.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "parser"
KIRKUK_URL = "https://kirkukpost.com/security/gunmen-attack-army-checkpoint-south-of-kirkuk"
SEEN = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)


def test_site_name_in_the_body_is_not_a_mention(enricher: Enricher, make_article) -> None:
    result = enricher.enrich(
        make_article(
            "Kirkuk Post reporter Sara Jamal said Iraqi soldiers were attacked near Daquq. "
            "The Kirkuk Post has covered the Hamrin mountains for a decade, and Kirkuk Post "
            "editors confirmed the report with police in Kirkuk.",
            title="Gunmen attack checkpoint near Kirkuk | The Kirkuk Post",
            site_name="The Kirkuk Post",
        )
    )
    assert not [m.text for m in result.mentions if "post" in fold(m.text)]
    assert "Sara Jamal" in {m.text for m in result.mentions}


def test_parsed_page_site_never_among_its_entities(enricher: Enricher) -> None:
    html = (FIXTURES / "kirkuk_post_checkpoint.html").read_text("utf-8")
    html = html.replace("(Photo: Kirkuk Post)", "(Kirkuk Post)")  # a credit the cleaner keeps
    page = Page(
        url=KIRKUK_URL,
        final_url=KIRKUK_URL,
        host="kirkukpost.com",
        status_code=200,
        charset="utf-8",
        html=html,
        discovered_at=SEEN,
        fetched_at=SEEN,
    )
    article = parse_page(page, settings=Settings(database_url=None, kafka_bootstrap=None), now=SEEN)
    assert (article.title, article.site_name) == (
        "Gunmen attack army checkpoint south of Kirkuk",
        "The Kirkuk Post",
    )
    result = enricher.enrich(article)
    assert not [e.name for e in result.entities if "post" in fold(e.name)]


def test_an_edition_of_the_site_drops_the_bare_name_too(enricher: Enricher, make_article) -> None:
    # the parser names the site from "Headline | Rudaw English"; the text says "Rudaw"
    result = enricher.enrich(
        make_article(
            "Rudaw reporter Sara Jamal said Iraqi soldiers were attacked near Daquq, and "
            "Rudaw English confirmed the report with police in Kirkuk on Tuesday.",
            title="Gunmen attack checkpoint near Kirkuk",
            site_name="Rudaw English",
        )
    )
    assert not [m.text for m in result.mentions if "rudaw" in fold(m.text)]
    assert "Kirkuk" in {m.text for m in result.mentions}
