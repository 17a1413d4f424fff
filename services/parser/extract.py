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
#: a <p> shorter than this does not count towards paragraph density (bylines, labels)
MIN_DENSITY_PARAGRAPH_CHARS = 40

#: class/id fragments of caption and credit elements
#: caption elements: <figcaption>, or an element with a caption class (see _is_caption_class)
CAPTION_SELECTOR = "//figcaption | //*[contains(@class, 'caption')]"
CAPTION_CLASS_SUFFIXES = ("-caption", "_caption", "-caption-text", "caption-text")
CREDIT_SELECTOR = ".//*[contains(@class, 'credit') or contains(@class, 'copyright') or contains(@class, 'source')]"
#: elements removed before extraction (see prune_tree)
PRUNED_TAGS = ("script", "style", "noscript", "template", "svg", "iframe", "form", "nav", "footer")
#: a <form> with more text than this is a page wrapper, not a sign-up box
MAX_FORM_TEXT_CHARS = 1000
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Caption:
    text: str
    credit: str | None


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


def find_captions(tree: HtmlElement) -> list[Caption]:
    """Photo captions and their credits as the page marks them up, in page order, unique."""
    seen: set[str] = set()
    found: list[Caption] = []
    for element in tree.xpath(CAPTION_SELECTOR):
        if not isinstance(element, HtmlElement):
            continue
        if element.tag != "figcaption" and not _is_caption_class(element.get("class", "")):
            continue
        text = _squash(element.text_content())
        if not text or text in seen:
            continue
        seen.add(text)
        credits = [_squash(c.text_content()) for c in element.xpath(CREDIT_SELECTOR)]
        credit = next((c for c in credits if c), None)
        found.append(Caption(text=text, credit=credit))
    return found


def _words(paragraphs: list[str]) -> int:
    return sum(len(p.split()) for p in paragraphs)


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
