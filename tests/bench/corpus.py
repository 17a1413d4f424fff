"""A seeded synthetic news corpus: many hosts, each with RSS feeds and realistic article pages.

Every article is derived from ``(seed, index)`` alone, so pages are rendered on demand (the
server keeps nothing but the plan in memory) and two runs with one seed serve identical bytes.
Bodies are 500-1,500 words of varied security-news sentences built from parts (subject, verb
phrase, complement, adjunct) so shingles rarely repeat across articles (no false near-duplicates)
and the NER stage meets many distinct people, places and organisations. Pages wrap the body in
the boilerplate real sites carry (mega-menu, cookie banner, share bar, figure, ads, newsletter,
related stories, comments, footer, inline scripts), padded to a target size of 40-150 KB.
"""

from __future__ import annotations

import html
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cached_property

DEFAULT_ARTICLES = 2000
DEFAULT_HOSTS = 100
DEFAULT_SEED = 20261122
MIN_WORDS, MAX_WORDS = 500, 1500
MIN_PAGE_BYTES, MAX_PAGE_BYTES = 40_000, 150_000
#: publication dates fall in the days before this instant (fixed: reproducible bytes)
EPOCH = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
MAX_AGE_DAYS = 20
#: hosts get two feeds (front page + security section) when their index is a multiple of this
TWO_FEEDS_EVERY = 3

# fmt: off
FIRST_NAMES = (
    "Ahmet", "Mehmet", "Ayşe", "Zeynep", "Hasan", "Emine", "Murat", "Elif", "Kemal", "Selin",
    "Ali", "Omar", "Karim", "Layla", "Nadia", "Hussein", "Rania", "Bashir", "Dilan", "Rojda",
    "Serwan", "Shirin", "Hemin", "Nechirvan", "Aziz", "Farida", "Youssef", "Samir", "Mariam",
    "John", "Sarah", "Michael", "Anna", "Thomas", "Laura", "Pierre", "Claire", "Hans", "Ingrid",
)
LAST_NAMES = (
    "Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Aydın", "Öztürk", "Arslan", "Doğan", "Koç",
    "al-Jabouri", "al-Obeidi", "Hamadi", "Mustafa", "Rashid", "Saleh", "Talabani", "Kareem",
    "Zebari", "Barzinji", "Hawrami", "Salih", "Haddad", "Nasser", "Khalil", "Mansour",
    "Whitfield", "Morrison", "Keller", "Dubois", "Lindqvist", "Novak", "Brennan", "Carver",
)
TITLES = (
    "Defence Minister", "Interior Minister", "Foreign Minister", "Brig. Gen.", "Maj. Gen.",
    "Col.", "Governor", "spokesman", "spokeswoman", "lawmaker", "analyst", "envoy",
    "commander", "deputy minister", "prosecutor", "mayor", "ambassador", "security official",
)
PLACES = (
    "Duhok", "Erbil", "Zakho", "Amedi", "Sinjar", "Makhmour", "Kirkuk", "Mosul", "Sulaymaniyah",
    "Qamishli", "Kobani", "Raqqa", "Hasakah", "Manbij", "Tal Rifaat", "Hakkari", "Şırnak",
    "Mardin", "Diyarbakır", "Gaziantep", "Tal Afar", "Qaladze", "Ranya", "Soran", "Baghdad",
    "Ankara", "Damascus", "Istanbul", "Deir ez-Zor", "Afrin", "Jarablus", "Tikrit", "Samarra",
    "Halabja", "Penjwen", "Batifa", "Uludere", "Cizre", "Nusaybin", "Silopi", "Van", "Ramadi",
)
AREAS = (
    "Gara", "Metina", "Zap", "Avashin", "Basyan", "Hakurk", "the Qandil Mountains",
    "Mount Gabar", "the Nineveh Plains", "the Khabur valley", "the Euphrates valley",
    "the Hamrin Mountains", "Mount Sinjar", "the Bradost area", "the Sidakan district",
)
COUNTRIES = (
    "Türkiye", "Iraq", "Syria", "Iran", "the United States", "Russia", "Turkey", "Jordan",
    "Germany", "France", "the United Kingdom", "Qatar", "Saudi Arabia", "Sweden", "Israel",
)
GROUPS = (
    "the PKK", "the Kurdistan Workers' Party", "the YPG", "the Syrian Democratic Forces",
    "ISIS", "Daesh", "the Islamic State", "the Popular Mobilization Forces", "Hashd al-Shaabi",
    "the HPG", "the PYD", "Kataib Hezbollah", "Hayat Tahrir al-Sham", "the Sinjar Resistance Units",
)
INSTITUTIONS = (
    "the Turkish Ministry of National Defence", "the Kurdistan Regional Government",
    "the Iraqi Security Forces", "the Turkish Armed Forces", "the Peshmerga", "the KRG",
    "the National Intelligence Organization", "the Iraqi Counter-Terrorism Service",
    "the United Nations", "NATO", "the European Union", "the Iraqi Army", "the Pentagon",
    "the US-led coalition", "Human Rights Watch", "Amnesty International", "the Red Crescent",
    "the International Organization for Migration", "the Iraqi Parliament", "the Arab League",
    "the Turkish Grand National Assembly", "the Iraqi Ministry of Interior", "Reuters",
    "the Syrian Observatory for Human Rights", "the International Crisis Group", "UNICEF",
)
EVENTS = (
    "Operation Claw-Lock", "Operation Claw-Eagle", "Operation Peace Spring", "the Astana talks",
    "the Sinjar Agreement", "Operation Inherent Resolve", "the Baghdad security conference",
    "the Ankara summit", "the Geneva process",
)
VERBS = (
    "said on {day} that", "told reporters in {place} that", "confirmed in a statement that",
    "warned during a press briefing that", "announced late on {day} that",
    "told a parliamentary committee that", "said in a televised address that",
    "acknowledged in an interview that", "wrote on social media that",
    "insisted at a meeting in {place} that", "claimed without offering evidence that",
    "cautioned in a written briefing that", "reiterated on {day} that",
)
CLAIMS = (
    "{n} militants had been neutralised in {area} over the past {k} days",
    "drone strikes hit a vehicle near {place}, killing {k} people",
    "{group} had moved fighters and weapons across the border toward {place}",
    "a joint patrol with {inst} would begin in {area} before the end of the month",
    "security forces detained {n} suspects linked to {group} in raids across {place}",
    "an improvised explosive device wounded {k} soldiers on the road to {place}",
    "{inst} had opened an investigation into the deaths of {k} civilians in {place}",
    "the ceasefire around {place} was holding despite sporadic shelling overnight",
    "artillery fire from positions near {place} struck villages in {area}",
    "more than {n} families had fled {area} since the start of {event}",
    "the talks with {country} on border security would resume in {place} next week",
    "{group} had claimed responsibility for the attack on a checkpoint outside {place}",
    "intelligence gathered by {inst} pointed to a cell operating out of {place}",
    "reconstruction funds promised by {country} had not reached {place}",
    "{k} camps housing displaced people near {place} faced shortages of water and fuel",
    "prosecutors in {place} charged {k} people with financing {group}",
    "the airspace over {area} would remain closed to civilian flights",
    "forces loyal to {group} had withdrawn from {k} villages east of {place}",
    "a senior figure of {group} was killed in an operation led by {inst}",
    "the oil pipeline running through {place} to {country} was shut for inspections",
)
COLOUR = (
    "Residents of {place} described hearing explosions shortly after midnight.",
    "Local officials in {place} said schools would stay closed for {k} days.",
    "Footage shared online appeared to show smoke rising over the hills near {place}.",
    "The statement did not say how the identities of those killed were established.",
    "Independent verification was not possible because access to {area} is restricted.",
    "Farmers in {area} said they had abandoned fields that border the frontier.",
    "The governor of {place} called on {inst} to send additional medical teams.",
    "Analysts at {inst} said the escalation had been expected for weeks.",
    "A spokesperson for {inst} declined to comment on the report.",
    "Traffic on the highway between {place} and {place2} was halted for several hours.",
    "Aid groups warned that winter would worsen conditions in camps around {place}.",
    "The ministry published photographs of weapons it said were seized in {area}.",
    "Shops in the old market of {place} reopened on {day} under heavy security.",
    "Relatives gathered outside the hospital in {place} waiting for news.",
)
CONTEXT = (
    "{group} has waged an insurgency against {country} since 1984 and is listed as a "
    "terrorist organisation by {country}, the United States and the European Union.",
    "{event} was launched in {year} and targets positions in {area}, according to {inst}.",
    "{country} has long accused {group} of using {area} as a base for cross-border attacks.",
    "Relations between {inst} and Baghdad have been strained over oil revenue and security.",
    "The region around {place} has seen repeated clashes since the defeat of the Islamic State "
    "in {year}.",
    "{inst} estimates that about {n} people remain displaced across northern Iraq.",
    "Under the {event}, the administration of {place} was meant to pass to local authorities.",
    "Diplomats say {country} and {country2} have discussed a new security mechanism for the "
    "border.",
)
QUOTES = (
    "\u201cWe will not allow {group} to threaten our people,\u201d {person_short} said.",
    "\u201cThe situation in {place} remains fragile,\u201d {person_short} told {outlet}.",
    "\u201cCivilians are paying the price for this conflict,\u201d said {person}, {title} "
    "of {inst}.",
    "\u201cOur operations in {area} will continue until the threat is removed,\u201d "
    "{person_short} added.",
    "\u201cThere is no military solution in {place},\u201d {person} said in {place2}.",
    "\u201cWe have asked {country} for clear guarantees,\u201d said {person_short}.",
)
SECTIONS = ("World", "Middle East", "Security", "Politics", "Türkiye", "Iraq", "Syria",
            "Kurdistan", "Opinion", "Analysis", "Economy", "Energy", "Culture", "Sport")
OUTLET_WORDS = ("Daily", "Frontier", "Herald", "Post", "Monitor", "Observer", "Chronicle",
                "Times", "Courier", "Wire", "Gazette", "Dispatch", "Review", "Tribune")
OUTLET_PLACES = ("Tigris", "Euphrates", "Anatolia", "Mesopotamia", "Zagros", "Levant",
                 "Bosphorus", "Nineveh", "Kurdistan", "Crescent", "Northern", "Border")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HEADLINE_PARTS = (
    ("Clashes near {place} leave {k} dead", "Drone strike hits convoy in {area}",
     "{country} widens operation against {group}", "Displaced families return to {place}",
     "{inst} warns of new attacks in {area}", "Border talks between {country} and {country2}",
     "{title_cap} visits {place} after attack", "Raids in {place} target {group} cell",
     "Ceasefire strained in {area}", "Aid convoys stall outside {place}"),
    ("", " as tensions rise", " amid security fears", ", officials say", " despite ceasefire",
     " after talks stall", ": what we know", " as winter nears"),
)
# fmt: on


@dataclass(frozen=True, slots=True)
class Host:
    index: int
    ip: str
    name: str  # the outlet's display name

    @property
    def slug(self) -> str:
        return self.name.lower().replace(" ", "-")


@dataclass(frozen=True, slots=True)
class Planned:
    """One article's identity; its page is rendered from this alone."""

    index: int
    host: Host
    path: str
    feed: str  # path of the feed that lists it
    published: datetime
    title: str
    words: int
    page_bytes: int
    seed: int


def host_ip(index: int) -> str:
    """127.0.0.0/8 is all loopback on Linux: host i listens on its own address."""
    n = index + 2  # skip 127.0.0.1 (shared with everything else on the box)
    return f"127.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


class Corpus:
    """The plan of a synthetic site network; cheap to build (no page is rendered up front)."""

    def __init__(
        self,
        *,
        articles: int = DEFAULT_ARTICLES,
        hosts: int = DEFAULT_HOSTS,
        seed: int = DEFAULT_SEED,
        first_ip: int = 0,
    ) -> None:
        """*first_ip* shifts the host addresses, so two corpora can be served side by side."""
        if articles < 1 or hosts < 1:
            raise ValueError("articles and hosts must be positive")
        self.n_articles = articles
        self.n_hosts = min(hosts, articles)
        self.seed = seed
        self.first_ip = first_ip

    @cached_property
    def hosts(self) -> list[Host]:
        rng = random.Random(f"{self.seed}:hosts")
        out = []
        for i in range(self.n_hosts):
            name = f"{rng.choice(OUTLET_PLACES)} {rng.choice(OUTLET_WORDS)} {i}"
            out.append(Host(i, host_ip(i + self.first_ip), name))
        return out

    @cached_property
    def articles(self) -> list[Planned]:
        out = []
        for i in range(self.n_articles):
            rng = random.Random(f"{self.seed}:article:{i}")
            host = self.hosts[i % self.n_hosts]
            published = EPOCH - timedelta(seconds=rng.randrange(MAX_AGE_DAYS * 86400))
            section = rng.choice(SECTIONS).lower().replace(" ", "-").replace("ü", "u")
            feed = (
                "/security/feed.xml" if host.index % TWO_FEEDS_EVERY == 0 and i % 2 else "/feed.xml"
            )
            title = _fill(rng, rng.choice(HEADLINE_PARTS[0]) + rng.choice(HEADLINE_PARTS[1]))
            title = title[0].upper() + title[1:]
            slug = "-".join(w for w in _slug(title).split("-") if w)[:80]
            path = f"/{published:%Y/%m/%d}/{section}/{slug}-{i}"
            out.append(
                Planned(
                    index=i,
                    host=host,
                    path=path,
                    feed=feed,
                    published=published,
                    title=title,
                    words=rng.randint(MIN_WORDS, MAX_WORDS),
                    page_bytes=rng.randint(MIN_PAGE_BYTES, MAX_PAGE_BYTES),
                    seed=rng.randrange(2**32),
                )
            )
        return out

    def feeds(self, host: Host) -> dict[str, list[Planned]]:
        """Feed path -> its items (newest first) for one host."""
        out: dict[str, list[Planned]] = {}
        for article in self.articles[host.index :: self.n_hosts]:
            out.setdefault(article.feed, []).append(article)
        for items in out.values():
            items.sort(key=lambda a: a.published, reverse=True)
        return out

    @cached_property
    def by_path(self) -> dict[tuple[str, str], Planned]:
        return {(a.host.ip, a.path): a for a in self.articles}


def _slug(text: str) -> str:
    keep = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return keep.encode("ascii", "ignore").decode()


def _person(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return f"{first} {last}", last


def _fill(rng: random.Random, template: str, **fixed: str) -> str:
    place, place2 = rng.sample(PLACES, 2)
    country, country2 = rng.sample(COUNTRIES, 2)
    person, short = _person(rng)
    title = rng.choice(TITLES)
    values = {
        "place": place,
        "place2": place2,
        "area": rng.choice(AREAS),
        "country": country,
        "country2": country2,
        "group": rng.choice(GROUPS),
        "inst": rng.choice(INSTITUTIONS),
        "event": rng.choice(EVENTS),
        "person": person,
        "person_short": short,
        "title": title,
        "title_cap": title[0].upper() + title[1:],
        "outlet": rng.choice(OUTLET_PLACES) + " " + rng.choice(OUTLET_WORDS),
        "day": rng.choice(DAYS),
        "n": str(rng.randint(12, 4800)),
        "k": str(rng.randint(2, 19)),
        "year": str(rng.randint(2014, 2025)),
    }
    values.update(fixed)
    return template.format(**values)


def _sentence(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        person, _ = _person(rng)
        who = rng.choice(
            (
                f"{rng.choice(TITLES).capitalize()} {person}",
                f"{person}, a {rng.choice(TITLES)} in {rng.choice(PLACES)},",
                rng.choice(INSTITUTIONS).replace("the ", "The ", 1),
                f"A {rng.choice(TITLES)} from {rng.choice(COUNTRIES)}",
            )
        )
        return _fill(rng, f"{who} {rng.choice(VERBS)} {rng.choice(CLAIMS)}.")
    if roll < 0.7:
        return _fill(rng, rng.choice(COLOUR))
    if roll < 0.85:
        return _fill(rng, rng.choice(CONTEXT))
    return _fill(rng, rng.choice(QUOTES))


def paragraphs(article: Planned) -> list[str]:
    """The article body: about ``article.words`` words in paragraphs of 2-5 sentences."""
    rng = random.Random(article.seed)
    out: list[str] = []
    words = 0
    while words < article.words:
        para = " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))
        para = para[0].upper() + para[1:]
        out.append(para)
        words += len(para.split())
    return out


# --- rendering ---------------------------------------------------------------------------------


def _menu(rng: random.Random, base: str) -> str:
    items = []
    for section in SECTIONS:
        slug = _slug(section)
        sub = "".join(
            f'<li><a href="{base}/{slug}/{_slug(p)}">{html.escape(p)}</a></li>'
            for p in rng.sample(PLACES, 6)
        )
        items.append(
            f'<li class="menu-item"><a href="{base}/{slug}">{section}</a><ul class="sub">{sub}</ul></li>'
        )
    return '<nav class="mega-menu"><ul>' + "".join(items) + "</ul></nav>"


def _related(corpus: Corpus, article: Planned, rng: random.Random) -> str:
    siblings = corpus.articles[article.host.index :: corpus.n_hosts]
    picks = rng.sample(siblings, min(6, len(siblings)))
    return "".join(
        f'<li><a href="{a.path}"><img src="/img/t{a.index}.jpg" alt="">'
        f"<span>{html.escape(a.title)}</span></a></li>"
        for a in picks
        if a.index != article.index
    )


def _padding(rng: random.Random, nbytes: int) -> str:
    """Inline script config and tracking blobs: what makes real pages 100 KB for 5 KB of text."""
    chunks = []
    size = 0
    while size < nbytes:
        blob = {
            "slot": f"div-gpt-ad-{rng.randrange(10**9)}",
            "sizes": [[300, 250], [728, 90], [320, 50]],
            "targeting": {
                "section": rng.choice(SECTIONS),
                "tags": rng.sample(PLACES, 4),
                "uid": f"{rng.getrandbits(128):032x}",
            },
            "experiments": {f"exp_{rng.randrange(999)}": rng.random() for _ in range(6)},
        }
        chunk = json.dumps(blob)
        chunks.append(chunk)
        size += len(chunk) + 1
    return "<script>window.__ADS__=[" + ",".join(chunks) + "];</script>"


def render_article(corpus: Corpus, article: Planned, base: str) -> str:
    e = html.escape
    rng = random.Random(article.seed ^ 0x5EED)
    paras = paragraphs(article)
    author, _ = _person(rng)
    url = f"{base}{article.path}"
    image = f"{base}/img/{article.index}.jpg"
    caption = _fill(rng, "Security forces patrol near {place}. (Photo: {outlet})")
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "datePublished": article.published.isoformat(),
        "dateModified": (article.published + timedelta(hours=rng.randint(0, 9))).isoformat(),
        "author": {"@type": "Person", "name": author},
        "publisher": {"@type": "Organization", "name": article.host.name},
        "mainEntityOfPage": url,
        "image": image,
        "isAccessibleForFree": True,
    }
    body = "\n".join(f"<p>{e(p)}</p>" for p in paras[:3])
    body += '\n<div class="ad-slot inline">Advertisement</div>\n'
    body += "\n".join(f"<p>{e(p)}</p>" for p in paras[3:])
    comments = "".join(
        f'<li class="comment"><b>{e(_person(rng)[0])}</b> '
        f"<p>{e(_fill(rng, rng.choice(COLOUR)))}</p></li>"
        for _ in range(rng.randint(2, 6))
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(article.title)} | {e(article.host.name)}</title>
<link rel="canonical" href="{url}">
<meta name="description" content="{e(paras[0][:200])}">
<meta property="og:title" content="{e(article.title)}">
<meta property="og:site_name" content="{e(article.host.name)}">
<meta property="og:type" content="article">
<meta property="og:url" content="{url}">
<meta property="og:image" content="{image}">
<meta property="article:published_time" content="{article.published.isoformat()}">
<meta name="author" content="{e(author)}">
<script type="application/ld+json">{json.dumps(ld)}</script>
<style>body{{font-family:Georgia,serif;margin:0}}.mega-menu ul{{list-style:none}}.sub{{display:none}}
.cookie-banner{{position:fixed;bottom:0}}.ad-slot{{min-height:250px}}.share-bar a{{margin:0 4px}}</style>
</head><body>
<div class="cookie-banner" role="dialog">We use cookies and similar technologies to personalise
content and ads. <button>Accept all</button> <button>Manage preferences</button></div>
<header class="site-header"><a class="logo" href="{base}/">{e(article.host.name)}</a>
{_menu(rng, base)}
<form class="search" action="/search"><input name="q" placeholder="Search"></form></header>
<div class="ad-slot leaderboard">Advertisement</div>
<main><article class="story">
<nav class="breadcrumbs"><a href="/">Home</a> › <a href="/security">Security</a></nav>
<h1>{e(article.title)}</h1>
<div class="byline">By {e(author)} · <time datetime="{article.published.isoformat()}">{article.published:%d %B %Y}</time></div>
<div class="share-bar"><a href="#">Share on Facebook</a><a href="#">Share on X</a><a href="#">WhatsApp</a><a href="#">Copy link</a></div>
<figure><img src="{image}" alt=""><figcaption>{e(caption)}</figcaption></figure>
<div class="article-body">
{body}
</div>
<div class="tags">Tags: {", ".join(rng.sample(PLACES, 3))}</div>
<aside class="newsletter">Sign up for our morning security briefing. <input type="email"> Subscribe</aside>
<section class="related"><h2>Related stories</h2><ul>{_related(corpus, article, rng)}</ul></section>
<section class="comments"><h2>Comments</h2><ul>{comments}</ul></section>
</article></main>
<aside class="most-read"><h2>Most read</h2><ol>{_related(corpus, article, rng)}</ol></aside>
<footer><p>© 2026 {e(article.host.name)}. All rights reserved.</p>
<a href="/about">About us</a> · <a href="/contact">Contact</a> · <a href="/privacy">Privacy policy</a></footer>
<p class="ad-slot">Advertisement</p>
"""
    padding = max(0, article.page_bytes - len(page.encode()) - 100)
    return page + _padding(rng, padding) + "\n</body></html>"


def render_feed(corpus: Corpus, host: Host, feed: str, base: str) -> str:
    return render_feed_items(corpus, host, corpus.feeds(host).get(feed, []), base)


def render_feed_items(corpus: Corpus, host: Host, articles: list[Planned], base: str) -> str:
    """An RSS document listing *articles* (in the order given)."""
    items = []
    for a in articles:
        items.append(
            f"<item><title>{html.escape(a.title)}</title>"
            f"<link>{base}{a.path}?utm_source=rss&amp;utm_medium=feed</link>"
            f'<guid isPermaLink="false">{host.slug}-{a.index}</guid>'
            f"<pubDate>{format_datetime(a.published)}</pubDate>"
            f"<description>{html.escape(a.title)}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{html.escape(host.name)}</title><link>{base}/</link>"
        f"<description>Latest news</description><ttl>15</ttl>{''.join(items)}</channel></rss>"
    )
