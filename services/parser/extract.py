"""HTML -> DOM -> raw body paragraphs (before cleaning), with fallbacks and a DOM-size limit.

The primary extractor is trafilatura in its fast mode (no readability/jusText fallbacks: they
double the cost and we have better evidence). When its result is empty or clearly truncated
the chain continues:

1. trafilatura ``fast=True``                                     -> ``extraction="trafilatura"``
2. JSON-LD ``articleBody`` when trafilatura has < 60 % of its words -> ``"jsonld"``
3. trafilatura with its own fallbacks, when the text is too short  -> ``"trafilatura_recall"``
4. paragraph density: the element whose direct ``<p>`` children hold the most text
   -> ``"density"``
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass

import lxml.html
import trafilatura
from lxml import etree
from lxml.html import HtmlElement

from shared.errors import PermanentError

logger = logging.getLogger(__name__)

#: primary text with fewer words than this triggers the fallbacks
MIN_BODY_WORDS = 40
#: the primary extraction counts as truncated below this share of JSON-LD articleBody words
TRUNCATED_RATIO = 0.6
#: a primary text shorter than this, or with less than PROSE_SHARE of its words in prose
#: paragraphs (a menu, a teaser list), is checked against trafilatura's full mode, which wins
#: when it has RECHECK_GAIN times the prose words: fast mode sometimes stops after the first
#: block of a long article, or takes the navigation for it
RECHECK_WORDS = 250
PROSE_SHARE = 0.5
RECHECK_GAIN = 1.5
#: paragraphs of at least this many words are prose (not a menu item, label or headline)
MIN_PROSE_WORDS = 10
#: a <p> shorter than this does not count towards paragraph density (bylines, labels)
MIN_DENSITY_PARAGRAPH_CHARS = 40

#: class/id fragments of caption and credit elements
#: caption elements: <figcaption>, or an element with a caption class (see _is_caption_class)
CAPTION_SELECTOR = "//figcaption | //*[contains(@class, 'caption')]"
CAPTION_CLASS_SUFFIXES = ("-caption", "_caption", "-caption-text", "caption-text")
CREDIT_SELECTOR = ".//*[contains(@class, 'credit') or contains(@class, 'copyright') or contains(@class, 'source')]"
#: "photo" in the other languages we read, as credit lines write it: Turkish "Fotoğraf: AA",
#: Arabic "الصورة: رويترز" / "تصوير: ...", Persian "عکس: ...",
#: Sorani "وێنە: ...", Kurmanji "Wêne: ..."
PHOTO_WORDS = r"foto(?:ğraf(?:lar)?)?|görsel|(?:ال)?صور[ةه]?|تصوير|عکس|وێنە|wêne"
#: a photo credit at the end of a caption: "(Photo: X)", "Photo: X / AFP", "Credit: X", "© X"
PHOTO_CREDIT = re.compile(
    r"\s*[(\[]?\s*(?:(?:photos?|photograph|image|picture|pic|video|graphic|illustration|file photo"
    rf"|{PHOTO_WORDS})(?:\s+credit)?|credit|photo credit|image credit)\s*[:/|]\s*"
    r"[^()\[\]]{1,80}[)\]]?\s*$|\s*[(\[]?©\s*[^()\[\]]{1,60}[)\]]?\s*$",
    re.IGNORECASE,
)
#: <img alt>/<img title> texts with fewer words are labels ("logo", "photo"), not captions
MIN_DESCRIPTION_WORDS = 4
#: a block next to an image with more words than this is body text, not its caption
MAX_CAPTION_WORDS = 60
#: class/id tokens of caption blocks next to an image (besides "caption"): "img-text",
#: "photo-desc", "image__legend", "credit"
NEIGHBOUR_CAPTION_TOKEN = re.compile(
    r"(?:.*[-_])?(?:caption\w*|legend|credits?|(?:img|image|photo|picture|media)[-_]{0,2}"
    r"(?:text|desc\w*|info|legend|title))",
    re.IGNORECASE,
)
_NEIGHBOUR_TAGS = frozenset({"p", "div", "span", "small", "em", "figcaption"})
#: elements removed before extraction (see prune_tree)
PRUNED_TAGS = ("script", "style", "noscript", "template", "svg", "iframe", "form", "nav", "footer")
#: a <form> with more text than this is a page wrapper, not a sign-up box
MAX_FORM_TEXT_CHARS = 1000
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Caption:
    """A photo caption. ``shown``: the page displays it (figcaption, a caption block); an
    <img alt>/title description is not shown, and only becomes a caption when the body
    repeats it."""

    text: str
    credit: str | None
    shown: bool = True

    @property
    def bare(self) -> str:
        """The caption without its credit."""
        if self.credit and self.credit in self.text:
            return _squash(self.text.replace(self.credit, " "))
        return self.text


@dataclass(frozen=True, slots=True)
class Extraction:
    paragraphs: list[str]
    method: str


def _squash(text: str) -> str:
    return " ".join(text.split())


def load_tree(html: str, *, max_nodes: int) -> HtmlElement:
    """Parse ``html``; ``PermanentError`` kind ``empty`` or ``dom_too_large``."""
    # lxml refuses str input that still carries an encoding declaration
    html = _XML_DECLARATION.sub("", html, count=1)
    # libxml2 reads a NUL as the end of the document: everything after it would be lost
    html = html.replace("\x00", "")
    if not html.strip():
        raise PermanentError("page has no content", kind="empty")
    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError) as exc:
        raise PermanentError(f"unparseable HTML: {exc}", kind="empty") from exc
    # counted by libxml2's XPath engine: ~20x faster than iterating in Python
    nodes = int(tree.xpath("count(//*)"))
    if nodes > max_nodes:
        raise PermanentError(f"DOM has more than {max_nodes} nodes", kind="dom_too_large")
    return tree


def _is_caption_class(classes: str) -> bool:
    # whole class tokens only: "caption", "wp-caption-text", "article__caption"; not
    # "captionless" or "caption-wrapper" (a container that also holds the image and links)
    return any(
        token == "caption" or token.endswith(CAPTION_CLASS_SUFFIXES) for token in classes.split()
    )


def prune_tree(tree: HtmlElement) -> None:
    """Drop what no extractor keeps (scripts, styles, forms, navigation, footers), in place.

    trafilatura removes these too, but on a copy of the tree for every pass; doing it once
    up front roughly halves its time on a 100 KB page. Call after structured data (JSON-LD
    lives in <script>) and captions have been read.
    """
    # ASP.NET pages wrap the whole body in one <form>: unwrap such forms instead (trafilatura
    # would drop the form and the article with it)
    for form in list(tree.iter("form")):
        if len(form.text_content()) >= MAX_FORM_TEXT_CHARS:
            form.drop_tag()
    etree.strip_elements(tree, *PRUNED_TAGS, etree.Comment, with_tail=False)


def _block_text(element: HtmlElement) -> str:
    # text nodes joined with spaces: "caption<br>(Photo: X)" is "caption (Photo: X)"
    return _squash(" ".join(element.itertext()))


def _caption(text: str, credit: str | None = None, *, shown: bool = True) -> Caption:
    if credit is None:
        match = PHOTO_CREDIT.search(text)
        # a credit alone ("Photo: AFP") is its own caption, not a caption without text
        if match and match.start() > 0:
            credit = _squash(match.group())
    return Caption(text=text, credit=credit, shown=shown)


def _image_descriptions(image: HtmlElement) -> list[str]:
    texts = (_squash(image.get(name, "")) for name in ("alt", "title"))
    return [t for t in texts if len(t.split()) >= MIN_DESCRIPTION_WORDS]


def _neighbour(image: HtmlElement) -> HtmlElement | None:
    """The block right after an image, or after the wrapper holding only the image."""
    element: HtmlElement | None = image
    while element is not None:
        following = element.getnext()
        if following is not None:
            return following if isinstance(following, HtmlElement) else None
        parent = element.getparent()
        # any() stops at the first text: a big container is not read whole for every image
        has_text = any(text.strip() for text in parent.itertext()) if parent is not None else True
        if parent is None or has_text or parent.tag in ("body", "article"):
            return None
        element = parent
    return None


def _is_neighbour_caption(block: HtmlElement, descriptions: list[str]) -> bool:
    if block.tag not in _NEIGHBOUR_TAGS:
        return False
    text = _block_text(block)
    if not text or len(text.split()) > MAX_CAPTION_WORDS:
        return False
    tokens = [*(block.get("class") or "").split(), *(block.get("id") or "").split()]
    if any(NEIGHBOUR_CAPTION_TOKEN.fullmatch(token) for token in tokens):
        return True
    if PHOTO_CREDIT.search(text):
        return True
    folded = text.casefold()
    return any(folded.startswith(d.casefold()) for d in descriptions)


def find_captions(tree: HtmlElement) -> list[Caption]:
    """Photo captions and their credits, unique, however they are marked up: caption elements
    in page order, then what images show or describe.

    Shown captions: <figcaption>, elements with a caption class (see _is_caption_class), and
    the block next to an image when its class names a caption, it carries a photo credit or it
    repeats the image's description. Not shown: <img alt>/title descriptions (see Caption).
    """
    found: list[Caption] = []
    for element in tree.xpath(CAPTION_SELECTOR):
        if not isinstance(element, HtmlElement):
            continue
        if element.tag != "figcaption" and not _is_caption_class(element.get("class", "")):
            continue
        text = _block_text(element)
        if text:
            credits = [_block_text(c) for c in element.xpath(CREDIT_SELECTOR)]
            found.append(_caption(text, next((c for c in credits if c), None)))
    for image in tree.iter("img"):
        descriptions = _image_descriptions(image)
        block = _neighbour(image)
        if block is not None and _is_neighbour_caption(block, descriptions):
            found.append(_caption(_block_text(block)))
        found.extend(_caption(d, shown=False) for d in descriptions)
    return _unique_captions(found)


def _unique_captions(captions: list[Caption]) -> list[Caption]:
    """Drop repeats: the same text, or a description repeating a shown caption."""
    kept: list[Caption] = []
    keys: list[str] = []
    for caption in captions:
        key = _squash(caption.bare).casefold()
        if any(key == k or (not caption.shown and k.startswith(key)) for k in keys):
            continue
        kept.append(caption)
        keys.append(key)
    return kept


def _words(paragraphs: list[str]) -> int:
    return sum(len(p.split()) for p in paragraphs)


def _prose_words(paragraphs: list[str]) -> int:
    counts = (len(p.split()) for p in paragraphs)
    return sum(n for n in counts if n >= MIN_PROSE_WORDS)


def _trafilatura(tree: HtmlElement, *, url: str, fast: bool) -> list[str]:
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        fast=fast,
        include_comments=False,
        include_tables=True,
        include_images=False,
        with_metadata=False,
        deduplicate=False,  # its LRU cache is process-global state; we dedupe ourselves
    )
    text = getattr(document, "text", None) or ""
    return [line for line in (_squash(line) for line in text.split("\n")) if line]


def _jsonld_paragraphs(article_body: str) -> list[str]:
    if "&" in article_body and not ("<" in article_body and ">" in article_body):
        article_body = html.unescape(article_body)  # "&nbsp;" in a plain-text articleBody
    if "<" in article_body and ">" in article_body:
        try:
            fragment = lxml.html.fragment_fromstring(article_body, create_parent="div")
        except (etree.ParserError, ValueError):
            pass
        else:
            blocks = [_squash(p.text_content()) for p in fragment.iter("p")]
            if any(blocks):
                return [b for b in blocks if b]
            article_body = fragment.text_content()
    return [line for line in (_squash(line) for line in article_body.splitlines()) if line]


def _density(tree: HtmlElement) -> list[str]:
    best: list[str] = []
    best_chars = 0
    for parent in tree.iter():
        if not isinstance(parent, HtmlElement):
            continue
        paragraphs = [
            text
            for child in parent
            if isinstance(child, HtmlElement) and child.tag == "p"
            for text in (_squash(child.text_content()),)
            if len(text) >= MIN_DENSITY_PARAGRAPH_CHARS
        ]
        chars = sum(len(p) for p in paragraphs)
        if chars > best_chars:
            best, best_chars = paragraphs, chars
    return best


def extract_body(tree: HtmlElement, *, url: str, article_body: str | None) -> Extraction:
    """Raw paragraphs of the main text, and which strategy produced them (never raises)."""
    primary = _trafilatura(tree, url=url, fast=True)
    words = _words(primary)
    if article_body:
        from_jsonld = _jsonld_paragraphs(article_body)
        if words < TRUNCATED_RATIO * _words(from_jsonld):
            logger.debug("trafilatura text truncated (%s words), using JSON-LD articleBody", words)
            return Extraction(from_jsonld, "jsonld")
    if words >= MIN_BODY_WORDS:
        if words < RECHECK_WORDS or _prose_words(primary) < PROSE_SHARE * words:
            full = _trafilatura(tree, url=url, fast=False)
            if _prose_words(full) >= RECHECK_GAIN * max(_prose_words(primary), 1):
                return Extraction(full, "trafilatura_recall")
        return Extraction(primary, "trafilatura")
    best = Extraction(primary, "trafilatura")
    for method in ("trafilatura_recall", "density"):
        if method == "density":
            paragraphs = _density(tree)
        else:
            paragraphs = _trafilatura(tree, url=url, fast=False)
        if _words(paragraphs) >= MIN_BODY_WORDS:
            return Extraction(paragraphs, method)
        if _words(paragraphs) > _words(best.paragraphs):
            best = Extraction(paragraphs, method)
    return best
