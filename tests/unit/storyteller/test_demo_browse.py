"""The demo ends with commands to browse what it stored, its stories included."""

from __future__ import annotations

from pathlib import Path

from services.cli.demo import browse_commands


def test_demo_says_how_to_browse_its_stories() -> None:
    """The demo printed a stories table but no 'stories' command: a new user had to find
    'newsflow stories list|show' in the README."""
    home = Path("/tmp/home/demo")
    commands = browse_commands(home)
    assert f"NEWSFLOW_HOME={home} newsflow stories list" in commands
    assert any(c.startswith(f"NEWSFLOW_HOME={home} newsflow stories show ") for c in commands)
    # the stack still comes up first and goes down last
    assert commands[0].endswith("stack up") and commands[-1].endswith("stack down")
