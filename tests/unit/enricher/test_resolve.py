"""Per-article resolution rules on hand-made spans (no model: every input is explicit)."""

from __future__ import annotations

import re

from services.enricher.canonical import Overrides, load_curated
from services.enricher.recogniser import Span
from services.enricher.resolve import canonical_names, is_acronym, resolve_article


def spans_for(body: str, marked: dict[str, str]) -> list[Span]:
    """A Span for every occurrence of each marked surface, with the given label."""
    out = []
    for surface, label in marked.items():
        for match in re.finditer(r"(?<!\w)" + re.escape(surface) + r"(?!\w)", body):
            out.append(Span("body", match.start(), match.end(), surface, label))
    return out


def resolve(body: str, marked: dict[str, str], overrides: Overrides | None = None):
    return resolve_article(
        spans_for(body, marked), texts={"body": body}, table=load_curated(), overrides=overrides
    )


def keys_by_text(items) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in items:
        out.setdefault(item.span.text, set()).add(item.key)
    return out


def test_acronym_defined_in_parentheses_links_every_use() -> None:
    body = "The Hamrin Border Brigade (HBB) said on Monday that HBB fighters held Jalawla."
    items = resolve(body, {"Hamrin Border Brigade": "ORG", "Jalawla": "GPE"})
    by_text = keys_by_text(items)
    # the model tagged neither "HBB": the definition adds both mentions
    assert by_text["HBB"] == {"ORG:hamrin border brigade"}
    assert [i.span.text for i in items].count("HBB") == 2
    assert by_text["Hamrin Border Brigade"] == {"ORG:hamrin border brigade"}
    assert {i.rule for i in items if i.span.text == "HBB"} == {"acronym_definition"}


def test_acronym_before_its_expansion() -> None:
    body = "Fighters of the SBL (Sinjar Resistance Units) clashed with the Iraqi Army. The SBL denied it."
    items = resolve(body, {"SBL": "ORG", "Sinjar Resistance Units": "ORG", "Iraqi Army": "ORG"})
    assert keys_by_text(items)["SBL"] == {"ORG:sinjar resistance units"}


def test_in_article_definition_beats_the_curated_acronym() -> None:
    # "IS" is curated as Islamic State, but this article defines it otherwise
    body = "The Intelligence Service (IS) of the region said IS officers made arrests."
    items = resolve(body, {"Intelligence Service": "ORG", "IS": "ORG"})
    assert keys_by_text(items)["IS"] == {"ORG:intelligence service"}


def test_undefined_acronym_matches_unique_initials() -> None:
    body = "The Ninewa Plains Protection Units patrolled. Later the NPPU withdrew."
    items = resolve(body, {"Ninewa Plains Protection Units": "ORG", "NPPU": "ORG"})
    assert keys_by_text(items)["NPPU"] == {"ORG:ninewa plains protection units"}
    assert {i.rule for i in items if i.span.text == "NPPU"} == {"acronym_initials"}


def test_curated_acronym_and_expansion_share_a_key() -> None:
    body = "The Syrian Democratic Forces said the SDF held Raqqa."
    items = resolve(body, {"Syrian Democratic Forces": "ORG", "SDF": "ORG", "Raqqa": "GPE"})
    by_text = keys_by_text(items)
    assert by_text["SDF"] == by_text["Syrian Democratic Forces"] == {"ORG:syrian democratic forces"}


def test_surname_and_title_forms_resolve_to_the_full_name() -> None:
    body = (
        "Peshmerga commander Kawa Rashid Mirza visited Makhmour. "
        "Mirza said the front was calm. Commander Mirza left on Tuesday."
    )
    items = resolve(
        body, {"Kawa Rashid Mirza": "PERSON", "Mirza": "PERSON", "Commander Mirza": "PERSON"}
    )
    by_text = keys_by_text(items)
    assert by_text["Mirza"] == {"PERSON:kawa rashid mirza"}
    assert by_text["Commander Mirza"] == {"PERSON:kawa rashid mirza"}


def test_surname_mislabelled_org_resolves_to_the_person() -> None:
    body = "Karwan Hoshyar Zebari met officials. Zebari later spoke to reporters."
    items = resolve(body, {"Karwan Hoshyar Zebari": "PERSON", "Zebari": "ORG"})
    item = next(i for i in items if i.span.text == "Zebari")
    assert (item.key, item.kind, item.rule) == ("PERSON:karwan hoshyar zebari", "PERSON", "surname")


def test_shared_surname_stays_ambiguous() -> None:
    body = "Bashar al-Assad succeeded his father Hafez al-Assad in 2000. Assad ruled until 2024."
    items = resolve(
        body, {"Bashar al-Assad": "PERSON", "Hafez al-Assad": "PERSON", "Assad": "PERSON"}
    )
    by_text = keys_by_text(items)
    assert by_text["Bashar al-Assad"] == {"PERSON:bashar al assad"}
    assert by_text["Hafez al-Assad"] == {"PERSON:hafez al assad"}
    assert by_text["Assad"] == {"PERSON:assad"}
    assert {i.rule for i in items if i.span.text == "Assad"} == {"surname_ambiguous"}


def test_in_article_surname_beats_a_curated_surname() -> None:
    # "al-Sharaa" alone is curated as Ahmed al-Sharaa; here the article names someone else
    body = "Former vice president Farouk al-Sharaa gave an interview. al-Sharaa said little."
    items = resolve(body, {"Farouk al-Sharaa": "PERSON", "al-Sharaa": "PERSON"})
    assert keys_by_text(items)["al-Sharaa"] == {"PERSON:farouk al sharaa"}


def test_curated_surname_without_a_full_name_in_the_article() -> None:
    body = "President Erdoğan spoke in Ankara."
    items = resolve(body, {"Erdoğan": "PERSON", "Ankara": "GPE"})
    assert keys_by_text(items)["Erdoğan"] == {"PERSON:recep tayyip erdogan"}


def test_kind_vote_gives_one_kind_per_name_in_an_article() -> None:
    body = "Clashes hit Qasr Shirin. Residents of Qasr Shirin fled. Qasr Shirin was shelled."
    spans = spans_for(body, {"Qasr Shirin": "GPE"})
    spans[1] = Span("body", spans[1].start, spans[1].end, spans[1].text, "ORG")
    items = resolve_article(spans, texts={"body": body}, table=load_curated())
    assert {i.key for i in items} == {"GPE:qasr shirin"}


def test_user_alias_and_merge_override_everything() -> None:
    body = "The Sinjar Resistance Units fought near Sinjar. Shingal residents fled."
    overrides = Overrides(
        aliases={"sinjar resistance units": "ORG:ybs"},
        merges={"GPE:sinjar": "GPE:sinjar district"},
        names={"ORG:ybs": "YBŞ"},
    )
    items = resolve(
        body, {"Sinjar Resistance Units": "ORG", "Sinjar": "GPE", "Shingal": "GPE"}, overrides
    )
    by_text = keys_by_text(items)
    assert by_text["Sinjar Resistance Units"] == {"ORG:ybs"}
    assert by_text["Sinjar"] == by_text["Shingal"] == {"GPE:sinjar district"}
    names = canonical_names(items, table=load_curated(), overrides=overrides)
    assert names["ORG:ybs"] == "YBŞ"


def test_resolution_is_deterministic_regardless_of_span_order() -> None:
    body = "Mohammed Shia al-Sudani met Fuad Hussein. Sudani and Hussein spoke."
    marked = {
        "Mohammed Shia al-Sudani": "PERSON",
        "Fuad Hussein": "PERSON",
        "Sudani": "ORG",
        "Hussein": "PERSON",
    }
    forward = resolve_article(spans_for(body, marked), texts={"body": body}, table=load_curated())
    backward = resolve_article(
        list(reversed(spans_for(body, marked))), texts={"body": body}, table=load_curated()
    )
    assert [(i.span.start, i.key) for i in forward] == [(i.span.start, i.key) for i in backward]
    assert keys_by_text(forward)["Hussein"] == {"PERSON:fuad hussein"}


def test_is_acronym() -> None:
    assert all(is_acronym(t) for t in ("SDF", "U.N.", "CJTF-OIR", "PKK", "HBB"))
    assert not any(is_acronym(t) for t in ("Sudani", "A", "Syrian Democratic Forces", "Nato"))


def test_lone_surname_of_a_curated_person_is_a_person() -> None:
    body = "Barzani met officials in Erbil on Monday."
    items = resolve(body, {"Barzani": "ORG", "Erbil": "GPE"})
    item = next(i for i in items if i.span.text == "Barzani")
    # never linked to one of the Barzanis, but a person, not an organisation
    assert (item.key, item.kind, item.rule) == ("PERSON:barzani", "PERSON", "curated_surname_kind")


def test_agency_credit_in_brackets_is_not_an_acronym_definition() -> None:
    body = "Clashes were reported in the Kurdistan Region (AFP). AFP could not confirm the toll."
    items = resolve(body, {"Kurdistan Region": "GPE", "AFP": "ORG"})
    assert keys_by_text(items)["AFP"] == {"ORG:afp"}


def test_name_form_fixes_the_kind_of_unknown_names() -> None:
    body = "Fighters moved from Wadi Hauran to Tal Tamr, the Khabur Guards Brigade said."
    items = resolve(
        body, {"Wadi Hauran": "GPE", "Tal Tamr": "PERSON", "Khabur Guards Brigade": "PRODUCT"}
    )
    assert {(i.key, i.rule) for i in items} == {
        ("LOC:wadi hauran", "kind_by_form"),
        ("GPE:tal tamr", "kind_by_form"),
        ("ORG:khabur guards brigade", "kind_by_form"),
    }
