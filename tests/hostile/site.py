"""The hostile-input corpus: one loopback host per case, each serving a feed (or being one).

A case is data: its name, what it attacks, whether the hostility is in the feed or in the
page(s) the feed links to, and a responder ``(path) -> Response``. Each case listens on its own
127.1.0.x address so a slow or blocked case holds only its own per-host politeness slot.
The guard cases (private redirect, a name that resolves to loopback) cannot run in the
pipeline, which must allow loopback to reach this server at all: see :mod:`tests.hostile.guard`.
"""

from __future__ import annotations

import gzip
import html
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.bench.corpus import Corpus, paragraphs

FIRST_ADDRESS = (127, 1, 0, 2)
BIG_FEED_ITEMS = 10_000
HUGE_PAGE_BYTES = 50 * 1024 * 1024
BOMB_MEMBER_BYTES = 16 * 1024 * 1024
BOMB_MEMBERS = 64  # 1 GiB once decompressed
DRIP_BYTES = 400
DRIP_INTERVAL_S = 0.25  # 100 s for the whole page: longer than the fetch deadline
ENORMOUS_DOM_NODES = 300_000
NOW = datetime.now(UTC)


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterator[bytes] = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # between chunks of an iterator body


@dataclass
class Case:
    name: str
    attack: str
    where: str  # "feed" (the feed itself) | "page" (what it links to)
    respond: Callable[[Case, str], Response | None]
    #: items in the case's feed, when known: fewer recorded (items_seen) means some were
    #: dropped without a record
    feed_items: int | None = None
    ip: str = ""
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def feed_url(self) -> str:
        return f"{self.base}/feed.xml"


# --- content helpers ---------------------------------------------------------------------------


ENGLISH_BODIES = 16


@cache
def _english(n: int) -> list[str]:
    """Body *n*: every case uses its own, or the parser would rightly call them duplicates."""
    corpus = Corpus(articles=ENGLISH_BODIES, hosts=1, seed=404)
    return paragraphs(corpus.articles[n])


TURKISH = (
    "Milli Savunma Bakanlığı, Irak'ın kuzeyindeki operasyon bölgesinde dün akşam yapılan "
    "hava harekâtında çok sayıda hedefin imha edildiğini açıkladı. Açıklamada, sınır "
    "güvenliğinin sağlanması için çalışmaların kararlılıkla sürdürüleceği belirtildi. "
    "Bölgedeki köylerde yaşayan vatandaşlar, gece boyunca patlama sesleri duyduklarını "
    "söyledi. Yetkililer, sivil kayıp olmadığını ve tüm birliklerin üslerine güvenle "
    "döndüğünü ifade etti. Uzmanlar ise kış aylarında operasyonların yoğunlaşabileceğine "
    "dikkat çekerek, bölgedeki dengelerin yakından takip edilmesi gerektiğini vurguladı."
)
ARABIC = (
    "أعلنت وزارة الداخلية العراقية اليوم عن إلقاء القبض على عدد من المشتبه بهم في عمليات "
    "أمنية متفرقة شمال البلاد، وقالت في بيان رسمي إن القوات الأمنية نفذت مداهمات دقيقة "
    "بناء على معلومات استخبارية. وأضاف البيان أن العمليات ستستمر حتى يتم تأمين المناطق "
    "الحدودية بالكامل، مشيرا إلى أن الأوضاع مستقرة وأن الحياة تسير بشكل طبيعي في المدن "
    "والقرى المجاورة. ودعا المسؤولون المواطنين إلى التعاون مع الأجهزة الأمنية والإبلاغ عن "
    "أي تحركات مشبوهة."
)
NO_ENTITIES = (
    "the committee said on the morning of the meeting that the new rules would apply to "
    "every garden allotment, and that water for the vegetable beds would be shared more "
    "fairly during the dry weeks. members were asked to keep paths clear, to compost what "
    "they could and to report broken taps to the office. several gardeners said the changes "
    "were sensible, although some worried that the waiting list would grow longer. the "
    "secretary added that seeds would be swapped at the next gathering and that volunteers "
    "were needed to repair the fence behind the greenhouse before the first frost."
)


def article_html(
    title: str,
    paras: list[str],
    *,
    lang: str = "en",
    dir_: str = "ltr",
    charset: str | None = "utf-8",
    ld: dict[str, Any] | None = None,
    published: datetime | None = None,
    canonical: str | None = None,
) -> str:
    e = html.escape
    published = published or NOW - timedelta(hours=3)
    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": title,
        "datePublished": published.isoformat(),
        "author": {"@type": "Person", "name": "Deniz Aksoy"},
        **(ld or {}),
    }
    meta = f'<meta charset="{charset}">' if charset else ""
    canon = f'<link rel="canonical" href="{e(canonical)}">' if canonical else ""
    body = "\n".join(f"<p>{e(p)}</p>" for p in paras)
    return (
        f'<!DOCTYPE html><html lang="{lang}" dir="{dir_}"><head>{meta}<title>{e(title)}</title>'
        f'{canon}<meta property="og:type" content="article">'
        f'<script type="application/ld+json">{json.dumps(data, ensure_ascii=False)}</script>'
        f"</head><body><header><nav><a href='/'>Home</a></nav></header><main><article>"
        f"<h1>{e(title)}</h1>{body}</article></main><footer>© Hostile Test</footer></body></html>"
    )


def rss(items: list[tuple[str, str, str]], *, title: str = "Hostile feed") -> bytes:
    """(title, link, guid) items as RSS 2.0; links are written exactly as given."""
    out = []
    for i, (t, link, guid) in enumerate(items):
        out.append(
            f"<item><title>{html.escape(t)}</title><link>{html.escape(link)}</link>"
            f'<guid isPermaLink="false">{html.escape(guid)}</guid>'
            f"<pubDate>{format_datetime(NOW - timedelta(minutes=i + 5))}</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{html.escape(title)}</title><link>http://127.0.0.1/</link>"
        f"<description>x</description>{''.join(out)}</channel></rss>"
    ).encode()


def _feed_to(case: Case, *paths: str) -> bytes:
    return rss(
        [(f"{case.name} {i}", case.base + p, f"{case.name}-{i}") for i, p in enumerate(paths)]
    )


def _page_case(page: Callable[[Case], Response]) -> Callable[[Case, str], Response | None]:
    """A case whose feed links one page, /story, served by *page*."""

    def respond(case: Case, path: str) -> Response | None:
        if path == "/feed.xml":
            return Response(body=_feed_to(case, "/story"), content_type="application/rss+xml")
        if path == "/story":
            return page(case)
        return None

    return respond


def _feed_case(
    body: bytes, content_type: str = "application/rss+xml"
) -> Callable[[Case, str], Response | None]:
    """A case whose feed document is *body*; ``BASE`` in it becomes the case's own origin, so
    any link the fetcher salvages from it stays on loopback (404)."""

    def respond(case: Case, path: str) -> Response | None:
        if path != "/feed.xml":
            return None
        return Response(body=body.replace(b"BASE", case.base.encode()), content_type=content_type)

    return respond


def _html(text: str, **kw: Any) -> Response:
    return Response(body=text.encode("utf-8"), **kw)


# --- feed-level cases -------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>x</title><link>BASE/</link></item></channel></rss>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>&xxe;</title><item><title>&xxe;</title><link>BASE/x</link></item></channel></rss>"""
MALFORMED_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Broken</title><item><title>Unclosed <b>tag</title>
<link>BASE/1</link></item><item><title>Second"""
MALFORMED_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Broken atom</title>
<entry><title>One</title><link href="BASE/1"/><updated>not a date</updated></entry>
<entry><title>Two &nbsp; &bogus;</title><link href="BASE/2"/></entry"""
EMPTY_FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Empty</title>'
    b"<link>BASE/</link><description>nothing</description></channel></rss>"
)


def _big_feed(case: Case, path: str) -> Response | None:
    if path == "/feed.xml":
        items = [(f"Item {i}", f"{case.base}/gone/{i}", f"big-{i}") for i in range(BIG_FEED_ITEMS)]
        return Response(body=rss(items), content_type="application/rss+xml")
    if path.startswith("/gone/"):
        return Response(status=410, body=b"gone")
    return None


def _duplicate_guids(case: Case, path: str) -> Response | None:
    if path == "/feed.xml":
        items = [(f"Version {i}", f"{case.base}/story-{i}", "same-guid") for i in range(3)]
        return Response(body=rss(items), content_type="application/rss+xml")
    if path.startswith("/story-"):
        i = int(path.rsplit("-", 1)[1])
        return _html(article_html(f"Duplicate guid story {i}", _english(i)))
    return None


def _relative_links(case: Case, path: str) -> Response | None:
    if path == "/feed.xml":
        items = [
            ("Relative", "/news/relative-story", "rel-1"),
            ("Dot", "../news/dot-story", "rel-2"),
        ]
        return Response(body=rss(items), content_type="application/rss+xml")
    if path in ("/news/relative-story", "/news/dot-story"):
        return _html(article_html(f"Relative {path}", _english(3 if "relative" in path else 4)))
    return None


def _bad_schemes(case: Case, path: str) -> Response | None:
    if path == "/feed.xml":
        items = [
            ("File", "file:///etc/passwd", "s-1"),
            ("FTP", "ftp://127.0.0.1/pub/secret.txt", "s-2"),
            ("JS", "javascript:alert(document.cookie)", "s-3"),
            ("Data", "data:text/html,<script>alert(1)</script>", "s-4"),
            ("Good", f"{case.base}/good-story", "s-5"),
        ]
        return Response(body=rss(items), content_type="application/rss+xml")
    if path == "/good-story":
        return _html(article_html("The one good link among bad schemes", _english(5)))
    return None


# --- page-level cases -------------------------------------------------------------------------


def _huge_page(case: Case) -> Response:
    def chunks() -> Iterator[bytes]:
        yield b"<!DOCTYPE html><html><body><p>"
        block = b"A" * 65536
        for _ in range(HUGE_PAGE_BYTES // len(block)):
            yield block

    return Response(body=chunks(), headers={"X-Size": str(HUGE_PAGE_BYTES)})


@cache
def _bomb() -> bytes:
    member = gzip.compress(b"<p>" + b"\0" * BOMB_MEMBER_BYTES, 9)
    return member * BOMB_MEMBERS  # concatenated gzip members decode to one long stream


def _gzip_bomb(case: Case) -> Response:
    return Response(body=_bomb(), headers={"Content-Encoding": "gzip"})


def _slow_drip(case: Case) -> Response:
    text = article_html("Slow drip", _english(6)).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(DRIP_BYTES):
            yield text[i : i + 1]
        yield text[DRIP_BYTES:]

    return Response(body=chunks(), delay_s=DRIP_INTERVAL_S)


def _redirect_loop(case: Case, path: str) -> Response | None:
    if path == "/feed.xml":
        return Response(body=_feed_to(case, "/loop-a"), content_type="application/rss+xml")
    if path == "/loop-a":
        return Response(status=302, headers={"Location": "/loop-b"})
    if path == "/loop-b":
        return Response(status=301, headers={"Location": f"{case.base}/loop-a"})
    return None


def _invalid_utf8(case: Case) -> Response:
    text = article_html("Invalid UTF-8 bytes in the body", _english(7)).encode()
    cut = text.index(b"<p>") + 40
    return Response(body=text[:cut] + b"\xff\xfe\xc3\x28 \xe2\x82" + text[cut:])


def _misdeclared_charset(case: Case) -> Response:
    # header and meta say ISO-8859-1; the bytes are UTF-8 Turkish (classic mojibake source)
    paras = [TURKISH, "Diyarbakır ve Şırnak'ta güvenlik önlemleri artırıldı. " * 4]
    text = article_html(
        "Güvenlik güçleri Şırnak'ta operasyon başlattı", paras, lang="tr", charset="iso-8859-1"
    )
    return Response(body=text.encode("utf-8"), content_type="text/html; charset=iso-8859-1")


def _windows1254_as_utf8(case: Case) -> Response:
    # header says UTF-8, bytes are windows-1254 (Turkish legacy encoding)
    paras = [TURKISH, "Hakkari ve Van illerinde çalışmalar sürüyor. " * 4]
    text = article_html("Sınır hattında yoğun güvenlik önlemi", paras, lang="tr", charset=None)
    return Response(body=text.encode("cp1254"), content_type="text/html; charset=utf-8")


def _no_text(case: Case) -> Response:
    links = "".join(f"<li><a href='/s/{i}'>Section {i}</a></li>" for i in range(20))
    return _html(
        f"<html><head><title>Home</title></head><body><nav><ul>{links}</ul></nav><div id='app'></div><script>render()</script></body></html>"
    )


def _cookie_wall(case: Case) -> Response:
    return _html(
        "<html><head><title>Before you continue</title></head><body>"
        "<div class='consent'><h1>We value your privacy</h1><p>We and our 847 partners use "
        "cookies to store and access information on your device.</p><button>Accept all"
        "</button><button>Reject all</button><a href='/privacy'>Privacy policy</a></div></body></html>"
    )


def _jsonld_disagrees(case: Case) -> Response:
    ld = {
        "articleBody": "This JSON-LD body says something else entirely: a short teaser about "
        "a football match in Erbil that the page never mentions. " * 3
    }
    return _html(article_html("JSON-LD body disagrees with the HTML", _english(8), ld=ld))


def _future_date(case: Case) -> Response:
    future = datetime(2031, 1, 1, tzinfo=UTC)
    return _html(article_html("An article dated five years ahead", _english(9), published=future))


def _enormous_dom(case: Case) -> Response:
    cells = "<span>x</span>" * ENORMOUS_DOM_NODES
    return _html(
        article_html("Enormous DOM", _english(10)).replace(
            "<footer>", f"<div>{cells}</div><footer>"
        )
    )


def _turkish(case: Case) -> Response:
    paras = [
        TURKISH,
        TURKISH.replace("dün akşam", "bu sabah"),
        TURKISH.replace("Irak'ın", "Suriye'nin"),
    ]
    return _html(article_html("Irak'ın kuzeyinde hava harekâtı", paras, lang="tr"))


def _arabic(case: Case) -> Response:
    paras = [ARABIC, ARABIC.replace("اليوم", "أمس"), ARABIC.replace("شمال", "غرب")]
    return _html(article_html("القبض على مشتبه بهم شمال العراق", paras, lang="ar", dir_="rtl"))


def _zero_entities(case: Case) -> Response:
    paras = [
        NO_ENTITIES,
        NO_ENTITIES.replace("committee", "board"),
        NO_ENTITIES.replace("morning", "evening"),
    ]
    return _html(article_html("new rules for the allotments", paras))


def _paywall(case: Case) -> Response:
    return _html(
        article_html(
            "Subscribers only: the border deal", _english(13)[:1], ld={"isAccessibleForFree": False}
        ).replace(
            "</article>", "<div class='paywall'>Subscribe to continue reading.</div></article>"
        )
    )


def _binary(case: Case) -> Response:
    return Response(body=b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64, content_type="image/png")


def _server_error(case: Case) -> Response:
    return Response(status=503, body=b"upstream down", headers={"Retry-After": "1"})


def _not_found(case: Case) -> Response:
    return Response(status=404, body=b"<html><body>Not found</body></html>")


def _soft_404(case: Case) -> Response:
    return _html(
        "<html><head><title>Page not found</title></head><body><h1>Sorry, this page does not exist</h1><p>Try the search.</p></body></html>"
    )


def _empty_body(case: Case) -> Response:
    return Response(body=b"")


def _garbage(case: Case) -> Response:
    import random

    rng = random.Random(9)
    junk = " ".join(
        "".join(rng.choice("qzx#@$%&*0123456789") for _ in range(rng.randint(30, 60)))
        for _ in range(400)
    )
    return _html(
        f"<html><head><title>Data dump</title><meta property='og:type' content='article'></head><body><article><p>{junk}</p></article></body></html>"
    )


def _robots(case: Case, path: str) -> Response | None:
    if path == "/robots.txt":
        return Response(body=b"User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    if path == "/feed.xml":
        return Response(body=_feed_to(case, "/private/story"), content_type="application/rss+xml")
    if path == "/private/story":
        return _html(article_html("Robots said no", _english(11)))
    return None


def _atom_relative(case: Case, path: str) -> Response | None:
    if path == "/feed.xml":
        body = (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
            f'xml:base="{case.base}/atom/"><title>Atom</title><id>urn:x</id>'
            f"<updated>{NOW.isoformat()}</updated><entry><title>Atom relative</title>"
            '<link href="entry-one"/><id>urn:x:1</id>'
            f"<updated>{NOW.isoformat()}</updated></entry></feed>"
        )
        return Response(body=body.encode(), content_type="application/atom+xml")
    if path == "/atom/entry-one":
        return _html(article_html("Atom entry with a relative link", _english(12)))
    return None


def _feed_gone(case: Case, path: str) -> Response | None:
    return Response(status=410, body=b"gone") if path == "/feed.xml" else None


CASES: tuple[Case, ...] = (
    Case("malformed_rss", "truncated RSS with unclosed tags", "feed", _feed_case(MALFORMED_RSS)),
    Case(
        "malformed_atom",
        "Atom with undefined entities, unclosed entry",
        "feed",
        _feed_case(MALFORMED_ATOM, "application/atom+xml"),
    ),
    Case(
        "billion_laughs", "nested entity expansion (XML bomb)", "feed", _feed_case(BILLION_LAUGHS)
    ),
    Case("xxe", "external entity file:///etc/passwd", "feed", _feed_case(XXE)),
    Case(
        "html_not_feed",
        "an HTML page where a feed should be",
        "feed",
        _feed_case(article_html("Not a feed", ["Just a page."]).encode(), "text/html"),
    ),
    Case("empty_feed", "valid RSS, zero items", "feed", _feed_case(EMPTY_FEED)),
    Case("feed_10000_items", "10,000 items (links answer 410)", "feed", _big_feed),
    Case("duplicate_guids", "3 items, one GUID, different links", "feed", _duplicate_guids),
    Case("relative_links", "item links relative to the feed URL", "feed", _relative_links),
    Case("atom_xml_base", "Atom entry link relative to xml:base", "feed", _atom_relative),
    Case(
        "bad_schemes",
        "file://, ftp://, javascript:, data: links (+1 good)",
        "feed",
        _bad_schemes,
        feed_items=5,
    ),
    Case("feed_410", "feed URL answers 410 Gone", "feed", _feed_gone),
    Case("page_50mb", "50 MB page (streamed)", "page", _page_case(_huge_page)),
    Case("gzip_bomb", "100 KB gzip -> 1 GiB", "page", _page_case(_gzip_bomb)),
    Case("slow_drip", "1 byte every 0.25 s", "page", _page_case(_slow_drip)),
    Case("redirect_loop", "/a -> /b -> /a", "page", _redirect_loop),
    Case("robots_disallow", "page disallowed by robots.txt", "page", _robots),
    Case(
        "invalid_utf8", "invalid UTF-8 sequences in a UTF-8 page", "page", _page_case(_invalid_utf8)
    ),
    Case(
        "charset_latin1_declared",
        "UTF-8 bytes declared ISO-8859-1",
        "page",
        _page_case(_misdeclared_charset),
    ),
    Case(
        "charset_cp1254_as_utf8",
        "windows-1254 bytes declared UTF-8",
        "page",
        _page_case(_windows1254_as_utf8),
    ),
    Case("no_article_text", "navigation and a JS app shell only", "page", _page_case(_no_text)),
    Case("cookie_wall", "only a consent wall", "page", _page_case(_cookie_wall)),
    Case(
        "jsonld_disagrees",
        "JSON-LD articleBody differs from the HTML",
        "page",
        _page_case(_jsonld_disagrees),
    ),
    Case("future_date", "datePublished in 2031", "page", _page_case(_future_date)),
    Case("enormous_dom", f"{ENORMOUS_DOM_NODES:,} elements", "page", _page_case(_enormous_dom)),
    Case("turkish", "non-English (Turkish) article", "page", _page_case(_turkish)),
    Case("arabic_rtl", "right-to-left Arabic article", "page", _page_case(_arabic)),
    Case(
        "zero_entities",
        "English article with no named entities",
        "page",
        _page_case(_zero_entities),
    ),
    Case("paywall", "isAccessibleForFree=false teaser", "page", _page_case(_paywall)),
    Case("binary_as_page", "a PNG where the article should be", "page", _page_case(_binary)),
    Case("http_503", "503 with Retry-After, every time", "page", _page_case(_server_error)),
    Case("http_404", "404 Not Found", "page", _page_case(_not_found)),
    Case("soft_404", "200 OK 'Page not found'", "page", _page_case(_soft_404)),
    Case("empty_body", "200 OK, zero bytes", "page", _page_case(_empty_body)),
    Case("garbage_text", "article markup around random symbols", "page", _page_case(_garbage)),
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients abort hostile responses on purpose (caps, deadlines)


class HostileSite:
    """Serve every case on its own 127.1.0.x address (one shared port); a context manager."""

    def __init__(self, cases: tuple[Case, ...] = CASES) -> None:
        self.cases = cases
        self.requests: dict[str, int] = {}
        self._servers: list[_Server] = []
        self._lock = threading.Lock()

    def __enter__(self) -> HostileSite:
        site = self
        by_ip: dict[str, Case] = {}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                ip = str(self.connection.getsockname()[0])
                case = by_ip[ip]
                path = self.path.split("?", 1)[0]
                with site._lock:
                    site.requests[case.name] = site.requests.get(case.name, 0) + 1
                response = case.respond(case, path)
                if response is None:
                    response = (
                        Response(body=b"User-agent: *\nAllow: /\n", content_type="text/plain")
                        if path == "/robots.txt"
                        else Response(status=404, body=b"")
                    )
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if isinstance(response.body, bytes):
                    self.send_header("Content-Length", str(len(response.body)))
                    self.end_headers()
                    self.wfile.write(response.body)
                    return
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for chunk in response.body:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    if response.delay_s:
                        time.sleep(response.delay_s)

            def log_message(self, format: str, *args: Any) -> None:
                return

        port = 0
        for i, case in enumerate(self.cases):
            a, b, c, d = FIRST_ADDRESS
            case.ip = f"{a}.{b}.{c}.{d + i}"
            server = _Server((case.ip, port), Handler)
            port = port or server.server_address[1]
            case.port = port
            by_ip[case.ip] = case
            self._servers.append(server)
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
