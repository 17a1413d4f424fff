"""`newsflow entities explain` needs no database; the DB commands are tested in
tests/integration/enricher/test_admin.py."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from services.cli.entities import register


def test_explain_prints_keys_and_rules() -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app,
        ["entities", "explain", "-", "--title", "Sudani visits Ankara"],
        input="Iraqi Prime Minister Mohammed Shia al-Sudani met officials in Ankara.",
    )
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.output.strip().splitlines()]
    assert ["title:0", "Sudani", "PERSON:mohammed shia al sudani", "alias -> surname"] in lines
    assert any(row[1:3] == ["Ankara", "GPE:ankara"] for row in lines)


def test_explain_json_gives_language_and_offsets_into_the_text() -> None:
    app = typer.Typer()
    register(app)
    text = "Cumhurbaşkanı Erdoğan'ın açıklaması"
    result = CliRunner().invoke(app, ["entities", "explain", text, "--language", "tr", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["language"] == "tr"
    [mention] = data["mentions"]
    assert mention["key"] == "PERSON:recep tayyip erdogan"
    assert text[mention["start"] : mention["end"]] == mention["text"] == "Erdoğan"
