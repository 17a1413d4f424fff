"""`newsflow stack`: real Tansu and PostgreSQL processes in a scratch home."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import stack
from shared.errors import StackError
from shared.topology import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="newsflow-stack-"))
    os.chmod(path, 0o755)
    yield path
    stack.down(path)


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env["NEWSFLOW_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_up_twice_status_and_down_by_pid(home: Path) -> None:
    first = cli(home, "stack", "up", "--json")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert sorted(data["started"]) == ["kafka", "postgres"]
    # up leaves a usable stack: migrated, topics created (issue 18: dlq replay failed after up)
    assert data["migrations"] == "head" and set(data["topics"].values()) == {"created"}
    kafka_pid = data["status"]["kafka"]["pid"]
    pg_pid = data["status"]["postgres"]["pid"]
    # the home's logs and files are its owner's alone (the fixture made the home 0755, as
    # older versions left it); as root the postgres user may only pass through to its cluster
    traverse = 0o711 if os.geteuid() == 0 else 0o700
    assert stat.S_IMODE(home.stat().st_mode) == traverse
    for log in ("tansu.log", "postgres.log"):
        assert stat.S_IMODE((home / "logs" / log).stat().st_mode) == 0o600
    for path in home.rglob("*"):
        if "pg" not in path.relative_to(home).parts and not path.is_symlink():
            assert stat.S_IMODE(path.stat().st_mode) & 0o066 == 0, path

    second = cli(home, "stack", "up", "--json")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["started"] == [] and sorted(again["reused"]) == ["kafka", "postgres"]
    assert again["status"]["kafka"]["pid"] == kafka_pid  # nothing restarted

    url = cli(home, "db", "url").stdout.strip()
    secret = (home / stack.SECRET_FILE).read_text().strip()
    # the owner gets a working URL; status shows it with the password masked
    assert url == data["status"]["postgres"]["endpoint"].replace("***", secret)
    assert secret not in first.stdout + first.stderr + second.stdout + second.stderr
    assert cli(home, "db", "upgrade").returncode == 0
    for command in (("dlq", "replay"), ("articles", "list")):  # both failed after a bare up
        ran = cli(home, *command)
        assert ran.returncode == 0, ran.stderr
    assert set(json.loads(cli(home, "topics", "create", "--json").stdout).values()) == {"exists"}
    listed = {
        t["topic"]: t["partitions"]
        for t in json.loads(cli(home, "topics", "list", "--json").stdout)
    }
    assert listed["news.links.v1"] == 8 and sorted(listed) == sorted(t.name for t in ALL_TOPICS)

    down = cli(home, "stack", "down", "--json")
    assert sorted(json.loads(down.stdout)["stopped"]) == ["kafka", "postgres"]
    assert not stack.pid_alive(kafka_pid) and not stack.pid_alive(pg_pid)
    status = json.loads(cli(home, "stack", "status", "--json").stdout)
    assert status["kafka"] == {"running": False} and status["postgres"] == {"running": False}


def test_stale_pid_file_is_reported_and_replaced(home: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stack.write_state(
        home,
        stack.StackState(
            kafka=stack.Component("kafka", pid=dead.pid, port=1, endpoint="127.0.0.1:1")
        ),
    )
    status = stack.status(home)
    assert status["kafka"]["stale"] is True and status["kafka"]["running"] is False
    result = stack.up(home, want_postgres=False)
    assert result.started == ["kafka"]
    assert stack.pid_alive(result.state.kafka.pid, expect="tansu")  # type: ignore[union-attr]


def test_down_never_kills_a_foreign_process_with_a_recorded_pid(home: Path) -> None:
    foreign = subprocess.Popen(["sleep", "30"])
    try:
        stack.write_state(home, stack.StackState(kafka=stack.Component("kafka", pid=foreign.pid)))
        assert stack.down(home) == []
        assert foreign.poll() is None  # pid reuse: not a tansu process, so left alone
    finally:
        foreign.kill()
        foreign.wait()


def test_busy_port_gets_a_clear_message(home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StackError, match=f"Port {port} is busy"):
            stack.start_kafka(home, port=port)


def test_missing_postgres_binaries_get_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack, "PG_BIN_GLOB", "/nonexistent/*/bin")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(StackError, match="NEWSFLOW_DATABASE_URL"):
        stack.pg_bindir()


def test_external_settings_skip_the_embedded_parts(home: Path) -> None:
    env_home = str(home)
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "stack", "up", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")},
            "NEWSFLOW_HOME": env_home,
            "NEWSFLOW_KAFKA_BOOTSTRAP": "kafka.invalid:9092",
            "NEWSFLOW_DATABASE_URL": "postgresql://u@db.invalid/x",
        },
    )
    # nothing embedded is started; up then migrates the external database, which is
    # unreachable here: one line that names it, not a traceback
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: cannot reach the database (db.invalid/x)")
    assert "Traceback" not in result.stderr
    assert stack.read_state(home) == stack.StackState()


def test_probe_notices_a_killed_broker_and_restart_reuses_its_port(home: Path) -> None:
    kafka = stack.up(home, want_postgres=False).state.kafka
    assert kafka is not None and kafka.pid and kafka.port
    assert stack.probe(kafka).ok and stack.rss_bytes(kafka.pid) > 0
    os.kill(kafka.pid, 9)
    dead = stack.probe(kafka)
    for _ in range(50):  # the zombie is reaped by init; the probe must not wait for that
        if not dead.alive:
            break
        dead = stack.probe(kafka)
    assert not dead.alive and not dead.ok
    again = stack.restart(home, "kafka")
    assert again.port == kafka.port and again.pid != kafka.pid
    assert stack.probe(again).ok
    assert stack.read_state(home).kafka == again
    # a planned restart (memory limit) stops the live broker first
    planned = stack.restart(home, "kafka")
    assert planned.port == kafka.port and planned.pid != again.pid
    assert not stack.pid_alive(again.pid, expect="tansu") and stack.probe(planned).ok


def test_postgres_starts_in_a_home_whose_path_has_spaces() -> None:
    """pg_ctl passes -o through /bin/sh: the unquoted socket directory split at the space
    ('postgres: invalid argument: "two/pg"') and every later 'stack up' failed."""
    parent = Path(tempfile.mkdtemp(prefix="newsflow-stack-"))
    os.chmod(parent, 0o755)
    home = parent / "my news home"
    home.mkdir()
    os.chmod(home, 0o755)
    component = stack.start_postgres(home)
    try:
        assert stack.pid_alive(component.pid, expect="postgres")
        assert stack.port_open(component.port)
    finally:
        stack.stop_postgres(component)


def test_two_stack_up_at_once_start_one_stack(home: Path) -> None:
    """Two `stack up` at once on a fresh home used to start two brokers (one orphaned), race
    two initdb into one data directory, then race the migrations (UniqueViolation): the second
    now waits for the first and reuses what it started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env["NEWSFLOW_HOME"] = str(home)
    argv = [sys.executable, "-m", "services.cli", "stack", "up", "--json"]
    procs = [
        subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for code, _out, err in results:
        assert code == 0, err
    started = sorted(tuple(sorted(json.loads(out)["started"])) for _code, out, _err in results)
    assert started == [(), ("kafka", "postgres")]
