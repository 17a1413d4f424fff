from __future__ import annotations

import threading
import time

import lxml.html
import pytest

from services.parser.charset import check_replacement_chars, repair_mojibake
from services.parser.limits import ParseTimeout, TimeLimit
from services.parser.structured import read_structured
from shared.errors import PermanentError

TURKISH = "Irak'ın kuzeyinde düzenlenen operasyonda şüpheli sığınaklar ve mağaralar imha edildi. İçişleri Bakanlığı açıkladı."


def test_cp1254_read_as_cp1252_is_repaired() -> None:
    garbled = TURKISH.encode("cp1254").decode("cp1252")
    assert "ý" in garbled and "þ" in garbled
    assert repair_mojibake(garbled) == (TURKISH, "cp1254")
    assert repair_mojibake(garbled, charset="windows-1252") == (TURKISH, "cp1254")


@pytest.mark.parametrize("codec", ["cp1250", "iso8859-2", "latin-1", "iso8859-15"])
def test_cp1254_read_as_other_single_byte_codecs_is_repaired(codec: str) -> None:
    garbled = TURKISH.encode("cp1254").decode(codec)
    assert repair_mojibake(garbled, charset=codec) == (TURKISH, "cp1254")


def test_server_side_mojibake_in_a_utf8_page_is_repaired() -> None:
    # a CMS read cp1254 as latin-1 and stored the result as UTF-8: the page is valid UTF-8
    garbled = TURKISH.encode("cp1254").decode("latin-1")
    assert repair_mojibake(garbled, charset="utf-8") == (TURKISH, "cp1254")


def test_utf8_read_as_cp1252_is_repaired() -> None:
    garbled = TURKISH.encode("utf-8").decode("cp1252", errors="strict")
    assert repair_mojibake(garbled) == (TURKISH, "utf-8")
    assert repair_mojibake(TURKISH.encode("utf-8").decode("cp1250"), charset="cp1250") == (
        TURKISH,
        "utf-8",
    )


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        (TURKISH, "tr"),  # correct Turkish is left alone
        (
            "Vláda oznámila, že který z těchto kroků být přijat, není jasné; mluvčí ministerstva.",
            "cs",
        ),
        ("Þetta er íslenskur texti með ð og þ og ý sem á að vera óbreyttur í þessu skjali.", "is"),
        ("Le ministère a annoncé une opération près de la frontière, déjà évoquée à Paris.", "fr"),
    ],
)
def test_correct_text_is_not_repaired(text: str, lang: str) -> None:
    assert repair_mojibake(text, lang=lang) == (text, None)
    assert repair_mojibake(text, lang=lang, charset="utf-8") == (text, None)


def test_replacement_characters_mean_lost_bytes() -> None:
    lost = TURKISH.encode("cp1254").decode("utf-8", errors="replace")
    with pytest.raises(PermanentError) as caught:
        check_replacement_chars(lost, charset="utf-8")
    assert caught.value.kind == "charset"
    check_replacement_chars(TURKISH + " \ufffd")  # one stray character is tolerated
    # cp1252 curly quotes in a page declared UTF-8: punctuation lost, the text is kept
    english = (
        "Turkish warplanes hit dozens of suspected PKK targets in the Qandil and Gara regions of "
        "northern Iraq overnight, Turkey\u2019s defence ministry said on Tuesday, a day after an "
        "attack killed two soldiers near the border. The ministry said 32 targets, including "
        "caves, shelters and ammunition depots, were destroyed in the \u201coperation\u201d. "
    ) * 10
    check_replacement_chars(english.encode("cp1252").decode("utf-8", errors="replace"))


def test_time_limit_interrupts_python_code_on_the_main_thread() -> None:
    started = time.monotonic()
    with pytest.raises(ParseTimeout), TimeLimit(0.05) as limit:
        assert limit.hard
        while True:
            pass
    assert time.monotonic() - started < 1.0


def test_time_limit_is_cooperative_off_the_main_thread() -> None:
    outcome: list[str] = []

    def work() -> None:
        with TimeLimit(0.01) as limit:
            assert not limit.hard
            time.sleep(0.03)
            try:
                limit.check()
            except ParseTimeout:
                outcome.append("timeout")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert outcome == ["timeout"]


def test_time_limit_does_not_fire_after_the_block() -> None:
    with TimeLimit(0.05):
        pass
    time.sleep(0.1)  # an armed timer would raise ParseTimeout here


def test_structured_data_from_graph_and_meta() -> None:
    html = """<html lang="en"><head>
    <meta property="og:site_name" content="Tigris Review">
    <meta name="author" content="Selin Arslan">
    <link rel="canonical" href="/a/story">
    <script type="application/ld+json">{not json</script>
    <script type="application/ld+json">
    {"@context":"https://schema.org","@graph":[
      {"@type":"WebPage","name":"x"},
      {"@type":["NewsArticle","Article"],"headline":"Headline","author":[{"name":"A One"},"B Two"],
       "datePublished":"2026-11-18","isAccessibleForFree":"False","articleBody":"Body text.",
       "publisher":{"@type":"Organization","name":"Tigris Review"},"image":{"url":"/i.jpg"}}]}
    </script></head><body><h1> Headline </h1><time itemprop="datePublished" datetime="2026-11-18T10:00">x</time></body></html>"""
    found = read_structured(lxml.html.document_fromstring(html))
    assert found.article_types == ["NewsArticle", "Article"]
    assert found.headline == "Headline"
    assert found.jsonld_authors == ["A One", "B Two"]
    assert found.jsonld_published == "2026-11-18"
    assert found.is_free is False
    assert found.article_body == "Body text."
    assert found.publisher == "Tigris Review"
    assert found.jsonld_image == "/i.jpg"
    assert found.meta["og:site_name"] == "Tigris Review"
    assert found.meta_authors == ["Selin Arslan"]
    assert found.canonical == "/a/story"
    assert found.html_lang == "en"
    assert found.h1 == "Headline"
    assert found.time_published == "2026-11-18T10:00"
    assert found.listing is False


def test_absurdly_nested_jsonld_is_skipped_and_deep_graphs_are_walked() -> None:
    too_deep = "[" * 5000 + "]" * 5000  # json.loads raises RecursionError
    deep_graph = '{"@graph":' * 900 + '{"@type":"NewsArticle","headline":"H"}' + "}" * 900
    html = (
        f"<html><head><script type='application/ld+json'>{too_deep}</script>"
        f"<script type='application/ld+json'>{deep_graph}</script></head><body></body></html>"
    )
    assert read_structured(lxml.html.document_fromstring(html)).headline == "H"
