"""Watch queries: Lucene syntax (parsed by luqum) -> a small immutable tree the matcher runs.

Syntax (what ``newsflow watch add --query`` accepts)::

    strike Sinjar                      both words, in the title or the body (implicit AND)
    "air strike" OR drone              phrases in quotes; AND / OR / NOT, + and -, ( )
    title:ceasefire  body:"Duhok"      only the title / only the body
    entity:PKK                         a canonical entity: its key (ORG:kurdistan workers party)
                                       or any alias; aliases are resolved when the watch is saved
    kind:PERSON  lang:tr  source:example.org  feed:12  author:"Jane Doe"
    published:[2026-11-01 TO *]        dates (ISO 8601, UTC), [ ] inclusive, { } exclusive

Words and phrases are folded like entity names (case, diacritics, Turkish dotted/dotless i),
so ``Şırnak`` matches ``Sirnak``. A word with a hyphen (``al-Sudani``) is a phrase of its
parts. Fuzzy (``~``), proximity, boosts, regular expressions and wildcards are refused with an
error rather than silently ignored.

Errors are :class:`QueryError` with the 0-based character position of the offending part.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from luqum import tree
from luqum.exceptions import IllegalCharacterError, ParseError
from luqum.thread import parse as luqum_parse

from services.alerter.text import tokens
from shared.entity_keys import KINDS, make_key

# --- the tree --------------------------------------------------------------------------------

TextField = Literal["text", "title", "body", "author"]
ValueField = Literal["entity", "kind", "lang", "source", "feed"]

#: field name -> what it holds; rules as data, read by the parser and the error messages.
FIELDS: dict[str, str] = {
    "title": "text",
    "body": "text",
    "author": "text",
    "entity": "value",
    "kind": "value",
    "lang": "value",
    "source": "value",
    "feed": "value",
    "published": "date",
}
#: Aliases users type out of habit.
FIELD_SYNONYMS: dict[str, str] = {"language": "lang", "host": "source", "text": "text"}
#: Lucene operators are upper case; typed in lower case they are words (``pkk or baghdad``
#: would need the word "or"), which is almost never what the analyst meant: refused.
OPERATOR_WORDS = frozenset({"and", "or", "not"})
MAX_QUERY_CHARS = 4000
MAX_NODES = 200
#: Nesting (parentheses, NOT) deeper than this is refused: parsing, matching and rendering
#: recurse, and '((((...x...))))' within MAX_QUERY_CHARS used to end in a RecursionError.
MAX_DEPTH = 40


@dataclass(frozen=True, slots=True)
class Term:
    """Words in a text field; several words must appear consecutively (a phrase)."""

    field: TextField
    words: tuple[str, ...]
    raw: str
    pos: int


@dataclass(frozen=True, slots=True)
class Value:
    """An exact value of a metadata field (entity key, kind, language, source host, feed)."""

    field: ValueField
    value: str
    raw: str
    pos: int


@dataclass(frozen=True, slots=True)
class DateRange:
    """``published`` in [low, high) (None: unbounded); bounds are UTC."""

    low: datetime | None
    high: datetime | None
    raw: str
    pos: int


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Term | Value | DateRange | And | Or | Not


class QueryError(ValueError):
    """A query that cannot be parsed or saved. ``position`` is 0-based (None: the end)."""

    def __init__(self, message: str, *, query: str, position: int | None) -> None:
        self.message = message
        self.query = query
        self.position = position
        where = "at the end" if position is None else f"at position {position}"
        super().__init__(f"{message} ({where})")

    def pointer(self) -> str:
        """The query with a caret under the offending character, for terminals."""
        pos = len(self.query) if self.position is None else self.position
        return f"{self.query}\n{' ' * pos}^"


# --- parsing ---------------------------------------------------------------------------------

_POSITION = re.compile(r"at position (\d+)")


def parse(query: str) -> Node:
    """Parse *query* into a tree; raises :class:`QueryError` pointing at the bad part.

    Entity values are kept as typed (``entity:PKK``); :func:`resolve_entities` turns them
    into keys before a watch is saved, and :func:`render` prints the saved form.
    """
    if not query.strip():
        raise QueryError("empty query", query=query, position=0)
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(
            f"query longer than {MAX_QUERY_CHARS} characters", query=query, position=MAX_QUERY_CHARS
        )
    try:
        parsed = luqum_parse(query)
    except RecursionError as exc:
        raise _too_deep(query) from exc
    except IllegalCharacterError as exc:
        found = _POSITION.search(str(exc))
        pos = int(found.group(1)) if found else None
        hint = "unclosed quote?" if pos is not None and query[pos] == '"' else "illegal character"
        raise QueryError(f"syntax error: {hint}", query=query, position=pos) from exc
    except ParseError as exc:
        found = _POSITION.search(str(exc))
        if found:
            pos = int(found.group(1))
            token = query[pos:].split(maxsplit=1)[0] if query[pos:].strip() else ""
            message = f"syntax error: unexpected {token!r}"
        elif query.rstrip().endswith(":"):
            field = query.rstrip().rsplit(None, 1)[-1].lstrip("(+-")
            pos, message = None, f"syntax error: field {field!r} has no value"
        else:
            pos, message = None, "syntax error: unexpected end of query (unclosed parenthesis?)"
        raise QueryError(message, query=query, position=pos) from exc
    try:
        node = _Builder(query).build(parsed, None)
    except RecursionError as exc:
        raise _too_deep(query) from exc
    if _depth(node) > MAX_DEPTH:
        raise _too_deep(query)
    if _count(node) > MAX_NODES:
        raise QueryError(f"query has more than {MAX_NODES} parts", query=query, position=0)
    return node


def _too_deep(query: str) -> QueryError:
    return QueryError(
        f"query nested more than {MAX_DEPTH} levels deep (parentheses or NOT)",
        query=query,
        position=0,
    )


def _depth(node: Node) -> int:
    """Nesting depth of the tree, without recursion (the tree may be deep)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, And | Or):
            stack.extend((child, level + 1) for child in item.children)
        elif isinstance(item, Not):
            stack.append((item.child, level + 1))
    return deepest


def _count(node: Node) -> int:
    return sum(1 for _ in walk(node))


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents first."""
    yield node
    if isinstance(node, And | Or):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, Not):
        yield from walk(node.child)


class _Builder:
    def __init__(self, query: str) -> None:
        self.query = query

    def error(self, message: str, item: Any) -> QueryError:
        return QueryError(message, query=self.query, position=getattr(item, "pos", None))

    def build(self, item: Any, field: str | None) -> Node:
        if isinstance(item, tree.Group | tree.FieldGroup):
            return self.build(item.expr, field)
        if isinstance(item, tree.AndOperation | tree.UnknownOperation):
            # implicit operator: AND, what an analyst means by "PKK Duhok"
            return And(_flat(And, [self.build(child, field) for child in item.children]))
        if isinstance(item, tree.OrOperation):
            return Or(_flat(Or, [self.build(child, field) for child in item.children]))
        if isinstance(item, tree.Not | tree.Prohibit):
            return Not(self.build(item.a, field))
        if isinstance(item, tree.Plus):
            return self.build(item.a, field)
        if isinstance(item, tree.SearchField):
            return self.search_field(item, field)
        if isinstance(item, tree.Range):
            if field != "published":
                raise self.error("ranges are only supported on published:[FROM TO TO]", item)
            return self.date_range(item)
        if isinstance(item, tree.Fuzzy | tree.Proximity):
            raise self.error("fuzzy and proximity searches (~) are not supported", item)
        if isinstance(item, tree.Boost):
            raise self.error("boosts (^) are not supported: watches match or do not", item)
        if isinstance(item, tree.Regex):
            raise self.error("regular expressions are not supported", item)
        if isinstance(item, tree.Phrase | tree.Word):
            return self.leaf(item, field)
        raise self.error(f"unsupported query part {str(item).strip()!r}", item)

    def search_field(self, item: tree.SearchField, outer: str | None) -> Node:
        name = FIELD_SYNONYMS.get(item.name.lower(), item.name.lower())
        if outer == "entity" and item.name.upper() in _kinds():
            # entity:ORG:pkk parses as a nested field; it is a key written without quotes
            return self.leaf(item.expr, "entity", raw=f"{item.name}:{str(item.expr).strip()}")
        if outer is not None:
            raise self.error(f"field {item.name!r} inside field {outer!r}", item)
        if name != "text" and name not in FIELDS:
            known = ", ".join(sorted(FIELDS))
            raise self.error(f"unknown field {item.name!r}; fields are: {known}", item)
        return self.build(item.expr, None if name == "text" else name)

    def leaf(self, item: Any, field: str | None, *, raw: str | None = None) -> Node:
        text = raw if raw is not None else _unquote(item.value)
        if isinstance(item, tree.Word) and raw is None and ("*" in text or "?" in text):
            raise self.error(f"wildcards are not supported: {text!r}", item)
        kind = FIELDS.get(field or "", "text")
        if field == "published":
            return self.date_range(item)
        if kind == "value":
            return self.value(field or "", text, item)  # lang:or is Odia, not an operator
        if isinstance(item, tree.Word) and raw is None and text.lower() in OPERATOR_WORDS:
            raise self.error(
                f"{text!r} is read as a word: write the operator in capitals ({text.upper()}),"
                f' or quote it ("{text}") to match the word',
                item,
            )
        words = tuple(tokens(text))
        if not words:
            raise self.error(
                f"{text!r} has no letters or digits to match (operators are AND, OR, NOT)", item
            )
        text_field: TextField = field if field in ("title", "body", "author") else "text"  # type: ignore[assignment]
        return Term(text_field, words, text, item.pos)

    def value(self, field: str, text: str, item: Any) -> Value:
        value = text.strip()
        if not value:
            raise self.error(f"{field}: needs a value", item)
        if field == "kind":
            value = value.upper()
            if value not in _kinds():
                raise self.error(
                    f"unknown entity kind {text!r}; kinds are: {', '.join(sorted(_kinds()))}", item
                )
        elif field == "lang":
            value = value.lower()
            if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]+)?", value):
                raise self.error(
                    f"lang: expects an ISO 639 code like tr or ckb, not {text!r}", item
                )
        elif field == "source":
            value = value.lower().removeprefix("www.").rstrip(".")
            if "/" in value or " " in value:
                raise self.error(f"source: expects a host like example.org, not {text!r}", item)
        elif field == "entity":
            # a key written by hand is normalised here; other values are aliases, resolved
            # to keys through the database when the watch is saved (resolve.py)
            value = as_key(value) or value
        elif field == "feed":
            if not value.isdigit():
                raise self.error(f"feed: expects a feed id (a number), not {text!r}", item)
            value = str(int(value))
        return Value(field, value, text, item.pos)  # type: ignore[arg-type]

    def date_range(self, item: Any) -> DateRange:
        if isinstance(item, tree.Range):
            low = self.bound(item.low, upper=False, inclusive=item.include_low)
            high = self.bound(item.high, upper=True, inclusive=item.include_high)
        else:  # published:2026-11-01 is that whole day
            low = self.bound(item, upper=False, inclusive=True)
            high = self.bound(item, upper=True, inclusive=True)
        if low is not None and high is not None and low >= high:
            raise self.error("published: the range is empty (FROM is after TO)", item)
        return DateRange(low, high, str(item).strip(), item.pos)

    def bound(self, item: Any, *, upper: bool, inclusive: bool) -> datetime | None:
        text = _unquote(str(item.value)).strip()
        if text == "*":
            return None
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                day = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
                # a whole day: [d TO d] covers d; {d TO ...} starts after d
                return day + timedelta(days=1) if upper == inclusive else day
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise self.error(
                f"published: {text!r} is not a date (YYYY-MM-DD or ISO 8601) or *", item
            ) from exc
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        # [low is inclusive, high is exclusive); an inclusive upper instant adds 1 µs
        if upper and inclusive:
            return moment + timedelta(microseconds=1)
        if not upper and not inclusive:
            return moment + timedelta(microseconds=1)
        return moment


def _flat(kind: type[And] | type[Or], children: list[Node]) -> tuple[Node, ...]:
    """``(a AND b) AND c`` is ``a AND b AND c``: one level, so the saved form stays flat."""
    out: list[Node] = []
    for child in children:
        out.extend(child.children if isinstance(child, kind) else (child,))
    return tuple(out)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def _kinds() -> frozenset[str]:
    return KINDS


# --- entity resolution and the saved form ----------------------------------------------------

EntityResolver = Callable[[str], str]


def entity_values(node: Node) -> list[Value]:
    """Every ``entity:`` value in the tree, in query order."""
    return [n for n in walk(node) if isinstance(n, Value) and n.field == "entity"]


def map_entities(node: Node, fn: Callable[[Value], Value]) -> Node:
    """A copy of the tree with every entity value replaced by ``fn(value)``."""
    if isinstance(node, Value) and node.field == "entity":
        return fn(node)
    if isinstance(node, And):
        return And(tuple(map_entities(c, fn) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(map_entities(c, fn) for c in node.children))
    if isinstance(node, Not):
        return Not(map_entities(node.child, fn))
    return node


def with_keys(node: Node, keys: dict[str, str]) -> Node:
    """Replace each entity value by its resolved key (``keys``: raw value -> key)."""
    return map_entities(node, lambda v: replace(v, value=keys[v.raw], raw=keys[v.raw]))


def as_key(value: str) -> str | None:
    """``value`` as a canonical key (``org:Kurdistan Workers' Party`` -> ``ORG:kurdistan
    workers party``) when it is written as ``KIND:name``; None otherwise."""
    kind, sep, name = value.partition(":")
    if sep and kind.strip().upper() in _kinds() and name.strip():
        return make_key(kind.strip().upper(), name)
    return None


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def render(node: Node, *, top: bool = True) -> str:
    """The query text of a tree: what ``watch show`` displays and what is saved.

    Entity values are printed as given (keys once resolved), text as the user typed it.
    """
    if isinstance(node, Term):
        # an operator word ("AND", "or") is only a term when quoted
        bare = (
            len(node.words) == 1 and node.raw.isalnum() and node.raw.lower() not in OPERATOR_WORDS
        )
        text = node.raw if bare else _quote(node.raw)
        return text if node.field == "text" else f"{node.field}:{text}"
    if isinstance(node, Value):
        value = node.value
        plain = re.fullmatch(r"[\w.-]+", value) is not None and ":" not in value
        return f"{node.field}:{value if plain else _quote(value)}"
    if isinstance(node, DateRange):
        return f"published:{node.raw}"
    if isinstance(node, Not):
        return f"NOT {render(node.child, top=False)}"
    operator = " AND " if isinstance(node, And) else " OR "
    inner = operator.join(render(child, top=False) for child in node.children)
    return inner if top else f"({inner})"
