"""`make help | cat` (or into a file, a pager, CI logs) prints plain text, no colour codes."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_make_help_without_a_terminal_has_no_escape_codes() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "\x1b" not in result.stdout
    assert "  help " in result.stdout and "demo" in result.stdout
