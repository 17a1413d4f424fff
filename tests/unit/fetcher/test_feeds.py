"""Feed formats, safety and discovery (pure parsing on fixture files)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.fetcher.feeds import discover_feed_links, parse_feed
from shared.errors import PermanentError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "fetcher"
NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_rss20_items_links_dates_and_hints() -> None:
    feed = parse_feed(load("rss20.xml"), url="https://news.example/feed", now=NOW)
    assert feed.kind == "rss20"
    assert feed.title == "Kurdistan Security Monitor"
    first, second, future = feed.items
    # relative link resolved, tracking parameters dropped
    assert first.url == "https://news.example/2026/11/22/drone-strike-sinjar"
    assert first.title == "Turkish drone strike reported near Sinjar"
    assert first.summary == "Local officials said the strike hit a vehicle."
    assert first.published_at == datetime(2026, 11, 22, 6, 10, tzinfo=UTC)
    assert first.authors == ("Rudaw Desk",)
    # host case, default port and fragment normalised
    assert second.url == "https://news.example/2026/11/21/border-talks"
    assert second.published_at == datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    assert future.published_at is None  # a 2035 date is a publisher bug, not a date
    # ttl 30 min vs sy:updatePeriod hourly / 4 = 15 min: the stricter (longer) one wins
    assert feed.min_interval_hint_s == 1800.0
    assert feed.recovered_error is None


def test_rss091_with_doctype_is_accepted() -> None:
    feed = parse_feed(load("rss091.xml"), url="http://oldwire.example/rss")
    assert feed.kind == "rss091n"  # Netscape 0.91, per its DOCTYPE
    assert [i.url for i in feed.items] == ["http://oldwire.example/erbil-airport.html"]


def test_rss10_rdf() -> None:
    feed = parse_feed(load("rss10.rdf"), url="http://rdf.example/rss")
    assert feed.kind == "rss10"
    assert feed.items[0].url == "http://rdf.example/a1"
    assert feed.items[0].published_at == datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_atom_with_xml_base() -> None:
    feed = parse_feed(load("atom.xml"), url="https://atom.example/atom.xml")
    assert feed.kind == "atom10"
    item = feed.items[0]
    assert item.url == "https://atom.example/news/sdf-statement"
    assert item.published_at == datetime(2026, 11, 22, 4, tzinfo=UTC)  # published, not updated
    assert item.authors == ("A. Reporter",)


def test_json_feed() -> None:
    feed = parse_feed(
        load("feed.json"),
        url="https://json.example/feed.json",
        content_type="application/feed+json",
    )
    assert feed.kind == "json"
    assert [i.url for i in feed.items] == [
        "https://json.example/a?id=7",
        "https://json.example/relative-b",
    ]
    assert feed.items[0].published_at == datetime(2026, 11, 22, 3, tzinfo=UTC)
    assert feed.items[1].summary == "Body"


def test_sitemap_and_news_sitemap_and_index() -> None:
    sm = parse_feed(load("sitemap.xml"), url="https://sm.example/sitemap.xml")
    assert sm.kind == "sitemap"
    assert [i.url for i in sm.items] == ["https://sm.example/a", "https://sm.example/b"]
    assert sm.items[0].published_at == datetime(2026, 11, 21, tzinfo=UTC)
    gn = parse_feed(load("news_sitemap.xml"), url="https://gn.example/news.xml")
    assert gn.kind == "news_sitemap"
    assert gn.items[0].title == "Kirkuk security meeting"
    assert gn.items[0].published_at == datetime(2026, 11, 22, 2, 45, tzinfo=UTC)
    idx = parse_feed(load("sitemapindex.xml"), url="https://sm.example/index.xml")
    assert idx.kind == "sitemapindex"
    assert idx.sitemaps == [
        "https://sm.example/sitemap-new.xml",
        "https://sm.example/sitemap-old.xml",
    ]


def test_malformed_feed_recovers_entries() -> None:
    feed = parse_feed(load("malformed.xml"), url="https://broken.example/rss")
    urls = [i.url for i in feed.items]
    assert "https://broken.example/1" in urls and "https://broken.example/2" in urls
    assert feed.recovered_error  # the breakage is reported, not hidden


def test_html_instead_of_feed_is_a_clear_error() -> None:
    with pytest.raises(PermanentError) as err:
        parse_feed(load("home.html"), url="https://news.example/", content_type="text/html")
    assert err.value.kind == "not_a_feed"
    assert "HTML page" in err.value.detail and "feeds discover" in err.value.detail


def test_unrecognised_document_is_not_a_feed() -> None:
    with pytest.raises(PermanentError) as err:
        parse_feed(b"just some text, no markup", url="https://x.example/feed")
    assert err.value.kind == "not_a_feed"
    with pytest.raises(PermanentError):
        parse_feed(b'{"hello": "world"}', url="https://x.example/feed.json")


def test_billion_laughs_refused() -> None:
    with pytest.raises(PermanentError) as err:
        parse_feed(load("billion_laughs.xml"), url="https://x.example/feed")
    assert err.value.kind == "xml_bomb"


def test_xxe_refused() -> None:
    with pytest.raises(PermanentError) as err:
        parse_feed(load("xxe.xml"), url="https://x.example/feed")
    assert err.value.kind == "xxe"
    assert "root:" not in err.value.detail


def test_discovery_from_link_alternate() -> None:
    found = discover_feed_links(load("home.html"), base_url="https://news.example/")
    assert found == ["https://news.example/feed.xml", "https://other.example/atom"]


def test_json_feed_with_bom_and_rss_served_as_html() -> None:
    bom_json = b"\xef\xbb\xbf" + load("feed.json")
    assert parse_feed(bom_json, url="https://json.example/feed.json").kind == "json"
    # Misconfigured servers send RSS as text/html: the document decides, not the header.
    rss = parse_feed(load("rss20.xml"), url="https://news.example/feed", content_type="text/html")
    assert rss.kind == "rss20" and len(rss.items) == 3


BAD_SCHEME_LINKS = (
    "file:///etc/passwd",
    "ftp://127.0.0.1/pub/secret.txt",
    "javascript:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
)


def test_item_links_that_are_not_http_are_refused_with_a_reason() -> None:
    items = "".join(
        f"<item><title>t{n}</title><link>{link.replace('<', '&lt;')}</link></item>"
        for n, link in enumerate((*BAD_SCHEME_LINKS, "/2026/11/22/good"))
    )
    rss = f'<rss version="2.0"><channel><title>x</title>{items}</channel></rss>'.encode()
    feed = parse_feed(rss, url="https://news.example/feed", now=NOW)
    assert [item.url for item in feed.items] == ["https://news.example/2026/11/22/good"]
    assert len(feed.refused) == 4
    assert all(reason.startswith("not an http(s) URL") for reason in feed.refused)
    # feedparser resolves the link first (file:///etc/passwd becomes file://etc/passwd)
    assert "file:" in feed.refused[0] and "etc/passwd" in feed.refused[0]


def test_refused_links_are_counted_in_atom_json_and_sitemaps() -> None:
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title>'
        b'<entry><title>a</title><link href="ftp://host/a"/></entry>'
        b'<entry><title>b</title><link href="https://news.example/b"/></entry></feed>'
    )
    assert len(parse_feed(atom, url="https://news.example/atom", now=NOW).refused) == 1
    json_feed = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "x", "items": ['
        b'{"id": "1", "url": "file:///etc/passwd"}, {"id": "2", "url": "https://news.example/2"}]}'
    )
    parsed = parse_feed(json_feed, url="https://news.example/feed.json", now=NOW)
    assert [item.url for item in parsed.items] == ["https://news.example/2"]
    assert parsed.refused == ["not an http(s) URL: 'file:///etc/passwd'"]
    sitemap = (
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>https://user:pw@news.example/x</loc></url>"
        b"<url><loc>https://news.example/y</loc></url></urlset>"
    )
    parsed = parse_feed(sitemap, url="https://news.example/sitemap.xml", now=NOW)
    assert [item.url for item in parsed.items] == ["https://news.example/y"]
    assert parsed.refused == ["URL carries credentials: https://…@news.example"]


@pytest.mark.parametrize(
    "ref", ["&#xD800;", "&#55296;", "&#xDE00;", "&#x110000;", "&#99999999999;"]
)
def test_charref_to_no_character_costs_one_field_not_the_feed(ref: str) -> None:
    # feedparser's loose parser ran chr(n).encode("utf-8") on it: UnicodeEncodeError, and
    # the whole feed was an error:internal with no items
    body = (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
        f"<item><title>bad {ref} ref</title><link>/a/1</link></item>"
        "<item><title>fine &#x41;&#66;</title><link>/a/2</link></item>"
        "</channel></rss>"
    ).encode()
    feed = parse_feed(body, url="https://news.example/feed", now=NOW)
    bad, fine = feed.items
    assert bad.title == "bad \ufffd ref"
    assert fine.title == "fine AB"
    assert feed.cleaned[0] == "document: 1 character reference(s) to no character"


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        ("https://news.example/a\x00b", "https://news.example/ab"),  # raw NUL byte
        ("https://news.example/a&#0;b", "https://news.example/ab"),
        ("https://news.example/a&#x1B;b", "https://news.example/ab"),
        ("https://news.example/a&#xD800;b", "https://news.example/a\ufffdb"),
    ],
)
def test_one_forbidden_character_costs_the_sitemap_nothing(loc: str, expected: str) -> None:
    # expat refused the whole document and feedparser does not read sitemaps: not_a_feed
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{loc}</loc></url>"
        "<url><loc>https://news.example/fine</loc><lastmod>2026-11-21T10:00:00+03:00</lastmod></url>"
        "</urlset>"
    ).encode()
    feed = parse_feed(body, url="https://news.example/sitemap.xml", now=NOW)
    assert feed.kind == "sitemap"
    assert [item.url for item in feed.items] == [expected, "https://news.example/fine"]
    assert feed.items[1].published_at == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
    assert feed.cleaned and feed.cleaned[0].startswith("document: 1 ")


def test_utf16_feed_with_a_reference_to_no_character_keeps_its_items() -> None:
    body = (
        '\ufeff<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel>'
        "<item><title>Kerkûk &#xD800;</title><link>/a/1</link></item>"
        "<item><title>Hewlêr</title><link>/a/2</link></item></channel></rss>"
    ).encode("utf-16")
    feed = parse_feed(body, url="https://news.example/feed", now=NOW)
    assert [item.title for item in feed.items] == ["Kerkûk \ufffd", "Hewlêr"]


def test_json_nested_past_the_recursion_limit_is_not_a_feed() -> None:
    # RecursionError escaped parse_feed: the poll logged a crash (error:internal)
    body = b'{"version": "https://jsonfeed.org/version/1.1", "items": ' + b"[" * 100_000
    with pytest.raises(PermanentError) as caught:
        parse_feed(body, url="https://news.example/feed.json", now=NOW)
    assert caught.value.kind == "not_a_feed"


def test_item_url_over_the_sitemap_limit_is_refused_with_its_reason() -> None:
    # 9,000 characters reached the seen_links insert, which refused it as "not stored (Error)"
    long_url = "https://news.example/a?x=" + "q" * 9000
    body = (
        "<rss version='2.0'><channel><title>t</title>"
        f"<item><link>{long_url}</link></item>"
        "<item><link>https://news.example/ok</link></item></channel></rss>"
    ).encode()
    feed = parse_feed(body, url="https://news.example/feed", now=NOW)
    assert [item.url for item in feed.items] == ["https://news.example/ok"]
    assert feed.refused[0].startswith("URL of 9025 bytes, over 2048: https://news.example/a?x=qq")


@pytest.mark.parametrize(
    "date", ["0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "Thu, 01 Jan 1970 00:00:00 GMT"]
)
def test_placeholder_dates_are_no_date(date: str) -> None:
    # CMSs write these for "no date"; they reached links and the feed's cadence history
    body = (
        "<rss version='2.0'><channel><title>t</title>"
        f"<item><link>https://news.example/a</link><pubDate>{date}</pubDate></item>"
        "</channel></rss>"
    ).encode()
    feed = parse_feed(body, url="https://news.example/feed", now=NOW)
    assert feed.items[0].published_at is None
