from __future__ import annotations

import lxml.html
import pytest

from services.parser.extract import _density, extract_body, find_captions, load_tree, prune_tree
from shared.errors import PermanentError

PARAGRAPHS = [
    "Turkish and Iraqi officials met in Baghdad on Thursday to discuss water releases from the "
    "Tigris and Euphrates and security along their shared border, the Iraqi foreign ministry said.",
    "The delegations agreed to set up technical committees that will meet monthly, the statement "
    "said, without giving details of any commitments on the volume of water released downstream.",
    "Iraq has blamed Turkish dams for falling river levels, while Ankara says drought and "
    "inefficient irrigation in Iraq are largely responsible for the shortages in the south.",
]


def test_jsonld_body_with_html_markup_is_split_into_paragraphs() -> None:
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    tree = load_tree("<html><body><p>Loading…</p></body></html>", max_nodes=100)
    extraction = extract_body(tree, url="https://x.com/a", article_body=body)
    assert extraction == type(extraction)(PARAGRAPHS, "jsonld")


def test_density_fallback_takes_the_densest_paragraph_container() -> None:
    # layout with the text in <p>s inside a table cell next to a long link list: the
    # density strategy must pick the cell with the paragraphs, not the link list
    cells = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    links = "".join(f'<li><a href="/n{i}">Headline number {i}</a></li>' for i in range(40))
    html = f"<html><body><table><tr><td><ul>{links}</ul></td><td>{cells}</td></tr></table></body></html>"
    assert _density(lxml.html.document_fromstring(html)) == PARAGRAPHS


def test_dom_limit_and_empty_documents() -> None:
    html = "<html><body>" + "<div><span>x</span></div>" * 100 + "</body></html>"
    assert load_tree(html, max_nodes=300) is not None  # 200 elements plus html and body
    with pytest.raises(PermanentError) as caught:
        load_tree(html, max_nodes=150)
    assert caught.value.kind == "dom_too_large"
    with pytest.raises(PermanentError) as caught:
        load_tree("  ", max_nodes=150)
    assert caught.value.kind == "empty"


def test_xml_declaration_is_tolerated() -> None:
    tree = load_tree(
        '<?xml version="1.0" encoding="utf-8"?><html><body><p>x</p></body></html>', max_nodes=10
    )
    assert tree.findtext(".//p") == "x"


def test_captions_by_element_and_class_token() -> None:
    html = """<html><body>
      <figure><img src="a.jpg"><figcaption>Peshmerga forces near Makhmour. <span class="credit">Photo: Rudaw</span></figcaption></figure>
      <div class="wp-caption-text">Displaced families in Duhok.</div>
      <div class="article__caption">A checkpoint in Kirkuk.</div>
      <div class="captionless">Not a caption.</div>
      <div class="caption-wrapper"><p>Also not one.</p></div>
    </body></html>"""
    found = find_captions(lxml.html.document_fromstring(html))
    assert [(c.text, c.credit) for c in found] == [
        ("Peshmerga forces near Makhmour. Photo: Rudaw", "Photo: Rudaw"),
        ("Displaced families in Duhok.", None),
        ("A checkpoint in Kirkuk.", None),
    ]


def test_prune_keeps_text_outside_pruned_elements() -> None:
    tree = lxml.html.document_fromstring(
        "<html><body><nav>Menu</nav><p>Before<script>x()</script> after</p>"
        "<form><input></form><!-- c --><footer>F</footer></body></html>"
    )
    prune_tree(tree)
    assert tree.text_content() == "Before after"


def test_nul_characters_do_not_end_the_document() -> None:
    tree = load_tree("<html><body><p>before\x00</p><p>after</p></body></html>", max_nodes=10)
    assert [p.text for p in tree.iter("p")] == ["before", "after"]
