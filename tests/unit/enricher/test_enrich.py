"""End to end with the real model: one short security-news article per rule, asserting the
exact entity keys and kinds the writer will store."""

from __future__ import annotations

from services.enricher.canonical import Overrides
from services.enricher.pipeline import RULES_VERSION, Enricher
from shared.messages import EnrichedArticle


def entities(result: EnrichedArticle) -> dict[str, str]:
    return {e.key: e.kind for e in result.entities}


def mention_keys(result: EnrichedArticle, text: str) -> set[str]:
    return {m.entity_key for m in result.mentions if m.text == text}


def test_transliteration_variants_share_keys(enricher: Enricher, make_article) -> None:
    a = enricher.enrich(
        make_article(
            "Turkish President Recep Tayyip Erdogan said Turkiye would keep up strikes near Arbil "
            "and in Sirnak province.",
        )
    )
    b = enricher.enrich(
        make_article(
            "Cumhurbaşkanı aside, President Recep Tayyip Erdoğan told reporters in Ankara that "
            "Türkiye had hit targets around Erbil. Security was tightened in Şırnak.",
        )
    )
    for key, kind in {
        "PERSON:recep tayyip erdogan": "PERSON",
        "GPE:turkiye": "GPE",
        "GPE:erbil": "GPE",
        "GPE:sirnak": "GPE",
    }.items():
        assert entities(a)[key] == kind
        assert entities(b)[key] == kind


def test_acronyms_link_to_expansions(enricher: Enricher, make_article) -> None:
    result = enricher.enrich(
        make_article(
            "The Syrian Democratic Forces (SDF) said on Monday that its fighters repelled an attack "
            "near Raqqa.\n\nThe Hamrin Border Brigade (HBB) said HBB units held the road to Jalawla. "
            "A spokesman for the SDF denied losses.",
        )
    )
    assert mention_keys(result, "SDF") == {"ORG:syrian democratic forces"}
    assert mention_keys(result, "HBB") == {"ORG:hamrin border brigade"}
    assert entities(result)["ORG:syrian democratic forces"] == "ORG"
    assert entities(result)["ORG:hamrin border brigade"] == "ORG"
    sdf = next(e for e in result.entities if e.key == "ORG:syrian democratic forces")
    assert sdf.mentions == 3 and sdf.name == "Syrian Democratic Forces"
    assert "GPE:raqqa" in entities(result) and "GPE:jalawla" in entities(result)


def test_surname_back_references(enricher: Enricher, make_article) -> None:
    result = enricher.enrich(
        make_article(
            "Iraqi Prime Minister Mohammed Shia al-Sudani met Peshmerga commander Kawa Rashid Mirza "
            "in Baghdad on Tuesday.\n\nSudani said the border would be secured. Mirza said his "
            "forces were ready.",
            title="Sudani meets Peshmerga commander",
        )
    )
    assert mention_keys(result, "Sudani") == {"PERSON:mohammed shia al sudani"}
    assert mention_keys(result, "Mirza") == {"PERSON:kawa rashid mirza"}
    people = {k for k, kind in entities(result).items() if kind == "PERSON"}
    assert people == {"PERSON:mohammed shia al sudani", "PERSON:kawa rashid mirza"}
    sudani = next(e for e in result.entities if e.key == "PERSON:mohammed shia al sudani")
    assert sudani.name == "Mohammed Shia al-Sudani"
    assert sudani.mentions == 3  # title, lead, body


def test_shared_surname_stays_ambiguous(enricher: Enricher, make_article) -> None:
    result = enricher.enrich(
        make_article(
            "Bashar al-Assad succeeded his father Hafez al-Assad in 2000. Assad ruled until 2024.",
        )
    )
    keys = entities(result)
    assert keys["PERSON:bashar al assad"] == "PERSON"
    assert keys["PERSON:hafez al assad"] == "PERSON"
    assert mention_keys(result, "Assad") == {"PERSON:assad"}


def test_titles_and_ranks_are_stripped(enricher: Enricher, make_article) -> None:
    result = enricher.enrich(
        make_article(
            "Chief of General Staff Gen. Metin Gürak inspected units in Hakkari. Prime Minister "
            "al-Sudani's office said Defence Minister Yaşar Güler would visit Baghdad.\n\n"
            "Sergeant Emre Yılmaz was wounded in the clash.",
        )
    )
    keys = entities(result)
    assert keys["PERSON:metin gurak"] == "PERSON"
    assert keys["PERSON:mohammed shia al sudani"] == "PERSON"
    assert keys["PERSON:yasar guler"] == "PERSON"
    assert keys["PERSON:emre yilmaz"] == "PERSON"
    assert keys["GPE:hakkari"] == "GPE"
    assert not any(k.startswith("ORG:defence") for k in keys)


def test_same_entity_across_two_articles(enricher: Enricher, make_article) -> None:
    first = enricher.enrich(
        make_article(
            "Fighters of the Kurdistan Workers' Party (PKK) attacked an outpost in Duhok province, "
            "the Turkish Ministry of National Defence said.",
        )
    )
    second = enricher.enrich(
        make_article(
            "Turkish jets struck PKK positions near Dohuk and in the Qandil Mountains, the Ministry "
            "of National Defense said. Daesh cells were also targeted near Kirkuk.",
        )
    )
    for key, kind in {
        "ORG:kurdistan workers party": "ORG",
        "GPE:duhok": "GPE",
        "ORG:ministry of national defence": "ORG",
    }.items():
        assert entities(first)[key] == entities(second)[key] == kind
    assert entities(second)["ORG:islamic state"] == "ORG"
    assert entities(second)["LOC:qandil mountains"] == "LOC"


def test_distinct_things_stay_distinct(enricher: Enricher, make_article) -> None:
    result = enricher.enrich(
        make_article(
            "The Turkish Armed Forces said Türkiye would continue operations. The Kurdistan Regional "
            "Government said the Kurdistan Region was not a party to the conflict, while the Iraqi "
            "Army deployed in Iraq's north. Kurdish officials in Erbil urged calm.",
        )
    )
    assert entities(result) == {
        "ORG:turkish armed forces": "ORG",
        "GPE:turkiye": "GPE",
        "ORG:kurdistan regional government": "ORG",
        "GPE:kurdistan region": "GPE",
        "ORG:iraqi army": "ORG",
        "GPE:iraq": "GPE",
        "NORP:kurds": "NORP",
        "GPE:erbil": "GPE",
    }


def test_rule_layer_keeps_longer_names_whole(enricher: Enricher, make_article) -> None:
    body = (
        "Officials said the Türkiye-Iraq High-Level Security Mechanism would meet in Ankara.\n"
        "Türkiye is a country."
    )
    result = enricher.enrich(make_article(body))
    mechanism = "ORG:turkiye iraq high level security mechanism"
    assert entities(result)[mechanism] == "ORG"
    start = body.index("Türkiye-Iraq")
    inside = [m for m in result.mentions if start <= m.start < start + 45]
    assert [m.entity_key for m in inside] == [mechanism]  # no GPE carved out of it
    assert entities(result)["GPE:turkiye"] == "GPE"  # ... but "Türkiye" alone is the country


def test_rerunning_is_idempotent(enricher: Enricher, make_article) -> None:
    article = make_article(
        "The Popular Mobilization Forces (Hashd al-Shaabi) deployed to Sinjar after ISIS "
        "attacks. PMF commanders met Yazidi leaders.",
        title="PMF deploys to Sinjar",
    )
    once = enricher.enrich(article).model_dump(exclude={"enrichment": {"enriched_at"}})
    twice = enricher.enrich(article).model_dump(exclude={"enrichment": {"enriched_at"}})
    batch = enricher.enrich_many([article, article])
    assert once == twice
    assert all(r.model_dump(exclude={"enrichment": {"enriched_at"}}) == once for r in batch)
    assert once["enrichment"]["rules_version"] == RULES_VERSION
    assert entities(enricher.enrich(article))["ORG:popular mobilization forces"] == "ORG"


def test_mentions_index_their_field_and_never_cross_paragraphs(
    enricher: Enricher, make_article
) -> None:
    body = (
        "Clashes erupted near the Syrian border with the Syrian Democratic Forces\n\n"
        "Kurdistan Region officials said.\nThe United Nations called for restraint."
    )
    article = make_article(body, title="UN urges restraint after Syria clashes")
    result = enricher.enrich(article)
    assert result.mentions
    for mention in result.mentions:
        text = body if mention.field == "body" else article.title
        assert text[mention.start : mention.end] == mention.text
        assert "\n" not in mention.text
    assert {m.entity_key for m in result.mentions if m.field == "title"} >= {"ORG:united nations"}


def test_salience_prefers_title_lead_and_frequency(enricher: Enricher, make_article) -> None:
    result = enricher.enrich(
        make_article(
            "Turkish drones struck PKK targets in Gara on Sunday.\n\nThe PKK said three fighters "
            "died. The PKK vowed revenge. Officials in Moscow made no comment.",
            title="PKK says fighters killed in Gara strike",
        )
    )
    by_key = {e.key: e for e in result.entities}
    pkk, moscow = by_key["ORG:kurdistan workers party"], by_key["GPE:moscow"]
    assert result.entities[0].key == "ORG:kurdistan workers party"
    assert pkk.salience == 1.0 and pkk.mentions == 4
    assert moscow.salience < by_key["LOC:gara"].salience < pkk.salience
    assert all(0 <= e.salience <= 1 for e in result.entities)


def test_empty_article_is_kept_with_status(enricher: Enricher, make_article) -> None:
    result = enricher.enrich(make_article("  \n "))
    assert result.enrichment.status == "empty" and result.entities == []
    titled = enricher.enrich(make_article("", title="Erdoğan visits Baghdad"))
    assert titled.enrichment.status == "empty"
    assert "PERSON:recep tayyip erdogan" in entities(titled)


def test_non_english_article_goes_through_the_multilingual_gazetteer(
    enricher: Enricher, make_article
) -> None:
    result = enricher.enrich(
        make_article(
            "Milli Savunma Bakanlığı, Irak'ın kuzeyindeki Gara bölgesinde PKK hedeflerinin "
            "vurulduğunu açıkladı. Cumhurbaşkanı Erdoğan ayrıca Kobani'ye değindi. Ahmet Yıldız "
            "adlı bir asker yaralandı.",
            language="tr",
        )
    )
    assert result.enrichment.status == "ok"
    assert (result.enrichment.language, result.enrichment.method) == ("tr", "gazetteer")
    # no model ran: curated names (native spellings too) and the given-name rule still apply
    assert entities(result) == {
        "ORG:ministry of national defence": "ORG",
        "GPE:iraq": "GPE",
        "LOC:gara": "LOC",
        "ORG:kurdistan workers party": "ORG",
        "PERSON:recep tayyip erdogan": "PERSON",
        "GPE:kobani": "GPE",
        "PERSON:ahmet yildiz": "PERSON",
    }
    assert result.article.body_text.startswith("Milli")  # the article itself is kept
    # too short to identify: the parser's language stands; Arabic script is never English
    arabic = enricher.enrich(make_article("قصفت طائرات مسيرة مواقع في دهوك", language=None))
    assert (arabic.enrichment.language, arabic.enrichment.method) == (None, "gazetteer")
    assert entities(arabic) == {"GPE:duhok": "GPE"}
    other = enricher.enrich(make_article("Die PKK griff an. " * 20, language="de"))
    assert other.enrichment.status == "unsupported_language"
    assert other.enrichment.method == "gazetteer"
    assert entities(other) == {"ORG:kurdistan workers party": "ORG"}


def test_enormous_text_is_truncated(make_article) -> None:
    small = Enricher(max_chars=300)
    small.load()
    paragraph = "Turkish forces struck PKK targets near Duhok on Monday, officials said.\n"
    body = paragraph * 40
    result = small.enrich(make_article(body))
    assert result.enrichment.status == "truncated"
    assert all(m.end <= 300 for m in result.mentions)
    assert entities(result)["ORG:kurdistan workers party"] == "ORG"
    assert "of 2880 characters" in (result.enrichment.note or "")


def test_overrides_change_resolution_after_reload(enricher: Enricher, make_article) -> None:
    article = make_article("Fighters of the Sinjar Resistance Units clashed with the Iraqi Army.")
    before = entities(enricher.enrich(article))
    assert "ORG:sinjar resistance units" in before
    previous = enricher.overrides
    try:
        enricher.set_overrides(
            Overrides(aliases={"sinjar resistance units": "ORG:ybs"}, names={"ORG:ybs": "YBŞ"})
        )
        after = enricher.enrich(article)
        assert "ORG:ybs" in entities(after) and "ORG:sinjar resistance units" not in entities(after)
        assert next(e for e in after.entities if e.key == "ORG:ybs").name == "YBŞ"
    finally:
        enricher.set_overrides(previous)


def test_enriched_article_round_trips_through_json(enricher: Enricher, make_article) -> None:
    result = enricher.enrich(make_article("NATO and the EU condemned the attack in Kobani."))
    decoded = EnrichedArticle.from_bytes(result.to_bytes())
    assert decoded == result
    assert entities(decoded) == {
        "ORG:north atlantic treaty organization": "ORG",
        "ORG:european union": "ORG",
        "GPE:kobani": "GPE",
    }


def test_skipping_nameless_sentences_keeps_the_same_entities(
    enricher: Enricher, make_article
) -> None:
    article = make_article(
        "The operation is the latest in a series of cross-border strikes. The Turkish Armed "
        "Forces said on Monday that 12 PKK militants were neutralised in the Gara region.\n\n"
        "Residents said they heard explosions throughout the night. Kurdistan Regional "
        "Government spokesman Peshawa Hawramani said Erbil was calm. It was not clear how "
        "many civilians were hurt. Hawramani called for restraint."
    )
    assert enricher._recognizer is not None
    skipped = enricher.enrich(article)
    enricher._recognizer.skip_nameless = False
    try:
        full = enricher.enrich(article)
    finally:
        enricher._recognizer.skip_nameless = True
    assert skipped.mentions == full.mentions
    assert mention_keys(skipped, "Hawramani") == {"PERSON:peshawa hawramani"}


def test_site_name_after_the_headline_is_not_an_entity(enricher: Enricher, make_article) -> None:
    title = "Iraqi forces dismantle Islamic State cell in Kirkuk - Zagros Daily"
    result = enricher.enrich(
        make_article(
            "Iraqi forces raided a hideout in Kirkuk.", title=title, site_name="Zagros Daily"
        )
    )
    title_mentions = {(m.text, m.entity_key) for m in result.mentions if m.field == "title"}
    assert title_mentions == {
        ("Iraqi", "GPE:iraq"),
        ("Islamic State", "ORG:islamic state"),
        ("Kirkuk", "GPE:kirkuk"),
    }


def test_explain_names_the_rules(enricher: Enricher, make_article) -> None:
    body = "The Hamrin Border Brigade (HBB) met Sergeant Emre Yılmaz. HBB officers left Duhok."
    rows = {(e.text, e.key, e.resolved_by) for e in enricher.explain(make_article(body))}
    assert ("HBB", "ORG:hamrin border brigade", "acronym_definition") in rows
    assert ("Duhok", "GPE:duhok", "curated") in rows
    recognized = {e.text: e.recognized_by for e in enricher.explain(make_article(body))}
    assert recognized["Sergeant Emre Yılmaz"] == "turkish_name_extended"


def test_odd_text_never_crashes_and_offsets_stay_valid(enricher: Enricher, make_article) -> None:
    body = (
        "\u200bTürkiye\u200b 🇹🇷 said — زاخو — Zakho was hit.\r\n"
        + "x" * 50_000
        + "\n\tPKK\u00a0fighters\u202efled\u202c to Qandil.\n\x00"
    )
    result = enricher.enrich(make_article(body, title="\u200e"))
    assert result.enrichment.status == "ok"
    for mention in result.mentions:
        assert body[mention.start : mention.end] == mention.text
    assert {
        "GPE:turkiye",
        "GPE:zakho",
        "ORG:kurdistan workers party",
        "LOC:qandil mountains",
    } <= set(entities(result))


def test_title_case_headline_keeps_only_confirmed_names(enricher: Enricher, make_article) -> None:
    result = enricher.enrich(
        make_article(
            "Turkish drones killed three PKK members near Duhok. Iraqi Prime Minister Mohammed Shia "
            "al-Sudani condemned the strike.",
            title="Turkish Drone Strike Kills Three PKK Members In Northern Iraq, Sudani Says",
        )
    )
    title = {(m.text, m.entity_key) for m in result.mentions if m.field == "title"}
    assert title == {
        ("Turkish", "GPE:turkiye"),
        ("PKK", "ORG:kurdistan workers party"),
        ("Iraq", "GPE:iraq"),
        ("Sudani", "PERSON:mohammed shia al sudani"),
    }


def test_vocabulary_does_not_grow_across_articles(enricher: Enricher, make_article) -> None:
    import random
    import string

    rng = random.Random(3)

    def noise() -> str:
        return " ".join("".join(rng.choices(string.ascii_letters, k=9)) for _ in range(300))

    enricher.enrich(make_article("Warm up in Erbil. " + noise()))
    assert enricher._nlp is not None
    before = len(enricher._nlp.vocab.strings)
    enricher.enrich_many([make_article(f"Clashes near Duhok. {noise()}") for _ in range(5)])
    assert len(enricher._nlp.vocab.strings) == before


def test_skipping_known_only_sentences_keeps_the_same_mentions(
    enricher: Enricher, make_article
) -> None:
    article = make_article(
        "Turkish jets struck PKK targets near Duhok and in the Qandil Mountains on Sunday. "
        "Kurdistan Regional Government spokesman Peshawa Hawramani said Erbil was calm.\n\n"
        "The SDF said the al-Hol camp in Hasakah was secure. Hawramani urged restraint.",
        title="Turkish jets strike PKK targets near Duhok",
    )
    assert enricher._recognizer is not None
    fast = enricher.enrich(article)
    enricher._recognizer.skip_known = False
    try:
        full = enricher.enrich(article)
    finally:
        enricher._recognizer.skip_known = True
    assert fast.mentions == full.mentions
    assert mention_keys(fast, "al-Hol") == {"GPE:al hol"}
