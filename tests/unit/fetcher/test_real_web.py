"""What the real web's feeds and servers get wrong (issue 12): dates in every format feeds
carry, text PostgreSQL cannot store, redirect stubs, and headers that lie about the bytes."""

from __future__ import annotations

import base64
import gzip
import html
import zlib
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

import pytest

from services.fetcher.dates import parse_feed_date
from services.fetcher.feeds import parse_feed
from services.fetcher.fetch import sniff_coding
from services.fetcher.stubs import find_stub_target
from shared.errors import PermanentError
from shared.messages import FeedEntry, Link, clean_text
from tests.unit.fetcher.conftest import LoopbackServer, link

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SEVEN_UTC = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)

# --- 1. dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Mon, 30 Nov 2026 10:00:00 +03:00",  # RFC 822 with a colon in the offset
        "Mon, 30 Nov 2026 10:00:00 +0300",
        "Mon, 30 Nov 2026 10:00 +0300",  # no seconds
        "30 Nov 2026 10:00:00 +0300",  # no weekday
        "Mon, 30 Nov 26 10:00:00 +0300",  # two-digit year
        "Mon, 30 Nov 2026 09:00:00 EET",  # named zones feedparser does not know
        "Mon, 30 Nov 2026 10:00:00 MSK",
        "Mon, 30 Nov 2026 10:00:00 TRT",
        "Mon, 30 Nov 2026 10:00:00 AST",  # Arabia Standard Time in this corpus
        "Mon, 30 Nov 2026 10:00:00 GMT+3",
        "Mon, 30 Nov 2026 10:00:00 GMT+03:00",
        "Mon, 30 Nov 2026 10:30:00 IRST",  # +03:30
        "Mon, 30 Nov 2026 02:00:00 EST",  # US zones keep their meaning
        "2026-11-30T10:00:00+03:00",  # ISO 8601 / W3C-DTF (also inside RSS)
        "2026-11-30T07:00:00Z",
        "2026-11-30T10:00+03:00",  # W3C-DTF without seconds
        "2026-11-30T10:00:00.250+03:00",
        "2026-11-30 07:00:00",  # no zone: UTC
        "2026/11/30 07:00:00",  # slashes (feedparser's ISO handler read 1 November)
        "Mon, 30 Nov 2026 10:00:00 +0300 (EEST)",  # zone comment
        "Mon, 30 Nov 2026 10:00:00 GMT+0300",
        "2026-11-30T10:00:00+0300",  # ISO offset without colon
        "Pzt, 30 Kas 2026 10:00:00 +0300",  # Turkish
        "30 Kasım 2026 10:00:00 +0300",
        "Montag, 30. November 2026 08:00:00 +0100",  # German
        "Lun, 30 Nov 2026 08:00:00 +0100",  # French/Spanish weekday
        "الاثنين 30 نوفمبر 2026 - 10:00 +0300",  # Arabic (Egyptian/Gulf month name)
        "الإثنين، 30 تشرين الثاني 2026 10:00 +0300",  # Arabic (Iraqi/Levantine month name)
        "٣٠ نوفمبر ٢٠٢٦ ١٠:٠٠ +0300",  # Eastern Arabic digits
        "2026-11-30 10:00:00 +03",  # two-digit ISO offset (the lenient handler gave 00:00)
        "2026-11-30T10:00:00+03",
        "20261130T100000+0300",  # ISO 8601 basic format (also gave 00:00)
        "20261130T070000Z",
        "1796022000",  # Unix time (read as 28 March 1796)
        "1796022000000",  # Unix time in milliseconds
    ],
)
def test_feed_date_formats_mean_0700_utc(text: str) -> None:
    assert parse_feed_date(text) == SEVEN_UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "garbage",
        "2013-xx-27",
        "2003-12-31T25:14:55Z",
        "yesterday",
        "x" * 300,
        None,
        "Mon, 30 Nov 2026 10:00:00 +9999",  # no such offset (was read as 26 Nov 05:21)
        "Mon, 30 Nov 2026 10:00:00 +0375",
        True,
    ],
)
def test_what_is_not_a_date_is_none(text: str | bool | None) -> None:
    assert parse_feed_date(text) is None


def test_dates_only_a_date_are_midnight_utc() -> None:
    assert parse_feed_date("2026-11-30") == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_feed_date("05/11/2026 10:00") == datetime(2026, 11, 5, 10, tzinfo=UTC)  # DMY
    assert parse_feed_date("11/30/2026 10:00 AM") == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert parse_feed_date("30.11.2026 10:00") == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert parse_feed_date("20261130") == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_feed_date("2026-11-30 00:00:00 +03") == datetime(2026, 11, 29, 21, tzinfo=UTC)


def test_unix_time_as_a_json_number() -> None:
    assert parse_feed_date(1796022000) == SEVEN_UTC


def rss_item(inner: str, *, item_attrs: str = "", channel_attrs: str = "") -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/">'
        f"<channel {channel_attrs}><title>W</title><link>/home</link>"
        f"<item {item_attrs}>{inner}</item></channel></rss>"
    ).encode()


def test_rss_pubdate_with_colon_offset_is_0700_utc() -> None:
    body = rss_item(
        "<link>https://n.example/a</link><pubDate>Mon, 30 Nov 2026 10:00:00 +03:00</pubDate>"
    )
    (item,) = parse_feed(body, url="https://n.example/feed", now=NOW).items
    assert item.published_at == SEVEN_UTC


def test_dc_date_dcterms_and_unknown_date_formats_never_lose_the_feed() -> None:
    body = (
        rss_item("<link>https://n.example/a</link><dc:date>2026-11-30T10:00:00+03:00</dc:date>")
        + b""
    )
    assert parse_feed(body, url="https://n.example/f", now=NOW).items[0].published_at == SEVEN_UTC
    body = rss_item(
        "<link>https://n.example/a</link><dcterms:issued>2026-11-30T07:00:00Z</dcterms:issued>"
    )
    assert parse_feed(body, url="https://n.example/f", now=NOW).items[0].published_at == SEVEN_UTC
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title><entry>'
        b'<link href="https://n.example/a"/><published>sometime last week</published>'
        b"<updated>Mon, 30 Nov 2026 10:00:00 EEST</updated></entry></feed>"
    )
    (item,) = parse_feed(atom, url="https://n.example/atom", now=NOW).items  # no AttributeError
    assert item.published_at == SEVEN_UTC


# --- relative URLs, ids, authors, encoded content --------------------------------------


def test_xml_base_on_channel_and_item_then_document_url() -> None:
    body = rss_item(
        "<link>story.html</link>",
        item_attrs='xml:base="2026/"',
        channel_attrs='xml:base="https://cdn.example/news/"',
    )
    feed = parse_feed(body, url="https://n.example/feed.xml", now=NOW)
    assert feed.items[0].url == "https://cdn.example/news/2026/story.html"
    assert feed.site_url == "https://cdn.example/home"
    plain = rss_item("<link>/a/b</link>")
    assert parse_feed(plain, url="https://n.example/x/feed", now=NOW).items[0].url == (
        "https://n.example/a/b"
    )


def test_atom_entry_whose_only_url_is_its_id_is_kept() -> None:
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://n.example/">'
        b"<title>x</title><link href="
        b'"/site"/><entry><id>https://n.example/2026/story-1</id>'
        b'<title>S</title><content type="text">Body</content></entry>'
        b"<entry><id>tag:n.example,2026:2</id><title>no url</title></entry></feed>"
    )
    feed = parse_feed(atom, url="https://n.example/atom.xml", now=NOW)
    assert [i.url for i in feed.items] == ["https://n.example/2026/story-1"]
    assert feed.items[0].summary == "Body"
    assert feed.site_url == "https://n.example/site"


def test_authors_split_from_email_and_base64_content_decoded() -> None:
    body = rss_item(
        "<link>https://n.example/a</link><author>desk@rudaw.online (Rudaw Desk)</author>"
    )
    assert parse_feed(body, url="https://n.example/f", now=NOW).items[0].authors == ("Rudaw Desk",)
    encoded = base64.b64encode(b"<p>Erbil airport reopened</p>").decode()
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title><entry>'
        '<link href="https://n.example/b"/><author><name>A. Reporter</name>'
        "<email>a@n.example</email></author>"
        f'<content type="text/html" mode="base64">{encoded}</content></entry></feed>'
    ).encode()
    # Atom 0.3-style base64 content: feedparser decodes it
    item = parse_feed(atom, url="https://n.example/atom", now=NOW).items[0]
    assert item.authors == ("A. Reporter",)
    assert item.summary == "Erbil airport reopened"


@pytest.mark.parametrize("declaration", ["", ' encoding="utf-8"', ' encoding="windows-1254"'])
@pytest.mark.parametrize("content_type", [None, "text/xml", "application/rss+xml; charset=utf-8"])
def test_turkish_feed_in_windows_1254_whatever_it_declares(
    declaration: str, content_type: str | None
) -> None:
    # feedparser falls back to windows-1252 for bytes that are not in their declared charset
    title = "Şırnak'ta operasyon: güvenlik güçleri ve kaynakları Irak'ın kuzeyinde"
    body = (
        f'<?xml version="1.0"{declaration}?><rss version="2.0"><channel><title>{title}</title>'
        f"<item><title>{title}</title><link>https://n.example/a</link></item></channel></rss>"
    ).encode("cp1254")
    feed = parse_feed(body, url="https://n.example/f", content_type=content_type, now=NOW)
    assert feed.title == title and feed.items[0].title == title


def test_json_feed_falls_back_to_date_modified() -> None:
    body = (
        b'{"version": "https://jsonfeed.org/version/1", "items": [{"id": "1",'
        b' "url": "https://n.example/a", "date_modified": "2026-11-30T10:00:00+03:00"}]}'
    )
    feed = parse_feed(body, url="https://n.example/feed.json", now=NOW)
    assert feed.items[0].published_at == SEVEN_UTC


@pytest.mark.parametrize("prefix", [b"\n\n  ", b"\xef\xbb\xbf\r\n", b"\t"])
def test_blank_lines_before_the_xml_declaration_lose_nothing(prefix: bytes) -> None:
    sitemap = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<urlset '
        b'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>https://n.example/a</loc></url></urlset>"
    )
    parsed = parse_feed(prefix + sitemap, url="https://n.example/sitemap.xml", now=NOW)
    assert (parsed.kind, [i.url for i in parsed.items]) == ("sitemap", ["https://n.example/a"])
    rss = prefix + rss_item("<link>https://n.example/b</link>")
    parsed = parse_feed(rss, url="https://n.example/feed", now=NOW)
    assert [i.url for i in parsed.items] == ["https://n.example/b"]
    assert parsed.recovered_error is None


def test_feedburner_orig_link_is_the_article() -> None:
    body = (
        b'<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">'
        b"<channel><title>x</title><item><link>http://feedproxy.google.com/~r/x/~3/abc/</link>"
        b"<feedburner:origLink>https://n.example/real-story</feedburner:origLink>"
        b"</item></channel></rss>"
    )
    feed = parse_feed(body, url="https://feeds.example/x", now=NOW)
    assert [i.url for i in feed.items] == ["https://n.example/real-story"]


# --- 2a. text PostgreSQL and the topics cannot carry ------------------------------------


def test_clean_text_removes_nul_controls_and_lone_surrogates() -> None:
    assert clean_text("ok\ttext\n") == ("ok\ttext\n", None)
    assert clean_text("a\x00b\x07c\ud800") == ("abc\ufffd", "1 NUL, 1 control, 1 surrogate")


def test_messages_clean_every_field_and_record_it() -> None:
    entry = FeedEntry(title="Bad\x00 title", authors=["A\x01"], summary="s\udc80")
    record = Link(url="https://n.example/a", host="n.example", entry=entry, discovered_at=NOW)
    assert record.entry.title == "Bad title" and record.entry.authors == ["A"]
    assert sorted(record.text_cleaned) == [
        "entry.authors[0]: 1 control",
        "entry.summary: 1 surrogate",
        "entry.title: 1 NUL",
    ]
    again = Link.from_bytes(record.to_bytes())  # lone surrogates would fail to encode
    assert again.text_cleaned == record.text_cleaned
    decoded = Link.from_bytes(
        b'{"url":"https://n.example/b","host":"n.example",'
        b'"discovered_at":"2026-11-30T00:00:00Z","entry":{"title":"x\\u0000y"}}'
    )
    assert decoded.entry.title == "xy" and decoded.text_cleaned == ["entry.title: 1 NUL"]


def test_json_feed_nul_is_cleaned_where_it_enters_and_listed() -> None:
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "Wire\\u0000",'
        b' "items": [{"id": "1", "url": "https://n.example/a", "title": "Alert\\u0000\\ud800",'
        b' "date_published": "2026-11-30T10:00:00+03:00"}]}'
    )
    feed = parse_feed(body, url="https://n.example/feed.json", now=NOW)
    assert feed.title == "Wire"
    assert feed.items[0].title == "Alert\ufffd"
    assert feed.items[0].published_at == SEVEN_UTC
    assert feed.cleaned == ["feed title: 1 NUL", "item 1 title: 1 NUL, 1 surrogate"]


# --- 3. redirect stubs ------------------------------------------------------------------

ARTICLE = (
    "<html><head><title>Story</title></head><body><article>"
    + "<p>Security officials in Erbil said the checkpoint reopened on Monday.</p>" * 5
    + "</article></body></html>"
)


def stub(target: str, delay: str = "0") -> str:
    return (
        f'<html><head><meta http-equiv="refresh" content="{delay};url={target}">'
        "</head><body></body></html>"
    )


def test_stub_detection_rules() -> None:
    assert find_stub_target(stub("https://x.example/a")) == "https://x.example/a"
    assert find_stub_target(stub("'/b'", delay="1")) == "/b"
    assert find_stub_target('<script>window.location.replace("/c")</script>') == "/c"
    assert find_stub_target(stub("/late", delay="30")) is None  # a self-reload, not a forward
    noscript = ARTICLE.replace(
        "<head>", '<head><noscript><meta http-equiv="refresh" content="0;url=/nojs"></noscript>'
    )
    assert find_stub_target(noscript) is None
    full_with_refresh = ARTICLE.replace(
        "<head>", '<head><meta http-equiv="refresh" content="0;url=/other">'
    )
    assert find_stub_target(full_with_refresh) is None  # article text: not a stub


@pytest.mark.parametrize(
    ("content", "target"),
    [
        ("0; url='/a/x.html' trailing", "/a/x.html"),  # a quoted URL ends at its quote
        ('0; URL="/a/x.html"', "/a/x.html"),
        (".5; url=/a/x", "/a/x"),  # HTML reads ".5" as 0 s (the stub was not followed)
        ("0.5.; url=/a/x", "/a/x"),
        ("0 ;  URL = /a/x ", "/a/x"),
        ("; url=/a/x", None),  # no time at all is no refresh
        ("x; url=/a/x", None),
        ("0", None),  # a reload of itself
    ],
)
def test_refresh_content_read_as_html_reads_it(content: str, target: str | None) -> None:
    attr = html.escape(content, quote=True)
    page = f'<html><head><meta http-equiv="refresh" content="{attr}"></head></html>'
    assert find_stub_target(page) == target


async def test_stub_is_followed_and_counted_in_the_chain(
    server: LoopbackServer, make_fetcher
) -> None:
    server.static("/alert", stub("/r"))
    server.static(
        "/r", b"", status=302, headers={"Location": server.url("/js")}, content_type="text/plain"
    )
    server.static("/js", "<html><script>location.replace('/story')</script></html>")
    server.static("/story", ARTICLE)
    page = await (await make_fetcher()).fetch(link(server.url("/alert")))
    assert page.final_url == server.url("/story")
    assert page.redirects == [server.url("/alert"), server.url("/r"), server.url("/js")]
    assert "checkpoint reopened" in page.html


async def test_stub_loops_and_limits_fail_like_http_redirects(
    server: LoopbackServer, make_fetcher
) -> None:
    server.static("/a", stub("/b"))
    server.static("/b", stub("/a"))
    fetcher = await make_fetcher()
    with pytest.raises(PermanentError) as loop:
        await fetcher.fetch(link(server.url("/a")))
    assert loop.value.kind == "redirect_loop"
    for n in range(4):
        server.static(f"/s{n}", stub(f"/s{n + 1}"))
    server.static("/s4", ARTICLE)
    limited = await make_fetcher(max_redirects=2)
    with pytest.raises(PermanentError) as many:
        await limited.fetch(link(server.url("/s0")))
    assert many.value.kind == "too_many_redirects"


async def test_noscript_refresh_on_an_article_is_not_followed(
    server: LoopbackServer, make_fetcher
) -> None:
    page_html = ARTICLE.replace(
        "<head>", '<head><noscript><meta http-equiv="refresh" content="0;url=/nojs"></noscript>'
    )
    server.static("/full", page_html)
    page = await (await make_fetcher()).fetch(link(server.url("/full")))
    assert page.final_url == server.url("/full") and not server.hits_for("/nojs")


async def test_stub_to_a_private_scheme_is_refused(server: LoopbackServer, make_fetcher) -> None:
    server.static("/evil", stub("file:///etc/passwd"))
    with pytest.raises(PermanentError) as exc:
        await (await make_fetcher()).fetch(link(server.url("/evil")))
    assert exc.value.kind == "ssrf_blocked"


# --- 4. servers that lie about encoding -------------------------------------------------

FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>'
    b"<item><title>A</title><link>https://n.example/a</link></item></channel></rss>"
)


def test_sniff_coding_trusts_magic_numbers() -> None:
    assert sniff_coding(gzip.compress(FEED)[:16], "identity") == "gzip"
    assert sniff_coding(FEED[:16], "gzip") == "identity"
    assert sniff_coding(b'\xef\xbb\xbf  {"version"', "br") == "identity"
    assert sniff_coding(zlib.compress(FEED)[:16], "gzip") == "deflate"
    assert sniff_coding(gzip.compress(FEED)[:16], "br") == "gzip"
    assert sniff_coding(b"\x8b\x00\x80garbage", "br") == "br"


@pytest.mark.parametrize(
    ("body", "headers", "content_type"),
    [
        (FEED, {"Content-Encoding": "gzip"}, "application/rss+xml"),  # declared, not gzip
        (FEED, {"Content-Encoding": "br"}, "application/rss+xml"),
        (FEED, {"Content-Encoding": "deflate"}, "application/rss+xml"),
        (gzip.compress(FEED), {}, "application/x-gzip"),  # .gz served as a file
        (gzip.compress(gzip.compress(FEED)), {"Content-Encoding": "gzip"}, "application/x-gzip"),
        (zlib.compress(FEED), {"Content-Encoding": "gzip"}, "application/rss+xml"),
        (FEED, {}, "text/html"),  # wrong Content-Type: the bytes are a feed
    ],
)
async def test_feed_bytes_beat_lying_headers(
    server: LoopbackServer, make_fetcher, body: bytes, headers: dict[str, str], content_type: str
) -> None:
    server.static("/feed", body, content_type=content_type, headers=headers)
    result = await (await make_fetcher()).get(server.url("/feed"))
    parsed = parse_feed(
        result.body, url=result.final_url, content_type=result.headers.get("content-type")
    )
    assert [i.url for i in parsed.items] == ["https://n.example/a"]


async def test_undeclared_gzip_bomb_is_still_capped(server: LoopbackServer, make_fetcher) -> None:
    bomb = gzip.compress(b"<" + b" " * (8 * 1024 * 1024))
    server.static("/sitemap.xml.gz", bomb, content_type="application/x-gzip")
    fetcher = await make_fetcher(max_page_bytes=1024 * 1024)
    with pytest.raises(PermanentError) as exc:
        await fetcher.get(server.url("/sitemap.xml.gz"), max_bytes=1024 * 1024)
    assert exc.value.kind == "too_large"


def test_future_tolerance_still_applies() -> None:
    later = (NOW + timedelta(days=3)).strftime("%a, %d %b %Y %H:%M:%S +0300")
    body = rss_item(f"<link>https://n.example/a</link><pubDate>{later}</pubDate>")
    assert parse_feed(body, url="https://n.example/f", now=NOW).items[0].published_at is None


async def test_big_feeds_parse_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from services.fetcher import poll

    threads: list[str] = []
    real = poll.parse_feed

    def spy(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(poll, "parse_feed", spy)
    items = "".join(f"<item><link>https://n.example/{i}</link></item>" for i in range(4000))
    big = rss_item("<link>https://n.example/x</link>").replace(
        b"<item >", items.encode() + b"<item >"
    )
    small = rss_item("<link>https://n.example/y</link>")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-parse") as pool:
        parsed = await poll.parse_off_loop(
            big, url="https://n.example/f", content_type=None, now=NOW, executor=pool
        )
        await poll.parse_off_loop(
            small, url="https://n.example/f", content_type=None, now=NOW, executor=pool
        )
    assert len(big) >= poll.PARSE_OFFLOAD_BYTES and len(parsed.items) == 4001
    assert threads[0].startswith("feed-parse") and threads[1] == threading.main_thread().name


def test_dateparser_budget_bounds_refused_strings_and_the_cache_answers_repeats() -> None:
    from services.fetcher import dates

    with dates.dateparser_budget(0.0) as state:
        # budget spent: a string dateparser has not seen is not read (5,000 odd dates were
        # 13 s of CPU in every poll)...
        assert parse_feed_date("30 Kasım 2026 10:00:00 +0300 budget") is None
        assert state[1] == 1
        # ...but feedparser's formats still are
        assert parse_feed_date("Mon, 30 Nov 2026 10:00:00 +0300") == SEVEN_UTC
    assert parse_feed_date("30 Kasım 2026 10:00:00 +0300") == SEVEN_UTC
    with dates.dateparser_budget(0.0):
        assert parse_feed_date("30 Kasım 2026 10:00:00 +0300") == SEVEN_UTC  # cached


def test_parse_feed_spends_a_bounded_time_on_dates_it_cannot_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.fetcher import dates

    monkeypatch.setattr(dates, "_dateparser_cache", OrderedDict())
    monkeypatch.setattr(dates, "DATEPARSER_BUDGET_S", 0.0)
    body = rss_item("<pubDate>Pazartesi, 30 Kasım 2026 10:00 +0300</pubDate><link>/a</link>")
    feed = parse_feed(body, url="https://news.example/feed", now=NOW)
    assert feed.items[0].published_at is None  # over budget: not read, the feed is kept
    monkeypatch.setattr(dates, "DATEPARSER_BUDGET_S", 1.0)
    feed = parse_feed(body, url="https://news.example/feed", now=NOW)
    assert feed.items[0].published_at == SEVEN_UTC
