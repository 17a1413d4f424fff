"""The ``feeds`` commands end to end (typer runner, real database, loopback site)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from services.cli.feeds import register

pytestmark = pytest.mark.integration


def test_feeds_commands(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    listing = tmp_path / "feeds.txt"
    listing.write_text("# security wires\nhttps://wire.example/rss.xml\nnot a url\n")

    added = runner.invoke(
        app, ["feeds", "add", "--no-discover", "https://a.example/feed", "https://b.example/rss"]
    )
    assert added.exit_code == 0, added.output
    imported = runner.invoke(app, ["feeds", "import", str(listing), "--json"])
    assert imported.exit_code == 0, imported.output
    report = json.loads(imported.stdout)
    assert (report["added"], report["existing"], report["invalid"]) == (1, 0, ["not a url"])
    assert report["refused"] == [{"url": "not a url", "reason": "not an http(s) URL: 'not a url'"}]

    listed = runner.invoke(app, ["feeds", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    feeds = json.loads(listed.stdout)
    assert [f["url"] for f in feeds] == [
        "https://a.example/feed",
        "https://b.example/rss",
        "https://wire.example/rss.xml",
    ]
    assert feeds[0]["consecutive_failures"] == 0 and feeds[0]["last_polled_at"] is None

    removed = runner.invoke(app, ["feeds", "remove", str(feeds[0]["id"])])
    assert removed.exit_code == 0 and "https://a.example/feed" in removed.stdout
    missing = runner.invoke(app, ["feeds", "remove", "https://nope.example/"])
    assert missing.exit_code == 1
    table = runner.invoke(app, ["feeds", "list"])
    assert table.exit_code == 0 and "b.example" in table.stdout
