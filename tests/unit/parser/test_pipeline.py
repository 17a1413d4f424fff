"""parse_page on realistic pages: exact body text and fields."""

from __future__ import annotations

import random
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from typing import Any

import pytest

from services.parser.dedup import content_hash, similarity
from services.parser.pipeline import parse_page, warm_up
from shared.errors import PermanentError
from shared.messages import Article, Page, RemovedSpan
from shared.settings import Settings

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PageFrom = Callable[..., Page]
ReadFixture = Callable[..., str]
SETTINGS = Settings(database_url=None, kafka_bootstrap=None)

TIGRIS_URL = (
    "https://www.tigrisreview.com/security/2026/11/18/turkish-jets-strike-pkk-northern-iraq"
)
TIGRIS_BODY = (
    "Turkish warplanes hit dozens of suspected PKK targets in the Qandil and Gara regions of "
    "northern Iraq overnight, the defence ministry in Ankara said on Tuesday, a day after an "
    "attack killed two soldiers near the border.\n\n"
    "The ministry said 32 targets, including caves, shelters and ammunition depots used by the "
    "Kurdistan Workers' Party (PKK), were destroyed in the operation, which began shortly after "
    "midnight local time.\n\n"
    '"Our fight against terrorism will continue until the last terrorist is neutralised," the '
    "ministry said in a statement posted on social media. It did not say whether there were "
    "casualties on the ground.\n\n"
    "Iraq's foreign ministry condemned the strikes as a violation of its sovereignty and said it "
    "would summon the Turkish charge d'affaires in Baghdad. The Kurdistan Regional Government in "
    "Erbil called on both sides to avoid harming civilians in the mountain villages of Duhok "
    "province.\n\n"
    "Ankara and Baghdad agreed last year to treat the PKK as a banned organisation and set up a "
    "joint security coordination centre, but Iraqi officials have repeatedly objected to "
    "cross-border operations that they say were not coordinated with them.\n\n"
    "The PKK, which has waged an insurgency against the Turkish state since 1984, is designated "
    "a terrorist organisation by Turkey, the United States and the European Union. The group did "
    "not immediately comment on the strikes."
)

ZAGROS_URL = (
    "https://zagrosdaily.com/news/iraq/iraqi-forces-dismantle-islamic-state-cell-in-kirkuk/"
)
ZAGROS_LEAD = (
    "Iraqi counter-terrorism forces arrested five suspected Islamic State members in a night raid "
    "on the outskirts of Kirkuk, security officials said on Friday, seizing explosives and a drone "
    "they say was meant for an attack on a police checkpoint."
)
ZAGROS_CAPTION = (
    "Members of Iraq's Counter-Terrorism Service stand guard in Kirkuk, 20 November 2026."
)

TR_URL = "https://www.haberhatti.com.tr/gundem/msb-irakin-kuzeyinde-12-terorist-etkisiz-hale-getirildi-123456"
TR_TITLE = "MSB: Irak'ın kuzeyinde 12 PKK'lı terörist etkisiz hale getirildi"
TR_BODY = (
    "Milli Savunma Bakanlığı, Irak'ın kuzeyindeki Pençe-Kilit Operasyonu bölgesinde son bir "
    "haftada 12 PKK'lı teröristin etkisiz hale getirildiğini açıkladı.\n\n"
    "Bakanlıktan yapılan yazılı açıklamada, Metina ve Hakurk bölgelerinde düzenlenen hava "
    "destekli operasyonlarda çok sayıda mağara, sığınak ve mühimmat deposunun imha edildiği "
    "belirtildi.\n\n"
    'Açıklamada, "Terörle mücadelemiz son terörist etkisiz hale getirilinceye kadar kararlılıkla '
    "sürecektir\" ifadesine yer verildi. Bakanlık, operasyonlarda Türk Silahlı Kuvvetleri'nden "
    "kayıp olmadığını bildirdi.\n\n"
    "Irak hükümeti geçen yıl PKK'yı yasaklı örgüt ilan etmiş, iki ülke sınır güvenliği konusunda "
    "ortak bir koordinasyon merkezi kurma kararı almıştı. Bağdat yönetimi ise sınır ötesi "
    "operasyonların kendi egemenliğini ihlal ettiğini savunuyor.\n\n"
    "Güvenlik kaynakları, bölgedeki arama tarama faaliyetlerinin kış şartlarına rağmen sürdüğünü "
    "ve yeni sığınakların tespit edildiğini ifade etti."
)


def parse(page: Page, **kwargs: Any) -> Article:
    return parse_page(page, settings=kwargs.pop("settings", SETTINGS), now=NOW, **kwargs)


def test_clean_article_with_structured_metadata(page_from: PageFrom) -> None:
    article = parse(page_from("tigris_pkk_strikes.html", TIGRIS_URL))

    assert article.body_text == TIGRIS_BODY
    assert article.title == "Turkish jets strike PKK positions in northern Iraq after border attack"
    assert article.authors == ["Selin Arslan", "Omar Haddad"]
    assert article.published_at == datetime(2026, 11, 18, 4, 45, tzinfo=UTC)
    assert article.published_source == "jsonld"
    assert article.modified_at == datetime(2026, 11, 18, 8, 20, tzinfo=UTC)
    assert article.modified_source == "jsonld"
    assert article.language == "en"
    assert article.site_name == "Tigris Review"
    assert article.top_image == "https://cdn.tigrisreview.com/images/2026/11/f16-incirlik-1200.jpg"
    assert article.lead == TIGRIS_BODY.split("\n\n")[0]
    assert article.canonical_url == TIGRIS_URL
    assert article.captions == [
        "Turkish F-16 fighter jets take off from the Incirlik air base in Adana province. "
        "Photo: Reuters/Umit Bektas"
    ]
    # boxes inside <article> first (document order), then lines cut from the extracted text
    assert article.removed == [
        RemovedSpan(text="Share on Facebook Share on X WhatsApp Copy link", reason="share_bar"),
        RemovedSpan(text="Advertisement", reason="advertisement"),
        RemovedSpan(
            text="Security Brief Sign up for our free daily newsletter on security in the Middle "
            "East. Sign up",
            reason="newsletter",
        ),
        RemovedSpan(text="Share this article Facebook X Email", reason="share_bar"),
        RemovedSpan(
            text="Turkish jets strike PKK positions in northern Iraq after border attack",
            reason="title",
        ),
        # the standfirst repeats the lead; trafilatura keeps one copy, the cut is recorded
        RemovedSpan(text=TIGRIS_BODY.split("\n\n")[0], reason="duplicate_paragraph"),
    ]
    assert (article.status, article.paywalled) == ("ok", False)
    assert article.word_count == 219
    assert article.extraction == "trafilatura"
    assert article.content_hash == content_hash(TIGRIS_BODY)
    assert len(article.minhash) == 128
    assert article.parsed_at == NOW


def test_repeated_lead_caption_in_body_and_trailing_ad_are_cut_and_recorded(
    page_from: PageFrom,
) -> None:
    article = parse(page_from("zagros_kirkuk_cell.html", ZAGROS_URL))

    assert article.body_text == "\n\n".join(
        [
            ZAGROS_LEAD,
            "The raid in the Wadi al-Shay area, a rugged valley south of the city that has long "
            "served as a hideout for militants, followed weeks of surveillance, according to a "
            "statement from the Counter-Terrorism Service.",
            '"The cell was planning to target security forces and civilians during the coming '
            'holiday," the statement said, adding that the suspects had been referred to the '
            "judiciary.",
            "Islamic State lost its last territory in Iraq in 2017, but sleeper cells still carry "
            "out sporadic attacks in the disputed areas between the Kurdistan Region and federal "
            "Iraq, where security gaps between the two sides persist.",
            "Officials in Baghdad and Erbil have discussed joint brigades to close those gaps for "
            "several years, but the plan has been slowed by political disputes over control of "
            "Kirkuk province.",
        ]
    )
    assert article.removed == [
        RemovedSpan(text="Share this article Facebook Twitter Telegram", reason="share_bar"),
        RemovedSpan(
            text="Get the Zagros Daily morning briefing delivered straight to your inbox. Sign up",
            reason="newsletter",
        ),
        RemovedSpan(text="Iraqi forces dismantle Islamic State cell in Kirkuk", reason="title"),
        RemovedSpan(text="By Karwan Faraj | 20 November 2026", reason="byline"),
        RemovedSpan(text=ZAGROS_LEAD, reason="duplicate_paragraph"),
        RemovedSpan(text=ZAGROS_CAPTION, reason="caption"),
        RemovedSpan(text="ADVERTISEMENT", reason="advertisement"),
        RemovedSpan(
            text="Read more: Iraqi army launches operation in Hamrin mountains", reason="related"
        ),
        RemovedSpan(text="Advertisment", reason="advertisement"),
    ]
    assert article.captions == [ZAGROS_CAPTION]
    assert article.lead == ZAGROS_LEAD
    # JSON-LD author "By Karwan Faraj, Zagros Daily": no "By", no site name
    assert article.authors == ["Karwan Faraj"]
    assert article.title == "Iraqi forces dismantle Islamic State cell in Kirkuk"
    # rel=canonical is relative and carries utm_* parameters
    assert article.canonical_url == ZAGROS_URL
    assert article.top_image == "https://zagrosdaily.com/media/2026/11/kirkuk-cts-raid.jpg"
    assert article.published_at == datetime(2026, 11, 20, 11, 5, tzinfo=UTC)
    assert article.word_count == 168


def test_conflicting_dates_resolved_by_rules(page_from: PageFrom) -> None:
    """JSON-LD says 2016 (stale template; URL says 2026/11/20) and its dateModified precedes
    publication; the meta tags agree with the URL."""
    url = "https://euphratesobserver.org/2026/11/20/sdf-coalition-capture-is-commander-deir-ezzor/"
    article = parse(
        page_from(
            "euphrates_deir_ezzor_raid.html",
            url,
            feed_published=datetime(2026, 11, 20, 7, 0, tzinfo=UTC),
        )
    )
    assert (article.published_at, article.published_source) == (
        datetime(2026, 11, 20, 6, 10, tzinfo=UTC),
        "meta",
    )
    assert (article.modified_at, article.modified_source) == (
        datetime(2026, 11, 21, 4, 30, tzinfo=UTC),
        "meta",
    )
    # the Organization author is the site itself
    assert article.authors == ["Rania Khalil"]
    assert (
        article.title == "SDF and coalition forces capture Islamic State commander in Deir ez-Zor"
    )
    assert article.captions == [
        "SDF fighters in the town of al-Busayrah in eastern Deir ez-Zor. (Photo: Euphrates Observer)"
    ]
    assert article.body_text == "\n\n".join(
        [
            "The Syrian Democratic Forces (SDF) and the US-led coalition captured a senior Islamic "
            "State commander in a helicopter-borne raid in eastern Deir ez-Zor province early on "
            "Thursday, the Kurdish-led force said.",
            "The commander, identified by the SDF as a Syrian national responsible for financing "
            "cells along the Euphrates valley, was detained in the town of al-Busayrah along with "
            "two aides. Coalition aircraft circled the area for several hours during the operation.",
            "Residents reported clashes lasting about thirty minutes before the forces withdrew. "
            "There was no immediate word on casualties, and the coalition did not comment on the "
            "operation.",
            "The SDF, which controls much of north-east Syria, has stepped up raids against Islamic "
            "State cells in Deir ez-Zor since the spring, when attacks on its checkpoints and on oil "
            "field workers rose sharply.",
            "Thousands of suspected Islamic State fighters remain in SDF-run prisons, and tens of "
            "thousands of their relatives live in al-Hol and Roj camps, which Western officials "
            "warn could become breeding grounds for a resurgence of the group.",
        ]
    )


def test_only_the_feed_knows_the_date(page_from: PageFrom) -> None:
    url = "https://ninevehmonitor.net/yazidi-families-return-sinjar?utm_source=rss&utm_medium=feed"
    feed_date = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
    article = parse(page_from("sinjar_no_date.html", url, feed_published=feed_date))

    assert (article.published_at, article.published_source) == (feed_date, "feed")
    assert (article.modified_at, article.modified_source) == (None, None)
    # rel=canonical points at the home page: not sane, the normalised final URL wins
    assert article.canonical_url == "https://ninevehmonitor.net/yazidi-families-return-sinjar"
    assert article.authors == ["Layla Murad"]
    assert article.captions == ["A Yazidi family unloads belongings in Sinjar town."]
    assert article.removed == [
        RemovedSpan(text="Share Tweet Email", reason="share_bar"),
        RemovedSpan(text="Advertisement", reason="advertisement"),
        RemovedSpan(
            text="Subscribe to our newsletter for weekly updates from Nineveh.", reason="newsletter"
        ),
        RemovedSpan(
            text="Related stories New police force for Sinjar still not deployed", reason="related"
        ),
    ]
    assert article.body_text == "\n\n".join(
        [
            "Dozens of Yazidi families returned to the Sinjar district this week from camps in the "
            "Kurdistan Region, local officials said, even as an agreement between Baghdad and "
            "Erbil on the area's security and administration remains largely unimplemented.",
            "The 2020 deal was meant to remove armed groups linked to the PKK from Sinjar, install "
            "a new local police force and appoint a mayor acceptable to both governments. Yazidi "
            "leaders say that few of its provisions have been carried out.",
            "Turkish drone strikes on suspected PKK-affiliated fighters in the district have added "
            "to the fear among returnees. Several strikes in recent months hit vehicles on roads "
            "used by civilians.",
            "More than 200,000 Yazidis still live in displacement camps in Duhok province, "
            "according to the International Organization for Migration, a decade after Islamic "
            "State fighters killed and enslaved thousands of members of the community.",
        ]
    )

    undated = parse(page_from("sinjar_no_date.html", url))
    assert (undated.published_at, undated.published_source) == (None, None)


def test_future_dates_are_rejected(page_from: PageFrom) -> None:
    url = "https://kurdistancourier.com/news/drone-strike-hits-vehicle-near-duhok"
    feed_date = datetime(2026, 11, 21, 7, 12, tzinfo=UTC)
    article = parse(page_from("duhok_future_date.html", url, feed_published=feed_date))

    # JSON-LD and meta both say 2027: both rejected, the feed's date is used
    assert (article.published_at, article.published_source) == (feed_date, "feed")
    assert article.modified_at is None
    # "admin" is not an author
    assert article.authors == []
    assert article.captions == [
        "The wreckage of the vehicle near Duhok. (Photo: Kurdistan Courier)"
    ]

    # without a feed date nothing valid is left (htmldate must not guess the copyright year)
    assert article.body_text == "\n\n".join(
        [
            "Two people were killed when a drone struck a vehicle on a road near the town of Amedi "
            "in Duhok province on Saturday, the Kurdistan Region's counter-terrorism directorate "
            "said.",
            "The directorate said the drone belonged to the Turkish army and that the two dead were "
            "members of the PKK. Turkey rarely comments on individual strikes in the Kurdistan "
            "Region.",
            "Residents of villages in the Amedi and Barwari Bala areas have been displaced by years "
            "of fighting between Turkish forces and the PKK, and local officials have repeatedly "
            "asked both sides to keep the conflict away from civilian areas.",
        ]
    )

    undated = parse(page_from("duhok_future_date.html", url))
    assert (undated.published_at, undated.published_source) == (None, None)


def test_same_article_under_two_urls_has_one_content_hash(
    page_from: PageFrom, read_fixture: ReadFixture, build: PageFrom
) -> None:
    first = parse(page_from("tigris_pkk_strikes.html", TIGRIS_URL))
    # the same story republished under another section, with its own canonical link
    html = read_fixture("tigris_pkk_strikes.html").replace(
        TIGRIS_URL, "https://www.tigrisreview.com/world/turkish-jets-strike-pkk-northern-iraq"
    )
    second = parse(
        build(html, "https://www.tigrisreview.com/world/turkish-jets-strike-pkk-northern-iraq")
    )

    assert (
        second.canonical_url
        == "https://www.tigrisreview.com/world/turkish-jets-strike-pkk-northern-iraq"
    )
    assert second.canonical_url != first.canonical_url
    assert second.content_hash == first.content_hash
    assert second.minhash == first.minhash


def test_near_duplicate_rewrite_is_similar_but_not_identical(page_from: PageFrom) -> None:
    original = parse(page_from("tigris_pkk_strikes.html", TIGRIS_URL))
    rewrite = parse(
        page_from(
            "gulfdispatch_pkk_strikes_rewrite.html",
            "https://www.gulfdispatch.net/region/turkey-bombs-pkk-hideouts-northern-iraq",
        )
    )
    unrelated = parse(page_from("zagros_kirkuk_cell.html", ZAGROS_URL))

    assert rewrite.content_hash != original.content_hash
    assert similarity(rewrite.minhash, original.minhash) >= 0.8
    assert similarity(unrelated.minhash, original.minhash) < 0.1
    # "Gulf Dispatch with agencies" is a site name plus a placeholder: no person is named,
    # so the organisation stands in, marked as one
    assert (rewrite.authors, rewrite.author_kind) == (["Gulf Dispatch"], "organization")
    assert rewrite.title == "Turkey bombs PKK hideouts in northern Iraq after soldiers killed"
    assert rewrite.removed == [
        RemovedSpan(text="Share on Facebook Share on X Share on LinkedIn", reason="share_bar"),
        RemovedSpan(text="Sponsored", reason="advertisement"),  # a "dfp-ad" box
        RemovedSpan(text="Sign up for the Gulf Dispatch newsletter", reason="newsletter"),
        RemovedSpan(
            text="Turkey bombs PKK hideouts in northern Iraq after soldiers killed", reason="title"
        ),
    ]
    # the syndicated copy: first sentence reworded, one sentence added at the end
    assert (
        rewrite.body_text
        == TIGRIS_BODY.replace(
            "the defence ministry in Ankara said", "Turkey's defence ministry said"
        )
        + "\n\nTurkey has carried out similar strikes after previous attacks on its troops."
    )


def test_turkish_article(page_from: PageFrom) -> None:
    article = parse(page_from("haberhatti_tr_operasyon.html", TR_URL))

    assert article.body_text == TR_BODY
    assert article.title == TR_TITLE
    assert article.language == "tr"
    assert article.authors == ["Ayşe Yıldırım"]
    assert article.site_name == "Haber Hattı"
    assert article.captions == [
        "Pençe-Kilit Operasyonu bölgesinde görev yapan askerler. (Fotoğraf: AA)"
    ]
    assert [(span.text, span.reason) for span in article.removed] == [
        ("Facebook'ta paylaş Twitter'da paylaş WhatsApp", "share_bar"),
        ("Reklam", "advertisement"),
        ("Günün önemli haberleri için e-bültenimize abone olun.", "newsletter"),
        ("İlgili Haberler Sınır karakoluna saldırı girişimi önlendi", "related"),
        (TR_TITLE, "title"),
    ]
    assert article.published_at == datetime(2026, 11, 19, 13, 40, tzinfo=UTC)


@pytest.mark.parametrize("fallback_codec", ["cp1252", "latin-1", "cp1250", "iso8859-2"])
def test_windows_1254_page_declared_utf8_is_repaired_from_single_byte_decoding(
    page_from: PageFrom, fallback_codec: str
) -> None:
    """The fetcher found the bytes invalid as UTF-8 and fell back to a single-byte codec:
    nothing is lost, the parser re-decodes as windows-1254."""
    article = parse(
        page_from(
            "haberhatti_tr_cp1254_declared_utf8.html",
            TR_URL,
            encoding=fallback_codec,
            charset=fallback_codec,
        )
    )
    assert article.body_text == TR_BODY
    assert article.title == TR_TITLE
    assert article.authors == ["Ayşe Yıldırım"]
    assert article.language == "tr"
    assert article.extraction == "trafilatura+cp1254"
    assert article.content_hash == content_hash(TR_BODY)


def test_windows_1254_page_decoded_as_declared_utf8_is_dead_lettered(page_from: PageFrom) -> None:
    page = page_from("haberhatti_tr_cp1254_declared_utf8.html", TR_URL, errors="replace")
    with pytest.raises(PermanentError) as caught:
        parse(page)
    assert caught.value.kind == "charset"


def test_utf8_page_decoded_as_cp1252_is_repaired(
    read_fixture: ReadFixture, build: PageFrom
) -> None:
    mojibake = read_fixture("haberhatti_tr_operasyon.html", encoding="latin-1")
    assert "Ä±" in mojibake  # "ı" seen through the wrong codec
    article = parse(build(mojibake, TR_URL, charset="iso-8859-1"))
    assert article.body_text == TR_BODY
    assert article.extraction == "trafilatura+utf-8"


def test_paywalled_teaser(page_from: PageFrom) -> None:
    url = "https://www.themeridian.co.uk/analysis/ankara-syria-buffer-zone-plan"
    article = parse(page_from("meridian_paywall_teaser.html", url))

    assert (article.status, article.paywalled) == ("teaser", True)
    assert article.authors == ["James Whitfield"]
    assert article.body_text == (
        "Turkey's long-standing plan for a 30-kilometre security zone along its border with Syria "
        "has returned to the agenda in Ankara, as officials weigh the future of Kurdish-led forces "
        "in the north-east after the drawdown of US troops."
    )
    assert article.removed == [
        RemovedSpan(text="Share Email", reason="share_bar"),
        RemovedSpan(text="Sign up to our Middle East newsletter.", reason="newsletter"),
        RemovedSpan(text="Related stories SDF talks", reason="related"),
        RemovedSpan(
            text="Subscribe to continue reading. Already a subscriber? Log in.",
            reason="paywall_prompt",
        ),
    ]


def test_parse_is_deterministic(page_from: PageFrom) -> None:
    page = page_from("zagros_kirkuk_cell.html", ZAGROS_URL)
    assert parse(page).model_dump() == parse(page).model_dump()


# --- failures ----------------------------------------------------------------------------------


def _kind(page: Page, settings: Settings = SETTINGS) -> str:
    with pytest.raises(PermanentError) as caught:
        parse(page, settings=settings)
    return caught.value.kind


def test_http_error_page(page_from: PageFrom) -> None:
    assert _kind(page_from("zagros_soft_404.html", ZAGROS_URL, status_code=404)) == "not_article"


def test_soft_404_served_with_200(page_from: PageFrom) -> None:
    assert (
        _kind(page_from("zagros_soft_404.html", "https://zagrosdaily.com/news/gone/"))
        == "not_article"
    )


def test_section_index_page(
    page_from: PageFrom, read_fixture: ReadFixture, build: PageFrom
) -> None:
    url = "https://www.tigrisreview.com/security/"
    assert _kind(page_from("tigris_security_section.html", url)) == "not_article"
    # without its CollectionPage JSON-LD the page is still mostly link text
    html = read_fixture("tigris_security_section.html")
    start, end = html.index("<script"), html.index("</script>") + len("</script>")
    assert _kind(build(html[:start] + html[end:], url)) == "not_article"


@pytest.mark.parametrize(
    "html",
    ["", "   \n ", "<html><body></body></html>", "<html><body><p>Short note.</p></body></html>"],
)
def test_empty_pages(build: PageFrom, html: str) -> None:
    assert _kind(build(html, "https://zagrosdaily.com/news/empty/")) == "empty"


@pytest.mark.parametrize("kind", ["base64", "binary"])
def test_garbage_text(build: PageFrom, kind: str) -> None:
    if kind == "base64":  # an attachment inlined as text: long unbroken tokens
        blob = " ".join("".join(f"{i:08x}+/=" for i in range(j, j + 8)) for j in range(0, 800, 8))
    else:  # a binary file decoded as latin-1: mostly symbols and marks
        rng = random.Random(4)
        alphabet = [chr(c) for c in range(0x21, 0x100) if c not in range(0x7F, 0xA0) and c != 0x3C]
        blob = " ".join("".join(rng.choices(alphabet, k=rng.randint(2, 9))) for _ in range(600))
    html = (
        "<html><head><title>Report</title><meta property='og:type' content='article'></head><body>"
        f"<article><p>{escape(blob)}</p></article></body></html>"
    )
    assert _kind(build(html, "https://zagrosdaily.com/news/blob/")) == "garbage"


def test_huge_dom(page_from: PageFrom) -> None:
    tight = SETTINGS.model_copy(update={"max_dom_nodes": 50})
    assert _kind(page_from("tigris_pkk_strikes.html", TIGRIS_URL), tight) == "dom_too_large"


def test_time_limit_inside_the_worker(read_fixture: ReadFixture, build: PageFrom) -> None:
    html = read_fixture("tigris_pkk_strikes.html")
    body = html[html.index('<div class="story-body">') : html.index("</article>")]
    big = html.replace("</main>", body * 40 + "</main>")
    previous = signal.getsignal(signal.SIGALRM)
    tight = SETTINGS.model_copy(update={"parse_timeout_s": 0.002, "max_dom_nodes": 1_000_000})

    assert _kind(build(big, TIGRIS_URL), tight) == "parse_timeout"
    # the alarm is disarmed and the previous handler restored
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    assert signal.getsignal(signal.SIGALRM) is previous


def test_page_wrapped_in_one_form_aspnet_style(read_fixture: ReadFixture, build: PageFrom) -> None:
    html = read_fixture("tigris_pkk_strikes.html")
    html = html.replace('<body class="article-page">', '<body><form id="aspnetForm" method="post">')
    html = html.replace("</body>", "</form></body>")
    assert parse(build(html, TIGRIS_URL)).body_text == TIGRIS_BODY


def test_js_rendered_page_falls_back_to_jsonld_article_body(page_from: PageFrom) -> None:
    url = "https://levantledger.com/syria/ceasefire-deir-hafer-sdf"
    article = parse(page_from("levant_js_rendered.html", url))

    assert article.extraction == "jsonld"
    paragraphs = article.body_text.split("\n\n")
    assert len(paragraphs) == 4
    assert paragraphs[0].endswith(
        "after three days of clashes that killed at least eleven fighters, according to a war monitor."
    )
    assert paragraphs[-1] == (
        "Turkey, which considers the main component of the SDF an offshoot of the PKK, has "
        "repeatedly threatened a new cross-border operation if the group is not disarmed."
    )
    assert article.authors == ["Nour Al-Din Saleh"]
    assert article.captions == ["A checkpoint on the road to Deir Hafer."]


def test_warm_up_parses_its_built_in_page() -> None:
    warm_up()  # raises if the built-in page stopped parsing


def test_the_periodic_cache_reset_logs_no_error(caplog) -> None:
    """``make soak`` found an ERROR line every 500 pages from htmldate's reset of
    charset_normalizer caches that no longer exist; a healthy parser logs no ERROR."""
    import logging

    from services.parser import pipeline

    with caplog.at_level(logging.DEBUG):
        pipeline._reset_library_caches()
        pipeline._reset_library_caches()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
