"""Issue 17 under attack: page shapes a tester invented that broke the reader view.

Each test is one kind of failure (not one page): agencies and the site's own name next to a
person in a byline, photo credits in Turkish/Arabic, a <br> inside the <h1>, a bare <time>.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from services.parser.metadata import choose_authors, choose_title, host_label
from services.parser.pipeline import parse_page
from shared.messages import Article, Page
from shared.settings import Settings
from tests.unit.parser.conftest import NOW

SETTINGS = Settings(database_url=None, kafka_bootstrap=None)
URL = "https://www.rudawnews.example/english/middleeast/arrests-duhok"
PARAGRAPHS = [
    "Security forces in Duhok province said on Tuesday that they had arrested four suspects "
    "accused of smuggling weapons across the border from Syria into the Kurdistan Region.",
    "The governor of Duhok told reporters that the men were detained at a checkpoint near the "
    "Faysh Khabur crossing after a search of their truck revealed rifles and ammunition.",
    "Officials in Erbil said the arrests were part of a wider campaign against smuggling "
    "networks that have operated along the border for years, taking advantage of the war.",
    "A spokesman for the Asayish security agency said investigations were continuing and that "
    "more arrests were expected in the coming days as the authorities follow leads.",
]


def _page(build: Callable[..., Page], *, head: str = "", body: str = "", h1: str = "") -> Article:
    paragraphs = "".join(f"<p>{text}</p>" for text in PARAGRAPHS)
    html = (
        f"<html><head><title>Four arrested in Duhok | Rudaw</title>{head}</head><body>"
        f"<article><h1>{h1 or 'Four arrested in Duhok'}</h1>{body or paragraphs}</article>"
        "</body></html>"
    )
    return parse_page(build(html, URL), settings=SETTINGS, now=NOW)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["Karwan Dri, Reuters"], (["Karwan Dri"], "person")),
        (["Karwan Dri | Rudaw"], (["Karwan Dri"], "person")),
        (["Dilan Ahmed and AFP"], (["Dilan Ahmed"], "person")),
        (["AFP"], (["AFP"], "organization")),
        (["Anadolu Ajansı"], (["Anadolu Ajansı"], "organization")),
        (["وكالة الأنباء العراقية"], (["وكالة الأنباء العراقية"], "organization")),
        (["Rudaw English"], (["Rudaw English"], "organization")),
    ],
)
def test_an_agency_or_the_site_is_never_a_person(
    raw: list[str], expected: tuple[list[str], str]
) -> None:
    authors = choose_authors([raw], [], site_names=["Rudaw News", "rudaw.net"])
    assert (authors.names, authors.kind) == expected


def test_an_agency_named_by_the_page_as_a_person_is_marked_as_an_organisation(
    build: Callable[..., Page],
) -> None:
    head = (
        '<script type="application/ld+json">{"@type": "NewsArticle", '
        '"author": {"@type": "Person", "name": "AFP"}}</script>'
    )
    article = _page(build, head=head)
    assert (article.authors, article.author_kind) == (["AFP"], "organization")


@pytest.mark.parametrize(
    "credit",
    [
        "Fotoğraf: AA",
        "Fotoğraflar: DHA / İHA",
        "الصورة: رويترز",
        "تصوير: أحمد الربيعي",
        "Wêne: Rûdaw",
        "Peşmerge güçleri Musul yakınında (Fotoğraf: AA)",
        "قوات البيشمركة قرب الموصل (الصورة: رويترز)",
    ],
)
def test_photo_credits_in_turkish_arabic_and_kurdish_are_captions(
    build: Callable[..., Page], credit: str
) -> None:
    body = "".join(f"<p>{text}</p>" for text in [*PARAGRAPHS[:2], credit, *PARAGRAPHS[2:]])
    article = _page(build, body=body)
    assert credit not in article.body_text
    assert credit in article.captions
    assert article.body_text.split("\n\n") == PARAGRAPHS


def test_a_sentence_about_a_photo_stays_in_the_body(build: Callable[..., Page]) -> None:
    sentence = "الصورة التي نشرتها الوكالة أظهرت آثار القصف على القرية، بحسب مسؤولين محليين."
    body = "".join(f"<p>{text}</p>" for text in [*PARAGRAPHS[:2], sentence, *PARAGRAPHS[2:]])
    article = _page(build, body=body)
    assert sentence in article.body_text
    assert article.captions == []


@pytest.mark.parametrize(
    "h1",
    [
        "Four arrested in Duhok<br>and Zakho",
        "Four arrested in Duhok &amp; Zakho<br/>today 🇮🇶",
        "<span>Four arrested</span><br><span>in Duhok and Zakho</span>",
    ],
)
def test_a_headline_broken_by_br_is_cut_whole_from_the_body(
    build: Callable[..., Page], h1: str
) -> None:
    article = _page(build, h1=h1)
    assert article.body_text.split("\n\n") == PARAGRAPHS
    assert [span.reason for span in article.removed] == ["title"]


def test_a_repeated_short_line_after_the_headline_is_not_part_of_it(
    build: Callable[..., Page],
) -> None:
    # "Four arrested" opens the text but is not the whole headline: it stays
    body = "".join(f"<p>{text}</p>" for text in ["Four arrested", *PARAGRAPHS])
    article = _page(build, body=body, h1="Four arrested in Duhok")
    assert article.body_text.startswith("Four arrested\n\n")


@pytest.mark.parametrize(
    ("title", "host", "expected", "site"),
    [
        ("Iraq | Syria talks collapse – Rudaw", "rudawnews.net", "Iraq | Syria talks collapse", "Rudaw"),
        ("Rudaw English - Erdoğan – Barzani meeting", "rudaw.net", "Erdoğan – Barzani meeting", "Rudaw English"),
        ("Sinjar'da çatışma - Rudaw Türkçe", "rudaw.net", "Sinjar'da çatışma", "Rudaw Türkçe"),
        ("Clashes in Sinjar | Kurdistan24 English", "www.kurdistan24.net", "Clashes in Sinjar", "Kurdistan24 English"),
        # a headline with a dash whose one side merely shares letters with the host stays
        ("Erdoğan – Barzani", "barzaninews.net", "Erdoğan – Barzani", None),
        ("Erdoğan – Barzani meeting ends", "rudaw.net", "Erdoğan – Barzani meeting ends", None),
    ],
)  # fmt: skip
def test_a_site_name_that_is_the_host_is_cut_without_an_agreeing_h1(
    title: str, host: str, expected: str, site: str | None
) -> None:
    chosen = choose_title(
        [title],
        site_names=[host],
        references=["Something else entirely"],
        host_label=host_label(host),
    )
    assert (chosen.text, chosen.site_name) == (expected, site)


def test_the_site_name_in_the_title_and_a_two_line_h1_both_leave_the_body(
    build: Callable[..., Page],
) -> None:
    article = _page(build, h1="Four arrested in Duhok<br>and Zakho")
    assert article.title == "Four arrested in Duhok"
    assert article.site_name == "Rudaw"
    assert article.body_text.split("\n\n") == PARAGRAPHS


def _dated(build: Callable[..., Page], header: str) -> Article:
    body = header + "".join(f"<p>{text}</p>" for text in PARAGRAPHS)
    return _page(build, body=body)


def test_an_unmarked_time_in_the_article_is_a_strong_date_whatever_its_age(
    build: Callable[..., Page],
) -> None:
    article = _dated(
        build,
        '<div class="meta"><time datetime="2014-06-10T08:00:00+03:00">10 June 2014</time></div>',
    )
    assert (article.published_at, article.published_source) == (
        datetime(2014, 6, 10, 5, 0, tzinfo=UTC),
        "meta",
    )


def test_a_time_in_a_related_link_or_marked_modified_is_not_the_published_date(
    build: Callable[..., Page],
) -> None:
    header = (
        '<time class="updated" datetime="2014-06-11T08:00:00+03:00">11 June</time>'
        '<ul><li><a href="/other"><time datetime="2013-01-01T00:00:00Z">1 Jan</time> Other</a></li></ul>'
    )
    article = _dated(build, header)
    # neither is the publisher's publication date; old weak guesses are not believed
    assert article.published_source != "meta"


@pytest.mark.parametrize(
    "caption",
    [
        "Smoke rises over Sinjar. Photo: Safin Hamid / AFP",
        "Smoke rises over Sinjar after a drone strike on Monday | Photo: Rudaw",
        "Smoke rises over Sinjar after a drone strike on Monday. Photo by Safin Hamid/AFP",
        "Smoke rises over Sinjar after a drone strike on Monday. AFP PHOTO / SAFIN HAMID",
        "Smoke rises over Sinjar after a drone strike on Monday. (Safin Hamid/AFP via Getty Images)",
    ],
)
def test_a_caption_line_ending_in_an_unbracketed_credit_is_a_caption(
    build: Callable[..., Page], caption: str
) -> None:
    body = "".join(f"<p>{text}</p>" for text in [*PARAGRAPHS[:2], caption, *PARAGRAPHS[2:]])
    article = _page(build, body=body)
    assert article.body_text.split("\n\n") == PARAGRAPHS
    assert article.captions == [caption]


@pytest.mark.parametrize(
    "sentence",
    [
        "The ministry posted a picture. Photo: it showed the damage to the bridge, officials said.",
        '"Photo: nothing proves it," the spokesman wrote on X, mocking the claims.',
        "The minister said the photo, credited to AFP, showed the aftermath of the strike.",
        "A photo by a local resident showed smoke rising over the village on Monday morning.",
    ],
)
def test_a_sentence_mentioning_a_photo_stays_in_the_body(
    build: Callable[..., Page], sentence: str
) -> None:
    body = "".join(f"<p>{text}</p>" for text in [*PARAGRAPHS[:2], sentence, *PARAGRAPHS[2:]])
    article = _page(build, body=body)
    assert sentence in article.body_text.split("\n\n")
    assert article.captions == []


YOAST_GRAPH = (
    '{"@context": "https://schema.org", "@graph": ['
    '{"@type": "NewsArticle", "@id": "https://r.example/a#article", "headline": "Four arrested",'
    ' "datePublished": "2016-10-17T06:00:00+00:00",'
    ' "author": {"@id": "https://r.example/#/schema/person/abc"},'
    ' "publisher": {"@id": "https://r.example/#org"}},'
    '{"@type": "Person", "@id": "https://r.example/#/schema/person/abc", "name": "Dilan Ahmed"},'
    '{"@type": "Organization", "@id": "https://r.example/#org", "name": "Rudaw"}]}'
)


@pytest.mark.parametrize(
    "script",
    [
        YOAST_GRAPH,
        f"\n//<![CDATA[\n{YOAST_GRAPH}\n//]]>\n",
        f"/*<![CDATA[*/{YOAST_GRAPH}/*]]>*/",
        f"{YOAST_GRAPH};",
    ],
)
def test_jsonld_authors_by_reference_and_wrapped_blocks_are_read(
    build: Callable[..., Page], script: str
) -> None:
    head = f'<script type="application/ld+json">{script}</script>'
    article = _page(build, head=head)
    assert (article.authors, article.author_kind) == (["Dilan Ahmed"], "person")
    assert (article.published_at, article.published_source) == (
        datetime(2016, 10, 17, 6, 0, tzinfo=UTC),
        "jsonld",
    )


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("Haber Merkezi", "Kaynak: AA"),
        ("Staff Reporter", "Source: Reuters"),
        ("محرر الشؤون المحلية", "المصدر: وكالة الأنباء العراقية"),
    ],
)
def test_a_desk_line_on_top_and_a_source_line_at_the_end_leave_the_body(
    build: Callable[..., Page], first: str, last: str
) -> None:
    body = "".join(f"<p>{text}</p>" for text in [first, *PARAGRAPHS, last])
    article = _page(build, body=body)
    assert article.body_text.split("\n\n") == PARAGRAPHS
    assert {(span.reason, span.text) for span in article.removed} >= {
        ("byline", first),
        ("source", last),
    }
    assert article.author_kind != "person" or first not in article.authors


def test_a_sentence_naming_its_sources_stays(build: Callable[..., Page]) -> None:
    sentence = "Sources: two officials in Erbil, who asked not to be named, confirmed the arrests."
    body = "".join(f"<p>{text}</p>" for text in [*PARAGRAPHS, sentence])
    assert sentence in _page(build, body=body).body_text


@pytest.mark.parametrize("sign_off", ["AFP", "(AA)", "— Reuters", "AFP/DHA", "Reuters and AFP"])
def test_an_agency_signing_off_the_text_is_a_credit_not_body(
    build: Callable[..., Page], sign_off: str
) -> None:
    body = "".join(f"<p>{text}</p>" for text in [*PARAGRAPHS, sign_off])
    article = _page(build, body=body)
    assert article.body_text.split("\n\n") == PARAGRAPHS
    assert ("byline", sign_off) in {(span.reason, span.text) for span in article.removed}
    assert article.author_kind == "organization"


def test_agencies_in_german_are_a_role_and_the_site_stands_in() -> None:
    authors = choose_authors([["ORF.at/ Agenturen"]], [], site_names=["ORF.at"])
    assert (authors.names, authors.kind) == (["ORF.at"], "organization")


def test_a_time_in_a_later_article_element_is_not_the_published_date(
    build: Callable[..., Page],
) -> None:
    later = (
        '<article><p>Reply</p><time datetime="2014-06-11T08:00:00+03:00">11 June</time></article>'
    )
    html = (
        "<html><head><title>Four arrested in Duhok | Rudaw</title></head><body><article>"
        "<h1>Four arrested in Duhok</h1>"
        + "".join(f"<p>{text}</p>" for text in PARAGRAPHS)
        + f"</article>{later}</body></html>"
    )
    article = parse_page(build(html, URL), settings=SETTINGS, now=NOW)
    assert article.published_source != "meta"


def test_a_blog_named_after_its_author_keeps_the_author_and_photo_credits_are_not_people() -> None:
    authors = choose_authors(
        [["Matthew Davis"], ["Photo by ev on Unsplash"]], [], site_names=["Matthew Davis's Blog"]
    )
    assert (authors.names, authors.kind) == (["Matthew Davis"], "person")
    assert choose_authors([["Photo by ev on Unsplash"]], [], site_names=[]).names == []
