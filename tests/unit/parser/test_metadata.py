from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.parser import metadata

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SEEN = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Turkish jets strike PKK | Tigris Review", "Turkish jets strike PKK"),
        ("Turkish jets strike PKK - Tigris Review", "Turkish jets strike PKK"),
        ("Tigris Review | Turkish jets strike PKK", "Turkish jets strike PKK"),
        (
            "Turkish jets strike PKK | Security | Tigris Review",
            "Turkish jets strike PKK | Security",
        ),
        ("Turkish jets strike PKK - TigrisReview", "Turkish jets strike PKK"),
        # a dash inside the headline is not a site suffix
        ("Iraq - Turkey talks stall over water", "Iraq - Turkey talks stall over water"),
    ],
)
def test_title_without_site_suffix(raw: str, expected: str) -> None:
    assert (
        metadata.choose_title(
            [None, "", raw], site_names=["Tigris Review", "tigrisreview.com"]
        ).text
        == expected
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["By Selin Arslan and Omar Haddad"], ["Selin Arslan", "Omar Haddad"]),
        (["Selin Arslan, Omar Haddad - Tigris Review"], ["Selin Arslan", "Omar Haddad"]),
        (["By Karwan Faraj | 20 November 2026"], ["Karwan Faraj"]),
        (["Tigris Review", "admin", "Staff Writer", "News Desk"], []),
        (["https://www.facebook.com/tigrisreview", "selin@tigrisreview.com"], []),
        (["SELIN ARSLAN"], ["Selin Arslan"]),
        (["Ayşe Yıldırım ve Mehmet Kaya"], ["Ayşe Yıldırım", "Mehmet Kaya"]),
        (["Selin Arslan", "selin arslan"], ["Selin Arslan"]),
        (["Tigris Review with agencies"], []),
    ],
)
def test_clean_authors(raw: list[str], expected: list[str]) -> None:
    assert (
        metadata.clean_authors(raw, site_names=["Tigris Review", "www.tigrisreview.com"])
        == expected
    )


def test_dates_priority_and_rejections() -> None:
    dates = metadata.choose_dates(
        published=[
            ("jsonld", "2027-01-01T00:00:00Z"),  # future
            ("meta", "2016-11-20T09:00:00+03:00"),  # a stale template, outvoted by the feed
            ("feed", datetime(2026, 11, 19, 6, 0, tzinfo=UTC)),
            ("url", "2026-11-20"),
        ],
        modified=[("jsonld", "2026-11-19T00:00:00Z"), ("meta", "Sat, 21 Nov 2026 10:00:00 +0300")],
        now=NOW,
        first_seen=SEEN,
        in_url=date(2026, 11, 20),
    )
    # the feed and the URL agree (within a day and a half); the 2016 meta date stands alone
    assert (dates.published_at, dates.published_source) == (
        datetime(2026, 11, 19, 6, 0, tzinfo=UTC),
        "feed",
    )
    # the JSON-LD modified date precedes publication: the next candidate is used
    assert (dates.modified_at, dates.modified_source) == (
        datetime(2026, 11, 21, 7, 0, tzinfo=UTC),
        "meta",
    )
    assert [why for _, _, why in dates.rejected] == ["future", "outvoted", "before_published"]


def test_strong_old_date_is_kept_and_weak_ones_are_checked() -> None:
    """An archive page: JSON-LD and meta agree on 2019, years before the URL was first seen."""
    strong = metadata.choose_dates(
        published=[
            ("jsonld", "2019-03-12T08:30:00+03:00"),
            ("meta", "2019-03-12T08:30:00+03:00"),
            ("url", "2026-11-20"),
        ],
        modified=[],
        now=NOW,
        first_seen=SEEN,
        in_url=date(2026, 11, 20),
    )
    assert (strong.published_at, strong.published_source) == (
        datetime(2019, 3, 12, 5, 30, tzinfo=UTC),
        "jsonld",
    )
    weak = metadata.choose_dates(
        published=[("url", "2019-03-12"), ("htmldate", lambda: "2018-01-01")],
        modified=[],
        now=NOW,
        first_seen=SEEN,
        in_url=date(2019, 3, 12),
    )
    assert weak.published_at is None
    assert [why for _, _, why in weak.rejected] == ["before_first_seen", "before_first_seen"]


def test_lazy_candidates_are_only_evaluated_when_needed() -> None:
    calls: list[str] = []

    def expensive() -> str:
        calls.append("htmldate")
        return "2026-11-20"

    dates = metadata.choose_dates(
        published=[("jsonld", "2026-11-20T10:00:00Z"), ("htmldate", expensive)],
        modified=[],
        now=NOW,
        first_seen=SEEN,
        in_url=None,
    )
    assert dates.published_source == "jsonld" and calls == []


def test_max_lag_is_configurable_and_applies_to_weak_sources() -> None:
    old = ("htmldate", "2026-10-01")
    kept = metadata.choose_dates([old], [], now=NOW, first_seen=SEEN, in_url=None)
    dropped = metadata.choose_dates(
        [old], [], now=NOW, first_seen=SEEN, in_url=None, max_lag=timedelta(days=30)
    )
    assert kept.published_source == "htmldate" and dropped.published_at is None
    strong = metadata.choose_dates(
        [("jsonld", "2026-10-01T00:00:00Z")],
        [],
        now=NOW,
        first_seen=SEEN,
        in_url=None,
        max_lag=timedelta(days=30),
    )
    assert strong.published_source == "jsonld"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.com/security/2026/11/18/slug", date(2026, 11, 18)),
        ("https://x.com/2026-11-18/slug", date(2026, 11, 18)),
        ("https://x.com/news/20261118/slug", date(2026, 11, 18)),
        ("https://x.com/news/2026/13/45/slug", None),
        ("https://x.com/news/slug-123456", None),
        # a number starting the slug is not a day
        ("https://x.com/kurdistan/2019/03/12-villages-dry", None),
        ("https://x.com/2019/03/12.html", date(2019, 3, 12)),
    ],
)
def test_url_date(url: str, expected: date | None) -> None:
    assert metadata.url_date(url) == expected


@pytest.mark.parametrize(
    ("candidate", "final", "expected"),
    [
        # same site, relative, tracking parameters stripped
        (
            "/a/story?utm_source=rss&id=7",
            "https://www.site.com/a/story?id=7&fbclid=1",
            "https://www.site.com/a/story?id=7",
        ),
        # AMP page pointing at the desktop host of the same site
        (
            "https://www.site.com/a/story",
            "https://amp.site.com/a/story/amp",
            "https://www.site.com/a/story",
        ),
        # another site (syndication partner): not ours to follow
        (
            "https://partner.org/a/story",
            "https://www.site.com/a/story",
            "https://www.site.com/a/story",
        ),
        # the home page, or the section above the article: CMS bugs
        ("https://www.site.com/", "https://www.site.com/a/story", "https://www.site.com/a/story"),
        ("https://www.site.com/a/", "https://www.site.com/a/story", "https://www.site.com/a/story"),
        ("javascript:void(0)", "https://www.site.com/a/story", "https://www.site.com/a/story"),
        (None, "HTTPS://WWW.Site.com:443/a/story#comments", "https://www.site.com/a/story"),
        (
            "https://www.haber.com.tr/x/1",
            "https://m.haber.com.tr/x/1",
            "https://www.haber.com.tr/x/1",
        ),
        ("https://other.com.tr/x/1", "https://m.haber.com.tr/x/1", "https://m.haber.com.tr/x/1"),
    ],
)
def test_canonical_url(candidate: str | None, final: str, expected: str) -> None:
    assert metadata.choose_canonical(candidate, final_url=final) == expected


def test_language_only_for_enough_text() -> None:
    assert metadata.detect_language("PKK attack") is None
    text = (
        "Milli Savunma Bakanlığı, Irak'ın kuzeyindeki operasyon bölgesinde son bir haftada "
        "çok sayıda mağara, sığınak ve mühimmat deposunun imha edildiğini açıkladı. Bakanlık, "
        "operasyonlarda kayıp olmadığını bildirdi ve arama faaliyetlerinin sürdüğünü söyledi."
    )
    assert metadata.detect_language(text) == "tr"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-18T07:45:00+03:00", datetime(2026, 11, 18, 4, 45, tzinfo=UTC)),
        ("2026-11-18T04:45:00Z", datetime(2026, 11, 18, 4, 45, tzinfo=UTC)),
        ("2026-11-18 04:45:00", datetime(2026, 11, 18, 4, 45, tzinfo=UTC)),
        ("2026-11-18", datetime(2026, 11, 18, tzinfo=UTC)),
        ("Wed, 18 Nov 2026 07:45:00 +0300", datetime(2026, 11, 18, 4, 45, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
    ],
)
def test_parse_datetime(raw: str, expected: datetime | None) -> None:
    assert metadata.parse_datetime(raw) == expected


def test_arabic_script_kurdish_is_reported_as_sorani() -> None:
    sorani = (
        "سەرۆکی هەرێمی کوردستان لە دیدارێکدا لەگەڵ باڵیۆزی ئەمریکا باسی لە پەیوەندییەکانی نێوان "
        "هەولێر و بەغدا کرد و جەختی لەسەر گرنگیی چارەسەرکردنی کێشەکان کردەوە و داوای کرد "
        "هەماهەنگیی ئەمنی لە ناوچە جێناکۆکەکان بەهێز بکرێت بۆ ڕێگرتن لە هێرشەکانی داعش"
    )
    assert metadata.detect_language(sorani) == "ckb"


def test_truncated_headline_gives_way_to_the_full_title() -> None:
    full = (
        "Turkish jets strike PKK positions in northern Iraq after border attack on Hakkari outpost"
    )
    title = metadata.choose_title(
        [full[:60] + "…", full + " | Tigris Review"], site_names=["Tigris Review"]
    ).text
    assert title == full
