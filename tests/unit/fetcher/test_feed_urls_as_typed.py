"""Feed URLs as a user types or lists them: scheme-less means https, addresses the SSRF
guard will refuse for sure are refused at once (with the reason), files are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.fetcher import admin


@pytest.mark.parametrize(
    ("typed", "url"),
    [
        ("example.com/rss", "https://example.com/rss"),
        ("  example.com:8080/feed.xml ", "https://example.com:8080/feed.xml"),
        ("http://example.com/rss", "http://example.com/rss"),
    ],
)
def test_scheme_less_feed_url_means_https(typed: str, url: str) -> None:
    assert admin.feed_url(typed) == url


@pytest.mark.parametrize("typed", ["file:/etc/passwd", "javascript:alert(1)", "rss", ""])
def test_non_http_input_is_still_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        admin.feed_url(typed)


def test_check_feed_urls_names_each_refusal_and_the_setting_only_where_it_helps() -> None:
    valid, invalid = admin.check_feed_urls(
        [
            "example.com/rss",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.7/feed",
            "ftp://example.com/x",
            "https://example.com/rss",  # the same feed as the first line
        ],
        allow_private=False,
    )
    assert valid == ["https://example.com/rss"]
    assert len(invalid) == 3
    (_, metadata), (_, private), (ftp, _) = invalid
    assert "metadata" in metadata and "NEWSFLOW_ALLOW_PRIVATE_NETWORKS" not in metadata
    assert "NEWSFLOW_ALLOW_PRIVATE_NETWORKS=true" in private
    assert ftp == "ftp://example.com/x"
    valid, invalid = admin.check_feed_urls(["http://10.0.0.7/feed"], allow_private=True)
    assert valid == ["http://10.0.0.7/feed"] and invalid == []


def test_feed_file_problems_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        admin.read_feed_file(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="is a directory"):
        admin.read_feed_file(tmp_path)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("http://example.com/caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        admin.read_feed_file(latin)
    listed = tmp_path / "feeds.txt"
    listed.write_text("# comment\nexample.com/rss\n\n")
    assert admin.read_feed_file(listed) == ["example.com/rss"]
