from __future__ import annotations

import lxml.html
import pytest

from services.parser.clean import clean_paragraphs, strip_article_boxes
from services.parser.extract import Caption
from shared.messages import RemovedSpan

BODY = [
    "Turkish drones struck a vehicle carrying PKK members near Sulaymaniyah on Monday, Kurdish "
    "security officials said, the third such strike in the province this month.",
    "Iraqi President Abdul Latif Rashid condemned the attack and called for an investigation.",
]


def _reasons(paragraphs: list[str], **kwargs: object) -> list[tuple[str, str]]:
    cleaned = clean_paragraphs(paragraphs, **kwargs)  # type: ignore[arg-type]
    assert cleaned.paragraphs == BODY
    return [(span.text, span.reason) for span in cleaned.removed]


@pytest.mark.parametrize(
    "line",
    [
        "Advertisement",
        "Advertisment",
        "ADVERTISEMENT",
        "Ad",
        "- Advertisement -",
        "advertising",
        "Story continues below advertisement",
        "Scroll to continue with content",
        "Reklam",
    ],
)
def test_ad_lines_anywhere(line: str) -> None:
    assert _reasons([BODY[0], line, BODY[1], line]) == [(line, "advertisement")] * 2


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("Share this article", "share_bar"),
        ("Facebook Twitter WhatsApp Email", "share_bar"),
        ("Copy link", "share_bar"),
        ("Sponsored", "sponsor"),
        ("Sponsored by Anatolian Defence Systems", "sponsor"),
        ("Sign up for our free daily newsletter on security in the Middle East.", "newsletter"),
        ("Get the Zagros Daily morning briefing delivered straight to your inbox.", "newsletter"),
        (
            "We use cookies to improve your experience. By continuing you agree to our cookie policy.",
            "cookie_notice",
        ),
        ("Accept all cookies", "cookie_notice"),
        ("Read more: Iraq summons Turkish envoy over drone strike", "related"),
        ("Tags: PKK, Iraq, Turkey", "tags"),
        ("Photo: Reuters/Umit Bektas", "credit"),
        ("(Photo: AFP)", "credit"),
        ("Subscribe to continue reading", "paywall_prompt"),
        ("إعلان", "advertisement"),
        ("اقرأ أيضاً:", "related"),
        ("شارك الخبر", "share_bar"),
        ("Bunlar da ilginizi çekebilir", "related"),
    ],
)
def test_boilerplate_lines(line: str, reason: str) -> None:
    assert _reasons([BODY[0], line, BODY[1]]) == [(line, reason)]


def test_related_list_after_its_heading() -> None:
    lines = [
        BODY[0],
        BODY[1],
        "Related stories",
        "Iraq summons Turkish envoy over drone strike in Sulaymaniyah",
        "- SDF and Damascus resume talks",
    ]
    assert [r for _, r in _reasons(lines)] == ["related"] * 3


def test_real_sentences_mentioning_ads_cookies_or_sharing_are_kept() -> None:
    sentences = [
        "The ministry said the advertisement for recruits had been placed by a front company.",
        "Officials said they would share intelligence on the attack with Baghdad and Erbil.",
        "By late Tuesday, Turkish troops had withdrawn from the village.",
    ]
    cleaned = clean_paragraphs(sentences)
    assert cleaned.paragraphs == sentences
    assert cleaned.removed == []


def test_byline_and_dateline_only_near_the_top() -> None:
    late = "By Selin Arslan"
    assert _reasons(
        [
            "By Selin Arslan and Omar Haddad | 18 November 2026",
            "Updated: 18 Nov 2026, 11:20 GMT",
            *BODY,
        ]
    ) == [
        ("By Selin Arslan and Omar Haddad | 18 November 2026", "byline"),
        ("Updated: 18 Nov 2026, 11:20 GMT", "dateline"),
    ]
    # further down the same line is not cut (it could be a real one-line paragraph)
    cleaned = clean_paragraphs([*BODY, "A third paragraph.", "A fourth paragraph.", late])
    assert late in cleaned.paragraphs


def test_repeated_paragraph_and_standfirst_prefix() -> None:
    standfirst = "Turkish drones struck a vehicle carrying PKK members near Sulaymaniyah on Monday"
    cleaned = clean_paragraphs([standfirst, BODY[0], BODY[1], BODY[0]])
    assert cleaned.paragraphs == BODY
    assert cleaned.removed == [
        RemovedSpan(text=standfirst, reason="duplicate_paragraph"),
        RemovedSpan(text=BODY[0], reason="duplicate_paragraph"),
    ]


def test_short_repeated_lines_are_not_duplicates() -> None:
    cleaned = clean_paragraphs(["Background", BODY[0], "Background", BODY[1]])
    assert cleaned.paragraphs == ["Background", BODY[0], "Background", BODY[1]]


def test_captions_credit_and_title() -> None:
    caption = Caption(text="Turkish soldiers patrol near the border. Photo: AA", credit="Photo: AA")
    cleaned = clean_paragraphs(
        [
            "Drone strike near Sulaymaniyah",
            BODY[0],
            "Turkish soldiers patrol near the border.",
            BODY[1],
            "Photo: AA",
        ],
        titles=("Drone strike near Sulaymaniyah", None),
        captions=[caption],
    )
    assert cleaned.paragraphs == BODY
    assert cleaned.captions == [caption.text]
    assert [s.reason for s in cleaned.removed] == ["title", "caption", "caption"]


def test_whitespace_and_nbsp_normalised() -> None:
    cleaned = clean_paragraphs(["  Turkish\u00a0drones   struck. ", "\u200b"])
    assert cleaned.paragraphs == ["Turkish drones struck."]


def _tree(body: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(f"<html><body>{body}</body></html>")


def test_boxes_inside_the_article_are_cut_in_document_order() -> None:
    paragraphs = "".join(f"<p>{p}</p>" for p in BODY)
    tree = _tree(
        '<div class="sidebar related">Most read elsewhere</div>'
        f'<article class="promo"><div class="social-share"><a>Share</a><a>Tweet</a></div>{paragraphs}'
        '<div class="ad-slot"><span>Advertisement</span><div class="ad-label">Ad</div></div>'
        '<div class="ad-slot"></div>'
        '<aside class="newsletter-box"><p>Sign up</p></aside>'
        '<p class="headline shadow badge loading">kept</p></article>'
    )
    removed = strip_article_boxes(tree)
    assert [(r.text, r.reason) for r in removed] == [
        ("Share Tweet", "share_bar"),
        ("Advertisement Ad", "advertisement"),  # the nested ad label is not recorded twice
        ("Sign up", "newsletter"),
    ]
    article = tree.find(".//article")
    assert [p.text for p in article.iter("p")] == [*BODY, "kept"]
    # outside the article container nothing is touched (the extractor drops page chrome)
    assert tree.find(".//div[@class='sidebar related']") is not None


def test_no_article_container_no_box_cuts() -> None:
    tree = _tree('<div class="share">Share</div><p>text</p>')
    assert strip_article_boxes(tree) == []
    assert tree.find(".//div") is not None


def test_a_box_class_on_the_story_wrapper_does_not_remove_the_story() -> None:
    paragraphs = "".join(f"<p>{p}</p>" for p in BODY)
    tree = _tree(
        f'<article><div class="promo">{paragraphs}</div><div class="share">Share</div></article>'
    )
    assert [(r.text, r.reason) for r in strip_article_boxes(tree)] == [("Share", "share_bar")]
    assert [p.text for p in tree.iter("p")] == BODY
