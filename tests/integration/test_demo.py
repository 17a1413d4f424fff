"""`newsflow demo` is isolated and repeatable: its own home and database (the user's feeds
and stack untouched, even with an external database configured), the same result every
time, and it ends with what it stored and the commands to browse it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from tests.support.processes import ROOT, cli_env, newsflow


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_twice_same_result_in_its_own_home() -> None:
    # Not pytest's tmp_path: it is mode 0700 and the postgres user must read the data dir.
    base = Path(tempfile.mkdtemp(prefix="newsflow-demo-"))
    os.chmod(base, 0o755)
    try:
        _demo_twice(base / "home")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _demo_twice(home: Path) -> None:
    env = cli_env(
        home,
        # the user's own (here: unreachable) database and broker must not be used
        NEWSFLOW_DATABASE_URL=f"postgresql://u@127.0.0.1:{_closed_port()}/mine",
        NEWSFLOW_KAFKA_BOOTSTRAP=f"127.0.0.1:{_closed_port()}",
    )
    runs: list[dict[str, Any]] = []
    for _ in range(2):
        result = newsflow("demo", "--json", env=env)
        assert result.returncode == 0, result.stderr[-6000:]
        assert "Traceback" not in result.stderr, result.stderr[-6000:]
        runs.append(json.loads(result.stdout))
    first, second = runs
    # every article of the bundled site, each stored once on every run
    bundled = json.loads((ROOT / "services/cli/demo_site/articles.json").read_text("utf-8"))
    for run in runs:
        assert run["summary"]["feeds"] == 1
        assert run["summary"]["articles_stored"] == len(bundled)
        assert run["summary"]["duplicates"] == 0 and run["summary"]["dead_letters"] == 0
        assert run["home"] == str(home / "demo")
    assert [a["title"] for a in first["articles"]] == [a["title"] for a in second["articles"]]
    assert all(a["top_entities"] for a in first["articles"])
    assert any("newsflow articles list" in c for c in first["browse"])

    # the user's home holds no stack of the demo's, and the demo's is stopped
    assert not (home / "stack.json").exists()
    demo_env = {**env, "NEWSFLOW_HOME": str(home / "demo")}
    del demo_env["NEWSFLOW_DATABASE_URL"], demo_env["NEWSFLOW_KAFKA_BOOTSTRAP"]
    status = json.loads(newsflow("stack", "status", "--json", env=demo_env).stdout)
    assert not status["postgres"]["running"] and not status["kafka"]["running"]

    # the browse commands it printed work: the demo's database, as it left it
    try:
        up = newsflow("stack", "up", env=demo_env, timeout=120)
        assert up.returncode == 0, up.stderr
        listed = newsflow("articles", "list", "--json", env=demo_env, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert len(json.loads(listed.stdout)) == len(bundled)
    finally:
        newsflow("stack", "down", env=demo_env, timeout=120)
