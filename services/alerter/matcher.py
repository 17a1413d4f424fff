"""The one matcher: compiled watches, indexed by entity key and word, run against articles.

The stream (the alerter stage) and ``newsflow watch test`` both call :meth:`Matcher.match` on
:class:`ArticleDoc` values built from the stored rows, so they cannot disagree.

Speed: watches are compiled once per change. Each watch gets an *anchor*: a set of index
keys (entity keys, words, kinds, languages, hosts, feeds) at least one of which an article must
have for the watch to possibly match (an AND needs any one child's anchor, an OR needs all of
its children's). Per article the matcher looks up the article's words and entities in the
index and evaluates only those watches, plus the few with no anchor (``NOT x`` alone, a bare
date range). ``python -m tests.bench.alerter_matcher`` measures it with 1,000 watches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.alerter.query import And, DateRange, Node, Not, Or, Term, Value, parse
from services.alerter.text import tokens

#: Anchor kinds, and how broad each is (an article has one language but ~500 words): when an
#: AND offers several anchors, the one with the lowest cost x size is used.
ANCHOR_COST = {"e": 1, "t": 1, "a": 1, "f": 4, "s": 4, "k": 20, "l": 20}

Anchor = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ArticleDoc:
    """What a watch can see of a stored article (built from the ``articles`` row and its
    entity links; ``entity_keys`` includes the keys the entities were merged into)."""

    article_id: int
    url: str
    title: str | None
    body: str
    language: str | None = None
    host: str | None = None
    feed_id: int | None = None
    authors: tuple[str, ...] = ()
    published_at: datetime | None = None
    entity_keys: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CompiledWatch:
    watch_id: int
    name: str
    query: str
    node: Node
    anchors: frozenset[Anchor] | None  # None: evaluated for every article


@dataclass(frozen=True, slots=True)
class Match:
    """A watch that matched an article, with the evidence: the words/phrases and entity keys
    that satisfied it (never those under a NOT) and a one-line reason."""

    watch_id: int
    watch_name: str
    article_id: int
    terms: tuple[str, ...]
    entity_keys: tuple[str, ...]
    reason: str


class _Prepared:
    """An article's folded text and metadata, computed once per article."""

    __slots__ = (
        "author_sets",
        "authors",
        "body",
        "body_set",
        "doc",
        "hosts",
        "kinds",
        "title",
        "title_set",
    )

    def __init__(self, doc: ArticleDoc) -> None:
        self.doc = doc
        self.title = tokens(doc.title)
        self.body = tokens(doc.body)
        self.title_set = frozenset(self.title)
        self.body_set = frozenset(self.body)
        self.authors = [tokens(a) for a in doc.authors]
        self.author_sets = [frozenset(a) for a in self.authors]
        self.kinds = frozenset(key.partition(":")[0] for key in doc.entity_keys)
        host = (doc.host or "").lower().rstrip(".")
        parts = host.split(".")
        # news.example.org matches source:news.example.org and source:example.org
        self.hosts = frozenset(".".join(parts[i:]) for i in range(len(parts) - 1)) | (
            {host} if host else set()
        )

    def words_in(self, term: Term) -> bool:
        if term.field == "title":
            return _contains(self.title, self.title_set, term.words)
        if term.field == "body":
            return _contains(self.body, self.body_set, term.words)
        if term.field == "author":
            return any(
                _contains(words, wset, term.words)
                for words, wset in zip(self.authors, self.author_sets, strict=True)
            )
        return _contains(self.title, self.title_set, term.words) or _contains(
            self.body, self.body_set, term.words
        )

    def value_in(self, value: Value) -> bool:
        doc = self.doc
        if value.field == "entity":
            return value.value in doc.entity_keys
        if value.field == "kind":
            return value.value in self.kinds
        if value.field == "lang":
            lang = (doc.language or "").lower()
            return lang == value.value or lang.partition("-")[0] == value.value
        if value.field == "source":
            return value.value in self.hosts
        if value.field == "feed":
            return doc.feed_id is not None and str(doc.feed_id) == value.value
        return False  # pragma: no cover - the parser admits no other field

    def anchors(self) -> Iterable[tuple[str, Iterable[str]]]:
        doc = self.doc
        yield "t", self.title_set | self.body_set
        yield "e", doc.entity_keys
        yield "k", self.kinds
        yield "a", {w for words in self.author_sets for w in words}
        yield "s", self.hosts
        if doc.language:
            lang = doc.language.lower()
            yield "l", {lang, lang.partition("-")[0]}
        if doc.feed_id is not None:
            yield "f", (str(doc.feed_id),)


def _contains(words: Sequence[str], word_set: frozenset[str], phrase: tuple[str, ...]) -> bool:
    if len(phrase) == 1:
        return phrase[0] in word_set
    if any(w not in word_set for w in phrase):
        return False
    first, n = phrase[0], len(phrase)
    start = 0
    try:
        while True:
            i = words.index(first, start)
            if tuple(words[i : i + n]) == phrase:
                return True
            start = i + 1
    except ValueError:
        return False


def _evaluate(node: Node, art: _Prepared, evidence: list[Term | Value]) -> bool:
    """True if *node* matches; appends the positive leaves that made it match."""
    if isinstance(node, Term):
        if art.words_in(node):
            evidence.append(node)
            return True
        return False
    if isinstance(node, Value):
        if art.value_in(node):
            evidence.append(node)
            return True
        return False
    if isinstance(node, DateRange):
        published = art.doc.published_at
        if published is None:
            return False
        return (node.low is None or published >= node.low) and (
            node.high is None or published < node.high
        )
    if isinstance(node, Not):
        return not _evaluate(node.child, art, [])
    if isinstance(node, And):
        mark = len(evidence)
        for child in node.children:
            if not _evaluate(child, art, evidence):
                del evidence[mark:]
                return False
        return True
    # Or: keep the evidence of every matching branch (all the reasons an analyst cares about)
    matched = False
    for child in node.children:
        matched = _evaluate(child, art, evidence) or matched
    return matched


def anchors_of(node: Node) -> frozenset[Anchor] | None:
    """Index keys one of which an article needs to match *node*; None if there are none."""
    if isinstance(node, Term):
        kind = "a" if node.field == "author" else "t"
        # the rarest word of a phrase would be better; the longest is a cheap stand-in
        return frozenset({(kind, max(node.words, key=len))})
    if isinstance(node, Value):
        code = {"entity": "e", "kind": "k", "lang": "l", "source": "s", "feed": "f"}[node.field]
        return frozenset({(code, node.value)})
    if isinstance(node, And):
        options = [a for a in (anchors_of(c) for c in node.children) if a is not None]
        if not options:
            return None
        return min(options, key=lambda s: sum(ANCHOR_COST[k] for k, _ in s))
    if isinstance(node, Or):
        union: set[Anchor] = set()
        for child in node.children:
            anchors = anchors_of(child)
            if anchors is None:
                return None
            union |= anchors
        return frozenset(union)
    return None  # NOT and date ranges match articles that share nothing with the query


def compile_watch(watch_id: int, name: str, query: str) -> CompiledWatch:
    """Parse a saved query (entity values already keys) into a :class:`CompiledWatch`.

    Raises :class:`~services.alerter.query.QueryError` for a query that no longer parses.
    """
    node = parse(query)
    return CompiledWatch(watch_id, name, query, node, anchors_of(node))


def _describe(leaf: Term | Value) -> str:
    if isinstance(leaf, Value):
        return f"{leaf.field}:{leaf.value}"
    phrase = " ".join(leaf.words)
    return f'"{phrase}"' if leaf.field == "text" else f'{leaf.field}:"{phrase}"'


@dataclass
class Matcher:
    """Active watches compiled and indexed. Build a new one when watches change (indexing is
    ~2 µs per watch; parsing a query ~0.2 ms, so unchanged watches are reused compiled); a
    Matcher is immutable in use, so a running stage swaps it atomically.
    """

    watches: Sequence[CompiledWatch]
    _index: dict[str, dict[str, list[int]]] = field(init=False, repr=False)
    _always: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {kind: {} for kind in ANCHOR_COST}
        self._always = []
        for position, watch in enumerate(self.watches):
            if watch.anchors is None:
                self._always.append(position)
                continue
            for kind, key in watch.anchors:
                self._index[kind].setdefault(key, []).append(position)

    def __len__(self) -> int:
        return len(self.watches)

    def candidates(self, art: _Prepared) -> list[int]:
        found: set[int] = set(self._always)
        for kind, keys in art.anchors():
            index = self._index[kind]
            if not index:
                continue
            for key in keys:
                hit = index.get(key)
                if hit is not None:
                    found.update(hit)
        return sorted(found)

    def match(self, doc: ArticleDoc) -> list[Match]:
        """Every watch *doc* matches, in watch order, with its evidence."""
        if not self.watches:
            return []
        art = _Prepared(doc)
        matches: list[Match] = []
        for position in self.candidates(art):
            watch = self.watches[position]
            evidence: list[Term | Value] = []
            if not _evaluate(watch.node, art, evidence):
                continue
            terms: dict[str, None] = {}
            entities: dict[str, None] = {}
            for leaf in evidence:
                if isinstance(leaf, Value) and leaf.field == "entity":
                    entities[leaf.value] = None
                elif isinstance(leaf, Term):
                    terms[" ".join(leaf.words)] = None
            described = "; ".join(dict.fromkeys(_describe(leaf) for leaf in evidence))
            reason = f"matched {described}" if described else f"matched {watch.query}"
            matches.append(
                Match(
                    watch_id=watch.watch_id,
                    watch_name=watch.name,
                    article_id=doc.article_id,
                    terms=tuple(terms),
                    entity_keys=tuple(entities),
                    reason=reason,
                )
            )
        return matches
