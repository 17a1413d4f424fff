"""Deterministic, recorded cleaning: boxes inside the article (DOM), then extracted lines.

Every cut is kept as ``RemovedSpan(text, reason)`` so a user can audit the cleaner.

* :func:`strip_article_boxes` removes ad slots, share bars, newsletter and related-story boxes
  *inside the article container* by their class/id (:data:`BOX_RULES`), before extraction.
  Page chrome outside the article (menus, sidebars, footers) is dropped by the extractor and
  not recorded: it is the same on every page and would only bury the interesting cuts.
* :func:`clean_paragraphs` applies :data:`LINE_RULES` to the extracted paragraphs: a reason, a
  pattern that must match the *whole* paragraph (case-insensitive) and a word limit, so a rule
  for "Advertisement" can never cut a real sentence that merely mentions advertising.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml.html import HtmlElement

from services.parser.extract import PHOTO_WORDS, Caption
from shared.messages import RemovedSpan

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = (
    rf"(?:\d{{1,2}}\s+{_MONTH}\s+\d{{4}}|{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}"
    r"|\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{2,4})"
)
_TIME = (
    r"(?:,?\s*(?:at\s+)?\d{1,2}[:.]\d{2}\s*(?:am|pm)?\s*(?:gmt|utc|[A-Z]{3}|[+-]\d{2}:?\d{2})?)?"
)
_NAME = r"(?-i:[A-Z][\w'’.-]*)"
_SHARE_WORDS = (
    "share|sharing|this|article|story|page|on|via|tweet|facebook|twitter|x|whatsapp|telegram"
    "|paylaş|facebook'ta|twitter'da|x'te"
    "|شارك|مشاركة|الخبر|المقال"  # Arabic: share, sharing, the news item, the article
    "|linkedin|reddit|pinterest|messenger|email|e-mail|mail|print|copy|link|url|comments?|save"
)


#: news agencies and wire services credited in bylines and sign-offs: a source, never a person
#: (compared by normalise_key). The author only when no person is named, as an organisation.
NEWS_AGENCIES = frozenset(
    {
        "afp", "ap", "associated press", "reuters", "dpa", "efe", "ansa", "xinhua", "upi",
        "aa", "anadolu", "anadolu agency", "anadolu ajansı", "anadolu ajansi", "dha", "iha",
        "anka", "ilkha", "mezopotamya ajansı", "ina", "iraqi news agency", "nina", "sana", "irna",
        "isna", "tasnim", "fars", "mehr", "kuna", "wam", "spa", "mena", "bna", "sputnik", "tass",
        "وكالة الأنباء العراقية", "واع", "سانا", "رويترز", "الأناضول", "فرانس برس",
    }
)  # fmt: skip

#: (reason, whole-paragraph pattern, max words). First match wins; order matters.
LINE_RULES: tuple[tuple[str, str, int], ...] = (
    (
        "advertisement",
        r"[\W_]*(?:adver\w*|ad|ads|anzeige|annonce|reklam|publicit[eé]|إعلان|اعلان|ڕیکلام|ریکلام)[\W_]*"
        r"|(?:story|article|text) continues (?:below|after)(?: (?:this )?(?:advert\w*|ad))?\W*"
        r"|continue reading (?:below|after (?:the )?ad\w*)\W*"
        r"|scroll (?:down )?to continue(?: reading)?(?: with content)?\W*"
        r"|(?:skip|close|remove|hide) (?:this )?(?:advert\w*|ads?)\W*|ad feedback",
        8,
    ),
    (
        "sponsor",
        r"[\W_]*(?:sponsored|promoted|paid|partner)(?: (?:content|post|partnership|story|links?))?"
        r"(?:\s*(?:by|:)\s*.{1,60})?[\W_]*"
        r"|(?:in partnership with|presented by|brought to you by|powered by|this (?:article|content)"
        r" (?:is|was) (?:sponsored|paid for|produced in partnership) (?:by|with)) .{1,60}",
        14,
    ),
    (
        "paywall_prompt",
        r".*(?:(?:subscribe|sign in|log in|login|register) (?:now )?to (?:continue|read|unlock)"
        r"|(?:available|reserved) (?:only )?(?:for|to) (?:our )?(?:subscribers|members)"
        r"|(?:for|to) (?:paying )?subscribers only|already a (?:subscriber|member)"
        r"|reached your (?:free )?(?:article|monthly) limit|become a (?:subscriber|member)"
        r"|unlock (?:this|the full) (?:article|story)).*",
        40,
    ),
    (
        "share_bar",
        rf"(?:[\W_]*\b(?:{_SHARE_WORDS})\b[\W_]*)+",
        12,
    ),
    (
        "cookie_notice",
        r".*\bcookies?\b.*\b(?:use|accept|consent|agree|policy|settings|preferences|browsing)\b.*"
        r"|.*\b(?:use|accept|consent|agree|policy|settings|preferences|browsing)\b.*\bcookies?\b.*"
        r"|(?:accept|reject|allow|decline)(?: all)?(?: cookies)?|manage (?:preferences|cookies|settings)",
        70,
    ),
    (
        "newsletter",
        r".*\b(?:sign(?:ing)? up|signup|subscribe|register)\b.*\b(?:newsletters?|briefings?"
        r"|bulletins?|inbox|e-?mail alerts?|updates)\b.*"
        r"|.*\b(?:newsletters?|briefings?)\b.*\b(?:sign up|subscribe|inbox|delivered|straight to"
        r" your)\b.*|get (?:our|the) .{0,60} newsletter.*|newsletters?|sign up"
        # Turkish: "e-bültenimize abone olun", "bültene kaydolun"
        r"|.*\b(?:e-?)?bülten\w*\b.*\b(?:abone|kaydol|kayıt)\w*.*",
        40,
    ),
    (
        "related",
        r"(?:related(?: (?:stories|articles|news|coverage|content|topics|reading))?"
        r"|read (?:more|also|next)|see also|also read|more (?:on this(?: story)?|stories|news)"
        r"|you (?:may|might) (?:also )?(?:like|be interested in)|recommended(?: for you)?"
        r"|most (?:read|popular|viewed)|trending(?: now)?|top stories|latest news"
        r"|ilgili haberler|benzer haberler|bunlar da ilginizi çekebilir|çok okunanlar"
        r"|اقرأ أيضا|اقرأ أيضاً|اقرأ المزيد|ذات صلة|أخبار ذات صلة|مواضيع ذات صلة)[\s:|>»›.-]*"
        r"|(?:read (?:more|also|next)|see also|also read|related|watch|listen)\s*[:|»›-]\s*.+",
        25,
    ),
    ("tags", r"(?:tags?|topics?|filed under|keywords)\s*[:|]\s*.+", 25),
    # "Source: Reuters", "Kaynak: AA", "المصدر: وكالة الأنباء العراقية", "Sources: AFP, AA"
    (
        "source",
        r"[(\[]?(?:sources?|kaynak(?:lar)?|haber kaynağı|المصدر|مصدر|سەرچاوە|çavkanî|منبع)"
        r"\s*:\s*[^.!?]{1,60}[)\]]?",
        8,
    ),
    # a desk or a role alone on a line near the top is where a byline would be
    (
        "byline",
        r"(?:haber merkezi|dış haberler(?: servisi)?|staff (?:reporter|writer)|news ?desk"
        r"|web desk|newsroom|(?:ال)?محرر(?:\s+\S+){0,3}|سەرنووسەر|دبیرخانه)[\W_]*",
        5,
    ),
    (
        "credit",
        rf"[(\[]?(?:photos?|photograph|image|picture|pic|video|graphic|illustration|file photo"
        rf"|{PHOTO_WORDS})"
        r"(?: credit)?\s*[:/|©]\s*.{1,80}[)\]]?|[(\[]?©\s*.{1,60}[)\]]?"
        r"|[(\[]?(?:credit|photo credit|image credit)\s*:\s*.{1,60}[)\]]?",
        14,
    ),
    (
        # a line ending in a photo credit is a caption, whatever precedes it
        "caption",
        rf".{{1,400}}?\s[(\[](?:photos?|photograph|image|picture|credit|{PHOTO_WORDS})\s*[:/]\s*"
        r"[^()\[\]]{1,80}[)\]]\W*",
        60,
    ),
    (
        # the same without brackets, after a full stop or a bar: "Smoke over Sinjar. Photo:
        # Safin Hamid / AFP", "... | Photo by Safin Hamid/AFP", "... AFP PHOTO / SAFIN HAMID",
        # "... (AFP via Getty Images)". The credit is a few words with no sentence in it.
        "caption",
        rf".{{1,400}}?(?:[.!?…”\"]\s+|\s[|–—•·]\s*)"
        rf"(?:(?:photos?|photograph|image|picture|credit|{PHOTO_WORDS})(?:\s+credit)?\s*:"
        r"|(?:photo(?:graph)?|picture|image)\s+by)\s+[^.!?:;()]{1,60}"
        r"|.{1,400}?\s(?:[(\[]?(?:afp|ap|aa|epa|reuters|dha|iha)\s+photos?\s*/\s*[^.!?:;()]{1,60}"
        r"|[(\[](?:[\w./-]+(?:\s+[\w./-]+){0,3}\s+(?:via|/)\s+)?getty\s+images[)\]])\W*",
        60,
    ),
    (
        "byline",
        # names must be capitalised ((?-i:...)), so "By late Tuesday, troops..." is not a byline
        rf"(?:by|written by|reporting by)\s+{_NAME}(?:\s*(?:,|&|\band\b)?\s*{_NAME})*"
        rf"(?:\s*[|,·–-]?\s*(?:{_DATE}{_TIME}|in\s+{_NAME}(?:\s+{_NAME})*))*",
        16,
    ),
    (
        "dateline",
        rf"(?:(?:first )?(?:published|updated|posted|last updated|modified)(?: on| at)?:?\s*)?"
        rf"(?:\w+,?\s+)?{_DATE}{_TIME}(?:\s*[|·-]\s*(?:updated:?\s*)?(?:{_DATE})?{_TIME})?"
        r"|(?:(?:first )?(?:published|updated|posted|last updated))\b.{0,40}\d.{0,40}",
        12,
    ),
)
_COMPILED = tuple(
    (reason, re.compile(pattern, re.IGNORECASE | re.DOTALL), max_words)
    for reason, pattern, max_words in LINE_RULES
)
#: promotional lines cut only at the start or the end of the body, where they are furniture:
#: a brand next to "Advertisement" (or a misspelling), "Sponsored", "Ad". Inside the text,
#: "Daquq Motors ad" could be a sentence fragment worth keeping.
_BRAND = r"(?:[\w&'’.,+-]+\s+){1,5}"
_AD_WORD = r"(?:adv[ae]r?t\w*|ads?|reklam\w*|anzeige|annonce|publicit[eé]|إعلان)"
_SPONSOR_WORD = (
    r"(?:sponsor(?:ed|lu)?|promoted|promo|paid (?:post|content|partnership)|partner content)"
)
EDGE_RULES: tuple[tuple[str, str, int], ...] = (
    (
        "advertisement",
        rf"[\W_]*{_BRAND}{_AD_WORD}[\W_]*|[\W_]*{_AD_WORD}\s*[:|–—-]?\s*{_BRAND}?\S+[\W_]*",
        7,
    ),
    (
        "sponsor",
        rf"[\W_]*{_BRAND}{_SPONSOR_WORD}[\W_]*|[\W_]*{_SPONSOR_WORD}\s*[:|–—-]?\s*{_BRAND}?\S+[\W_]*",
        7,
    ),
)
_EDGE_COMPILED = tuple(
    (reason, re.compile(pattern, re.IGNORECASE), max_words)
    for reason, pattern, max_words in EDGE_RULES
)
#: rules that only apply near the top of the body (they would cut real text further down)
TOP_ONLY_REASONS = frozenset({"byline", "dateline"})
TOP_LINES = 4
#: a run of at least NAV_RUN lines of at most NAV_MAX_WORDS words and NAV_MAX_CHARS
#: characters (scripts without spaces), none ending a sentence, opening the text is a menu or
#: breadcrumb trail the extractor took in ("- News", "- World")
NAV_RUN = 3
NAV_MAX_WORDS = 5
NAV_MAX_CHARS = 40
#: a last line of 2-3 capitalised words and nothing else is the reporter's sign-off
#: ("Lê Phương"), recorded as a byline so the author is kept
_CAP_WORD = r"(?-i:[^\W\d_a-zçğıöşü][^\W\d_]*(?:[-'’][^\W\d_]+)*\.?)"
#: (a late "By Name" line stays: the byline rule only applies near the top, see TOP_LINES)
_SIGN_OFF = re.compile(rf"(?!(?i:by|von|par|por)\s){_CAP_WORD}(?:\s+{_CAP_WORD}){{1,2}}")
#: a paragraph must be this long to count as a repeat (short labels legitimately recur)
MIN_DUPLICATE_CHARS = 30
#: a paragraph this long found inside another (a standfirst, then the lead that starts with
#: it) is a repeat wherever the two are
MIN_CONTAINED_CHARS = 60
#: paragraphs of at least this many words sharing this share of their words are one
#: paragraph rendered twice (a standfirst with "on Tuesday" dropped)
MIN_NEAR_DUPLICATE_WORDS = 12
NEAR_DUPLICATE_OVERLAP = 0.9
#: repeats are looked for among kept paragraphs sharing this share of the smaller one's words,
#: counting only words in at most MAX_WORD_POSTINGS kept paragraphs ("the" says nothing)
CANDIDATE_SHARE = 0.3
MAX_WORD_POSTINGS = 50
#: after a "Related stories" heading, headline-like lines up to this length are list items
MAX_RELATED_ITEM_WORDS = 20
_LIST_MARKER = re.compile(r"^[-•*·▪►»]\s+")
_SENTENCE_END = re.compile(r"[.!?…\"'”’。！？」؟]$")


@dataclass(slots=True)
class Cleaned:
    paragraphs: list[str]
    captions: list[str] = field(default_factory=list)
    removed: list[RemovedSpan] = field(default_factory=list)
    paywall_prompt: bool = False


def normalise_key(text: str) -> str:
    """Comparison key: NFKC, case-folded, punctuation-free, single-spaced."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def normalise_paragraph(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("\u00a0", " ").replace("\u200b", "")
    return " ".join(text.split())


def _match_rule(text: str, *, position: int) -> str | None:
    words = len(text.split())
    probe = _LIST_MARKER.sub("", text)
    for reason, pattern, max_words in _COMPILED:
        if words > max_words:
            continue
        if reason in TOP_ONLY_REASONS and position >= TOP_LINES:
            continue
        if pattern.fullmatch(probe):
            return reason
    return None


def _caption_keys(captions: Sequence[Caption]) -> dict[str, str]:
    """Key -> caption text to store, for the caption, its credit, and the caption sans credit."""
    keys: dict[str, str] = {}
    for caption in captions:
        for variant in (caption.text, caption.bare, caption.credit):
            if variant:
                keys.setdefault(normalise_key(variant), caption.text)
    keys.pop("", None)
    return keys


def _leading_navigation(texts: Sequence[str]) -> int:
    """How many of the first lines are a menu or breadcrumb trail (0: none, see NAV_RUN)."""
    run = 0
    for text in texts:
        if (
            len(text.split()) > NAV_MAX_WORDS
            or len(text) > NAV_MAX_CHARS
            or _SENTENCE_END.search(text)
        ):
            break
        run += 1
    return run if run >= NAV_RUN else 0


def _edge_rule(text: str) -> str | None:
    words = len(text.split())
    for reason, pattern, max_words in _EDGE_COMPILED:
        if words <= max_words and pattern.fullmatch(text):
            return reason
    return None


class _Kept:
    """The paragraphs kept so far, indexed by their rarer words, so repeats anywhere are found
    without comparing every pair (a 3,000-line live blog would otherwise take seconds)."""

    def __init__(self) -> None:
        self.texts: list[str | None] = []  # None: removed later
        self.keys: list[str] = []
        self.words: list[frozenset[str]] = []
        self.exact: dict[str, int] = {}
        self.postings: dict[str, list[int]] = {}
        self.alive = 0

    def add(self, text: str, key: str, words: frozenset[str]) -> None:
        index = len(self.texts)
        self.texts.append(text)
        self.keys.append(key)
        self.words.append(words)
        self.exact.setdefault(key, index)
        for word in words:
            self.postings.setdefault(word, []).append(index)
        self.alive += 1

    def remove(self, index: int) -> str:
        text = self.texts[index]
        assert text is not None
        self.texts[index] = None
        if self.exact.get(self.keys[index]) == index:
            del self.exact[self.keys[index]]
        self.alive -= 1
        return text

    def similar(self, words: frozenset[str]) -> list[int]:
        """Kept paragraphs sharing a good part of these words' rarer ones, oldest first."""
        counts: dict[int, int] = {}
        for word in words:
            posting = self.postings.get(word)
            if posting and len(posting) <= MAX_WORD_POSTINGS:
                for index in posting:
                    counts[index] = counts.get(index, 0) + 1
        return sorted(
            index
            for index, shared in counts.items()
            if self.texts[index] is not None
            and shared >= CANDIDATE_SHARE * min(len(words), len(self.words[index]))
        )


def _near_duplicate(words: frozenset[str], other: frozenset[str]) -> bool:
    if min(len(words), len(other)) < MIN_NEAR_DUPLICATE_WORDS:
        return False
    return len(words & other) >= NEAR_DUPLICATE_OVERLAP * max(len(words), len(other))


#: (reason, pattern over one class or id token) for boxes inside the article container
BOX_RULES: tuple[tuple[str, str], ...] = (
    (
        "advertisement",
        r"ads?|advert\w*|adsbygoogle|ad[-_](?:slot|unit|container|wrapper|box|label|inarticle|block)"
        r"|(?:dfp|gpt|google)[-_]?ads?\w*|div-gpt-ad\S*|dfp\S*|reklam\w*",
    ),
    ("sponsor", r"sponsor\w*|promo|promoted|partner[-_]content|native[-_]ad\w*"),
    ("share_bar", r"share|shares|sharing|share[-_]\w+|\w+[-_]share|social[-_]\w+|paylas\w*"),
    ("newsletter", r"newsletter\w*|newsletter[-_]\w+|\w+[-_]newsletter|signup|sign-up|bulten\w*"),
    (
        "related",
        r"related|related[-_]\w+|\w+[-_]related|read[-_]?(?:more|also)|more[-_]stories"
        r"|recommended\w*|ilgili\w*",
    ),
    ("cookie_notice", r"cookie\w*|cookie[-_]\w+|consent\w*|gdpr\w*|kvkk\w*"),
)
_BOX_COMPILED = tuple((reason, re.compile(pattern, re.IGNORECASE)) for reason, pattern in BOX_RULES)
#: the article container, most specific first
ARTICLE_CONTAINERS = (
    "//*[@itemprop='articleBody']",
    "//article",
    "//*[contains(@class, 'article-body') or contains(@class, 'story-body')"
    " or contains(@class, 'entry-content') or contains(@class, 'post-content')]",
)
#: a "box" holding more than this share of the container's text is the article, not a box
MAX_BOX_SHARE = 0.3


def _box_reason(element: HtmlElement) -> str | None:
    tokens = [*(element.get("class") or "").split(), *(element.get("id") or "").split()]
    for reason, pattern in _BOX_COMPILED:
        if any(pattern.fullmatch(token) for token in tokens):
            return reason
    return None


def strip_article_boxes(tree: HtmlElement) -> list[RemovedSpan]:
    """Remove boilerplate boxes inside the article container, in place; return what was cut.

    Boxes without text (an empty ad slot) are removed without a record. No container found:
    nothing is done (the extractor's own pruning applies).
    """
    container = next(
        (found[0] for xpath in ARTICLE_CONTAINERS if (found := tree.xpath(xpath))), None
    )
    if not isinstance(container, HtmlElement):
        return []
    total = len(" ".join(container.text_content().split())) or 1
    removed: list[RemovedSpan] = []
    for element in list(container.iterdescendants()):  # document order, for the audit trail
        if not isinstance(element, HtmlElement) or not _attached(element, container):
            continue  # comments; or inside a box already removed
        reason = _box_reason(element)
        if reason is None:
            continue
        # text nodes joined with spaces: "<li>Share</li><li>Tweet</li>" is "Share Tweet"
        text = " ".join(" ".join(element.itertext()).split())
        if len(text) > MAX_BOX_SHARE * total:
            continue  # e.g. a "promo" class on the story wrapper itself
        if text:
            removed.append(RemovedSpan(text=text, reason=reason))
        element.drop_tree()  # keeps the tail text, which belongs to the parent
    return removed


def _attached(element: HtmlElement, container: HtmlElement) -> bool:
    parent = element.getparent()
    while parent is not None and parent is not container:
        parent = parent.getparent()
    return parent is container


#: a headline broken by <br> or block spans comes out of the extractor as this many lines
MAX_TITLE_LINES = 3


def _title_lines(texts: Sequence[str], position: int, title_keys: set[str]) -> int:
    """How many lines from ``position`` on spell a title (0: none); the longest wins, so the
    <h1>'s second line goes with its first even when the first alone is the <title>."""
    joined = ""
    found = 0
    for count, text in enumerate(texts[position : position + MAX_TITLE_LINES], start=1):
        joined = f"{joined} {normalise_key(text)}".strip()
        if joined in title_keys:
            found = count
        if not any(key.startswith(joined) for key in title_keys):
            break
    return found


def _agency_sign_off(text: str) -> bool:
    """A line of nothing but news agency names: the wire credit closing a text."""
    parts = [normalise_key(part) for part in re.split(r"[/,&|]|\band\b|\bve\b", text)]
    return bool(parts) and all(part in NEWS_AGENCIES for part in parts)


def clean_paragraphs(
    paragraphs: Sequence[str],
    *,
    titles: Sequence[str | None] = (),
    captions: Sequence[Caption] = (),
) -> Cleaned:
    """Cut boilerplate, captions and repeats from ``paragraphs``; record every cut.

    ``titles`` (headline, h1) are cut when they open the text. ``captions`` are the page's own
    caption elements: a body paragraph equal to one of them
    (or to its credit, or to the caption without its credit) is moved to ``Cleaned.captions``.
    """
    out = Cleaned(paragraphs=[], captions=[c.text for c in captions if c.shown])
    title_keys = {normalise_key(t) for t in titles if t} - {""}
    caption_keys = _caption_keys(captions)
    kept = _Kept()
    in_related = False

    def cut(text: str, reason: str) -> None:
        out.removed.append(RemovedSpan(text=text, reason=reason))

    def to_captions(text: str) -> None:
        if text not in out.captions:
            out.captions.append(text)

    def repeats(key: str, similar: list[int]) -> bool:
        """An exact copy, a part of a kept paragraph, or nearly the same words."""
        if key in kept.exact:
            return True
        return any(
            (len(key) >= MIN_CONTAINED_CHARS and key in kept.keys[index])
            or _near_duplicate(words, kept.words[index])
            for index in similar
        )

    texts = [normalise_paragraph(raw) for raw in paragraphs]
    navigation = _leading_navigation([t for t in texts if t])
    title_end = 0  # lines before this index belong to a headline already cut
    for position, text in enumerate(texts):
        if not text:
            continue
        if navigation:
            navigation -= 1
            # a byline or dateline inside the run keeps its own reason (authors come from it)
            cut(text, _match_rule(text, position=position) or "navigation")
            continue
        key = normalise_key(text)
        if not key:
            cut(text, "punctuation")
            continue
        if position < title_end:
            continue  # a further line of a headline already cut
        if not kept.alive and title_keys:
            # a headline with a <br> (or spans on two lines) comes out as 2-3 lines
            lines = _title_lines(texts, position, title_keys)
            if lines:
                cut(" ".join(t for t in texts[position : position + lines] if t), "title")
                title_end = position + lines
                continue
        if key in caption_keys:
            cut(text, "caption")
            to_captions(caption_keys[key])
            continue
        words = frozenset(key.split())
        similar = kept.similar(words) if len(key) >= MIN_DUPLICATE_CHARS else []
        if len(key) >= MIN_DUPLICATE_CHARS and repeats(key, similar):
            cut(text, "duplicate_paragraph")
            continue
        if in_related and (
            _LIST_MARKER.match(text)
            or (len(text.split()) <= MAX_RELATED_ITEM_WORDS and not _SENTENCE_END.search(text))
        ):
            cut(text, "related")
            continue
        in_related = False
        reason = _match_rule(text, position=position)
        if reason is None and not kept.alive:
            reason = _edge_rule(text)
        if reason is not None:
            cut(text, reason)
            if reason in ("credit", "caption"):
                to_captions(text)
            out.paywall_prompt = out.paywall_prompt or reason == "paywall_prompt"
            in_related = reason == "related"
            continue
        # a standfirst followed (anywhere) by the full paragraph that contains it
        for index in similar:
            shorter = kept.keys[index]
            if len(shorter) >= MIN_CONTAINED_CHARS and shorter in key:
                cut(kept.remove(index), "duplicate_paragraph")
        kept.add(text, key, words)
    out.paragraphs = [text for text in kept.texts if text is not None]
    # promotional furniture closing the text ("Northgate Advertisment", "Sponsored")
    while out.paragraphs and (reason := _edge_rule(out.paragraphs[-1])) is not None:
        cut(out.paragraphs.pop(), reason)
    # the reporter's name signing off the text ("Lê Phương"), or the agency's ("AFP", "(AA)",
    # "— Reuters", "AFP/DHA")
    if len(out.paragraphs) > 1 and (
        _SIGN_OFF.fullmatch(out.paragraphs[-1]) or _agency_sign_off(out.paragraphs[-1])
    ):
        cut(out.paragraphs.pop(), "byline")
    return out


def record_extractor_duplicates(tree: HtmlElement, cleaned: Cleaned) -> None:
    """Record repeated paragraphs the extractor dropped on its own.

    trafilatura silently keeps only one copy of a paragraph the page repeats (the classic
    duplicated lead), so :func:`clean_paragraphs` never sees the second copy. The audit trail
    must still show the cut: every extra copy on the page of a kept paragraph is recorded.
    """
    counts: dict[str, int] = {}
    texts: dict[str, str] = {}
    for element in tree.iter("p"):
        text = normalise_paragraph(element.text_content())
        key = normalise_key(text)
        if len(key) >= MIN_DUPLICATE_CHARS:
            counts[key] = counts.get(key, 0) + 1
            texts.setdefault(key, text)
    recorded = {
        normalise_key(span.text) for span in cleaned.removed if span.reason == "duplicate_paragraph"
    }
    kept = {normalise_key(p) for p in cleaned.paragraphs}
    for key, count in counts.items():
        if count > 1 and key in kept and key not in recorded:
            cleaned.removed.extend(
                RemovedSpan(text=texts[key], reason="duplicate_paragraph") for _ in range(count - 1)
            )
