"""Watch query parsing: every operator and field, the saved form, errors with positions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.alerter.query import (
    And,
    DateRange,
    Not,
    Or,
    QueryError,
    Term,
    Value,
    as_key,
    entity_values,
    parse,
    render,
    walk,
    with_keys,
)


def test_words_are_folded_and_implicit_operator_is_and() -> None:
    node = parse("PKK Duhok")
    assert isinstance(node, And)
    assert [c.words for c in node.children if isinstance(c, Term)] == [("pkk",), ("duhok",)]


def test_turkish_letters_fold_like_the_enricher() -> None:
    node = parse("Şırnak")
    assert isinstance(node, Term) and node.words == ("sirnak",)
    assert parse("İDLİB") == Term("text", ("idlib",), "İDLİB", 0)


def test_phrases_and_hyphenated_words_are_sequences() -> None:
    phrase = parse('"air strike"')
    assert isinstance(phrase, Term) and phrase.words == ("air", "strike")
    hyphen = parse("al-Sudani")
    assert isinstance(hyphen, Term) and hyphen.words == ("al", "sudani")


@pytest.mark.parametrize(
    ("query", "shape"),
    [("a AND b", And), ("a OR b", Or), ("NOT a", Not), ("-a", Not), ("a b", And)],
)
def test_boolean_operators(query: str, shape: type) -> None:
    assert isinstance(parse(query), shape)


def test_precedence_and_parentheses() -> None:
    node = parse("a OR b AND c")
    assert isinstance(node, Or) and isinstance(node.children[1], And)
    grouped = parse("(a OR b) AND c")
    assert isinstance(grouped, And) and isinstance(grouped.children[0], Or)
    plus_minus = parse("+a -b c")
    assert isinstance(plus_minus, And)
    assert isinstance(plus_minus.children[1], Not)


def test_text_fields() -> None:
    assert parse("title:ceasefire") == Term("title", ("ceasefire",), "ceasefire", 6)
    body = parse('body:"border crossing"')
    assert isinstance(body, Term) and body.field == "body" and body.words == ("border", "crossing")
    author = parse('author:"Jane Doe"')
    assert isinstance(author, Term) and author.field == "author"
    grouped = parse("title:(truce OR ceasefire)")
    assert isinstance(grouped, Or) and all(
        isinstance(c, Term) and c.field == "title" for c in grouped.children
    )


def test_value_fields_are_normalised() -> None:
    assert parse("kind:person") == Value("kind", "PERSON", "person", 5)
    assert parse("lang:TR") == Value("lang", "tr", "TR", 5)
    assert parse("source:www.Example.org") == Value("source", "example.org", "www.Example.org", 7)
    assert parse("feed:012") == Value("feed", "12", "012", 5)


def test_entity_values_keep_aliases_and_normalise_keys() -> None:
    assert parse("entity:PKK") == Value("entity", "PKK", "PKK", 7)
    quoted = parse('entity:"org:Kurdistan Workers\' Party"')
    assert isinstance(quoted, Value) and quoted.value == "ORG:kurdistan workers party"
    unquoted = parse("entity:ORG:pkk")
    assert isinstance(unquoted, Value) and unquoted.value == "ORG:pkk"
    assert as_key("GPE:Türkiye") == "GPE:turkiye"
    assert as_key("PKK") is None


def test_published_ranges_inclusive_exclusive_and_open() -> None:
    day = datetime(2026, 11, 1, tzinfo=UTC)
    node = parse("published:[2026-11-01 TO *]")
    assert isinstance(node, DateRange) and node.low == day and node.high is None
    closed = parse("published:[2026-11-01 TO 2026-11-02]")
    assert isinstance(closed, DateRange) and closed.high == datetime(2026, 11, 3, tzinfo=UTC)
    exclusive = parse("published:{2026-11-01 TO 2026-11-03}")  # only 2026-11-02
    assert isinstance(exclusive, DateRange)
    assert exclusive.low == datetime(2026, 11, 2, tzinfo=UTC)
    assert exclusive.high == datetime(2026, 11, 3, tzinfo=UTC)
    whole_day = parse("published:2026-11-01")
    assert isinstance(whole_day, DateRange)
    assert (whole_day.low, whole_day.high) == (day, datetime(2026, 11, 2, tzinfo=UTC))
    instant = parse('published:["2026-11-01T10:00:00+03:00" TO *]')
    assert isinstance(instant, DateRange) and instant.low == datetime(2026, 11, 1, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "position", "fragment"),
    [
        ("a AND (b", None, "unclosed parenthesis"),
        ('title:"x', 6, "unclosed quote"),
        ("a AND AND b", 6, "unexpected 'AND'"),
        ("Duhok foo:bar", 6, "unknown field 'foo'"),
        ("kind:BANANA", 5, "unknown entity kind"),
        ("lang:turkish!", 5, "ISO 639"),
        ("feed:twelve", 5, "feed id"),
        ("source:example.org/path", 7, "host"),
        ("strike~2", 0, "fuzzy"),
        ("strike^2", 0, "boosts"),
        ("strik*", 0, "wildcards"),
        ("/str.ke/", 0, "regular expressions"),
        ("title:[a TO b]", 6, "ranges are only supported"),
        ("published:[yesterday TO *]", 11, "not a date"),
        ("published:[2026-12-01 TO 2026-11-01]", 10, "range is empty"),
        ("a && b", 2, "no letters or digits"),
        ("", 0, "empty query"),
        ("title:(body:x)", 7, "inside field"),
        # lower-case operators are words: 'pkk or baghdad' silently required the word "or"
        ("pkk or baghdad", 4, "write the operator in capitals (OR)"),
        ("pkk and baghdad", 4, "(AND)"),
        ("Sinjar not rumour", 7, "(NOT)"),
        ("a Or b", 2, "(OR)"),
        # a field without a value used to blame an unclosed parenthesis
        ("PKK AND entity:", None, "field 'entity:' has no value"),
        ("(lang:", None, "field 'lang:' has no value"),
    ],
)
def test_errors_point_at_the_position(query: str, position: int | None, fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert fragment in caught.value.message
    assert caught.value.position == position
    where = "at the end" if position is None else f"at position {position}"
    assert where in str(caught.value)
    pointer = caught.value.pointer().splitlines()
    assert pointer[0] == query
    assert pointer[1].index("^") == (len(query) if position is None else position)


@pytest.mark.parametrize("query", ['pkk "or" baghdad', '"AND" x', 'title:"not"', "lang:or"])
def test_operator_words_quoted_or_as_values_survive_the_saved_form(query: str) -> None:
    # the saved form is parsed again by every alerter: '"AND" x' used to be saved as
    # 'AND AND x', which no longer parsed, so the watch was skipped and never alerted
    saved = render(parse(query))
    assert render(parse(saved)) == saved
    assert [t.words for t in walk(parse(saved)) if isinstance(t, Term)] == [
        t.words for t in walk(parse(query)) if isinstance(t, Term)
    ]


def _alternating(levels: int) -> str:
    query = "x"
    for level in range(levels):
        query = f"w{level} {'AND' if level % 2 else 'OR'} ({query})"
    return query


@pytest.mark.parametrize(
    "query",
    ["(" * 1990 + "x" + ")" * 1990, "NOT " * 990 + "x", "-" * 3000 + "x", _alternating(45)],
)
def test_deep_nesting_is_a_query_error_not_a_crash(query: str) -> None:
    # these used to raise RecursionError (a traceback at 'watch add', not an error)
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert "nested more than 40 levels" in caught.value.message


def test_reasonable_nesting_still_parses() -> None:
    node = parse(_alternating(30))
    assert render(parse(render(node))) == render(node)


def test_render_is_a_fixed_point_and_shows_keys() -> None:
    query = 'entity:PKK AND (Duhok OR "Sinjar district") NOT kind:PERSON lang:tr'
    node = parse(query)
    assert [v.raw for v in entity_values(node)] == ["PKK"]
    saved = render(with_keys(node, {"PKK": "ORG:kurdistan workers party"}))
    assert saved == (
        'entity:"ORG:kurdistan workers party" AND (Duhok OR "Sinjar district") '
        "AND NOT kind:PERSON AND lang:tr"
    )
    assert render(parse(saved)) == saved
    for text in ("published:[2026-11-01 TO *]", "source:example.org OR feed:12", "author:Doe"):
        assert render(parse(render(parse(text)))) == render(parse(text))
