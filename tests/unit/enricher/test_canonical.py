"""The normalisation key and the curated alias table (no model needed)."""

from __future__ import annotations

import pytest

from services.enricher.canonical import (
    Overrides,
    display_name,
    fold,
    follow_merges,
    load_curated,
    make_key,
    parse_alias_data,
    split_key,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Türkiye", "TURKIYE"),
        ("TÜRKİYE", "türkiye"),  # dotted capital I
        ("Şırnak", "Sirnak"),  # dotless i and cedilla
        ("İbrahim Kalın", "Ibrahim Kalin"),
        ("al-Sudani", "Al Sudani"),  # hyphen == space
        ("Abu-Bakr", "Abu Bakr"),
        ("Türkiye's", "Türkiye"),  # possessive
        ("Kurdistan Workers’ Party", "Kurdistan Workers Party"),  # curly apostrophe
        ("U.S.", "US"),
        ("ＰＫＫ", "PKK"),  # NFKC: full-width letters
        ("Deir ez-Zor", "Deir Ez Zor"),
    ],
)
def test_fold_equivalences(a: str, b: str) -> None:
    assert fold(a) == fold(b)


def test_fold_exact_values() -> None:
    assert fold("Türkiye's") == "turkiye"
    assert fold("Mohammed Shia al-Sudani") == "mohammed shia al sudani"
    assert fold("  Kurdistan   Region ") == "kurdistan region"
    assert fold("Iraq") != fold("Iran")


@pytest.mark.parametrize(
    ("surface", "key"),
    [
        ("President Recep Tayyip Erdoğan", "PERSON:recep tayyip erdogan"),
        ("Prime Minister al-Sudani", "PERSON:al sudani"),
        ("Lt. Gen. Metin Gürak", "PERSON:metin gurak"),
        ("First Lieutenant General Metin Gürak", "PERSON:metin gurak"),
        ("Gen. Mazloum Abdi", "PERSON:mazloum abdi"),
        ("Dr. Fuad Hussein", "PERSON:fuad hussein"),
        ("Sheikh Ahmed al-Hashemi", "PERSON:ahmed al hashemi"),
        ("Defence Minister Yaşar Güler", "PERSON:yasar guler"),
        ("President", "PERSON:president"),  # a title alone is kept, never emptied
    ],
)
def test_person_keys_strip_titles(surface: str, key: str) -> None:
    assert make_key("PERSON", surface) == key


def test_titles_are_not_stripped_from_organisations() -> None:
    assert make_key("ORG", "the Prime Minister's Office") == "ORG:prime minister office"
    assert make_key("ORG", "The Syrian Democratic Forces") == "ORG:syrian democratic forces"


def test_make_key_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown entity kind"):
        make_key("DATE", "Monday")


def test_split_key_validates() -> None:
    assert split_key("GPE:turkiye") == ("GPE", "turkiye")
    for bad in ("turkiye", "XYZ:turkiye", "GPE:", "GPE:Türkiye"):
        with pytest.raises(ValueError):
            split_key(bad)


def test_display_name_drops_article_title_possessive() -> None:
    assert display_name("Prime Minister al-Sudani's", "PERSON") == "al-Sudani"
    assert display_name("the Syrian Democratic Forces", "ORG") == "Syrian Democratic Forces"
    assert display_name("Lt. Gen. Metin Gürak", "PERSON") == "Metin Gürak"


def test_curated_countries_official_and_endonym_forms() -> None:
    table = load_curated()
    expected = {
        "GPE:turkiye": ["Turkey", "Türkiye", "Republic of Türkiye", "Turkish", "TURKEY"],
        "GPE:united states": ["United States", "U.S.", "US", "USA", "American"],
        "GPE:iraq": ["Republic of Iraq", "Iraqi"],
        "GPE:syria": ["Syrian Arab Republic"],
        "GPE:russia": ["Russian Federation"],
        "GPE:united kingdom": ["UK", "Britain", "United Kingdom"],
        "NORP:kurds": ["Kurdish", "Kurds"],
        "ORG:islamic state": ["ISIS", "ISIL", "Daesh", "Islamic State"],
        "ORG:kurdistan workers party": ["PKK", "Kurdistan Workers' Party"],
        "ORG:popular mobilization forces": [
            "PMF",
            "Hashd al-Shaabi",
            "Popular Mobilisation Forces",
        ],
        "ORG:kurdistan regional government": ["KRG"],
        "ORG:national intelligence organization": ["MIT"],
        "ORG:north atlantic treaty organization": ["NATO", "Nato"],
        "ORG:united nations": ["UN", "U.N."],
    }
    for key, surfaces in expected.items():
        for surface in surfaces:
            entry = table.lookup(surface)
            assert entry is not None, surface
            assert entry.entity.key == key, surface


def test_curated_distinct_things_stay_distinct() -> None:
    table = load_curated()

    def key(surface: str) -> str:
        entry = table.lookup(surface)
        assert entry is not None, surface
        return entry.entity.key

    assert key("Türkiye") == "GPE:turkiye"
    assert key("Turkish Armed Forces") == "ORG:turkish armed forces"  # a country != its army
    assert key("Iraqi Army") == "ORG:iraqi army"
    assert key("Iraqi Government") == "ORG:government of iraq"  # a place != its government
    assert key("Kurdistan Region") == "GPE:kurdistan region"
    assert key("Kurdistan Regional Government") == "ORG:kurdistan regional government"
    assert key("Kurdish") == "NORP:kurds"  # a people, not a country
    assert key("Peshmerga") == "ORG:peshmerga"
    assert key("Ministry of Peshmerga Affairs") == "ORG:ministry of peshmerga affairs"


def test_short_acronyms_are_case_sensitive_and_weak_forms_need_a_model_span() -> None:
    table = load_curated()
    assert table.lookup("us") is None  # the pronoun is not the United States
    assert table.lookup("IS") is not None  # the model found it: resolve
    assert table.lookup("IS", found_by_model=False) is None  # never added by rules alone
    assert table.lookup("Van", found_by_model=False) is None


def test_alias_data_rejects_conflicts() -> None:
    data = {
        "entities": [
            {"kind": "GPE", "name": "Georgia"},
            {"kind": "PERSON", "name": "Georgia Smith", "aliases": ["Georgia"]},
        ]
    }
    with pytest.raises(ValueError, match="maps to both"):
        parse_alias_data(data)


def test_shipped_alias_data_loads_without_conflicts() -> None:
    table = load_curated()
    assert len(table.entities) > 150
    assert all(key == make_key(e.kind, e.name) for key, e in table.entities.items())


def test_follow_merges_collapses_chains_and_cuts_cycles() -> None:
    assert follow_merges({"A": "B", "B": "C"}) == {"A": "C", "B": "C"}
    cyclic = follow_merges({"A": "B", "B": "A"})
    assert cyclic == {"A": "B", "B": "A"}  # each stops before closing the loop


def test_overrides_alias_lookup_and_digest() -> None:
    empty = Overrides()
    custom = Overrides(aliases={"mount gabar": "LOC:gabar"}, merges={"GPE:x": "GPE:y"})
    assert custom.alias("Mount Gabar") == "LOC:gabar"
    assert custom.alias("the Mount Gabar") == "LOC:gabar"
    assert custom.redirect("GPE:x") == "GPE:y"
    assert custom.redirect("GPE:z") == "GPE:z"
    assert empty.digest != custom.digest
