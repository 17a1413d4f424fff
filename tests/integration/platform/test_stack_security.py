"""The embedded stack on a shared machine: PostgreSQL wants its password, the secret stays in
owner-only files and out of every output, a root home directory works, metrics bind loopback."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from shared import stack
from shared.errors import StackError

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="newsflow-sec-"))
    os.chmod(path, 0o755)
    yield path
    stack.down(path)


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
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


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _whoami(dsn: str, **kwargs: object) -> str:
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        return str(await conn.fetchval("SELECT current_user"))
    finally:
        await conn.close()


def _refused(dsn: str, **kwargs: object) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(_whoami(dsn, **kwargs))


def test_postgres_requires_the_generated_secret(home: Path) -> None:
    up = _cli(home, "stack", "up", "--json")
    assert up.returncode == 0, up.stderr
    state = stack.read_state(home)
    pg = state.postgres
    assert pg is not None and pg.endpoint and pg.port
    secret_file = home / stack.SECRET_FILE
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32
    for private in (secret_file, stack.stack_file(home)):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    # with the secret: in
    assert asyncio.run(_whoami(_plain(pg.endpoint))) == "postgres"
    # without it, over TCP and over the Unix socket alike: refused (no trust anywhere)
    _refused(f"postgresql://postgres@127.0.0.1:{pg.port}/newsflow", passfile="/nonexistent")
    _refused(
        f"postgresql://postgres@127.0.0.1:{pg.port}/newsflow",
        password="wrong",
    )
    _refused(
        f"postgresql:///newsflow?host={pg.extra['datadir']}&port={pg.port}&user=postgres",
        passfile="/nonexistent",
    )
    hba = Path(pg.extra["datadir"], "pg_hba.conf").read_text()
    assert "trust" not in [
        line.split()[-1] for line in hba.splitlines() if line.strip()[:1] not in ("", "#")
    ]
    # the owner's 'db url' works; nothing else prints the secret
    assert _cli(home, "db", "url").stdout.strip() == pg.endpoint
    outputs = [up.stdout, up.stderr]
    for args in (
        ("stack", "status", "--json"),
        ("stack", "status"),
        ("stack", "up"),
        ("settings",),
    ):
        done = _cli(home, *args)
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
    logs = [p.read_text(errors="replace") for p in (home / "logs").glob("*.log")]
    assert not [text for text in outputs + logs if secret in text]
    # a restart (what the watchdog does) keeps the same secret and port: the same URL
    old_pid = pg.pid
    again = stack.restart(home, "postgres")
    assert again.endpoint == pg.endpoint and again.pid != old_pid
    assert stack.read_state(home).postgres.pid == again.pid  # type: ignore[union-attr]
    assert asyncio.run(_whoami(_plain(pg.endpoint))) == "postgres"


def test_a_cluster_from_before_passwords_is_secured_on_start(home: Path) -> None:
    bindir = stack.pg_bindir()
    datadir = home / "pg"
    datadir.mkdir()
    stack._chown_for_pg(datadir)
    subprocess.run(
        [
            *stack._as_pg_user(),
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        check=True,
        capture_output=True,
    )
    pg = stack.up(home, want_kafka=False).state.postgres
    assert pg is not None and pg.endpoint
    assert asyncio.run(_whoami(_plain(pg.endpoint))) == "postgres"
    _refused(f"postgresql://postgres@127.0.0.1:{pg.port}/newsflow", passfile="/nonexistent")


@pytest.mark.skipif(os.geteuid() != 0, reason="the root-home case needs root")
def test_root_home_directory_0700_works(home: Path) -> None:
    private = home / "root-home"
    private.mkdir(mode=0o700)
    state = stack.up(private, want_kafka=False).state
    try:
        pg = state.postgres
        assert pg is not None and pg.endpoint
        datadir = Path(pg.extra["datadir"])
        # the postgres user cannot enter the home, so the cluster lives where it can
        assert datadir.parent == stack.external_pg_dir(private)
        assert not datadir.is_relative_to(private)
        assert asyncio.run(_whoami(_plain(pg.endpoint))) == "postgres"
        assert stack.status(private)["postgres"]["datadir"] == str(datadir)
    finally:
        stack.down(private)
        import shutil

        shutil.rmtree(stack.external_pg_dir(private), ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the root-home case needs root")
def test_root_home_without_a_place_stops_before_starting_anything(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = home / "root-home"
    private.mkdir(mode=0o700)
    blocker = home / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(stack, "EXTERNAL_PG_ROOT", blocker / "sub")
    with pytest.raises(StackError, match="Set NEWSFLOW_HOME to a directory") as caught:
        stack.up(private)
    assert "\n" not in caught.value.detail
    assert stack.read_state(private).kafka is None  # the broker was not started either
