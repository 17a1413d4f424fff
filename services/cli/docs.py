"""Regenerate the generated parts of the docs: README settings table, .env.example, schemas.

Usage: python -m services.cli.docs   (``make docs``); tests fail when these are stale.
"""

from __future__ import annotations

import re
from pathlib import Path

from shared.schemas import write_all
from shared.settings import describe, render_env_example

ROOT = Path(__file__).resolve().parents[2]
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def settings_table() -> str:
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for var, default, doc in describe():
        shown = f"`{default}`" if default != "" else "(unset)"
        rows.append(f"| `{var}` | {shown} | {doc.replace('|', '/')} |")
    return "\n".join(rows)


def render_readme(text: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _m: f"{START}\n{settings_table()}\n{END}", text)


def main() -> None:
    readme = ROOT / "README.md"
    readme.write_text(render_readme(readme.read_text()))
    (ROOT / ".env.example").write_text(render_env_example())
    write_all()


if __name__ == "__main__":
    main()
