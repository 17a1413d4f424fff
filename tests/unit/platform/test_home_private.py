"""NEWSFLOW_HOME is its owner's alone: files 0600, directories 0700, also those an older
version left readable; as root, the postgres user can still pass through to its cluster."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import home as private


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(autouse=True)
def keep_umask() -> Iterator[None]:
    before = os.umask(0o022)  # what an older version ran with
    yield
    os.umask(before)


def old_home(root: Path) -> Path:
    """A home as an older version left it: readable logs and directories."""
    home = root / "home"
    for d in ("logs", "faust/enricher/v1", "demo/logs", "pg"):
        (home / d).mkdir(parents=True, exist_ok=True)
    for f in ("logs/tansu.log", "logs/postgres.log", "run.lock", "demo/logs/tansu.log"):
        (home / f).write_text("GET https://news.example/feed.xml failed\n")
    (home / "faust/enricher/v1/state").write_text("x")
    (home / "pg/PG_VERSION").write_text("15\n")  # a cluster: PostgreSQL keeps its own modes
    (home / "pg/postgresql.conf").write_text("")
    os.symlink("/etc/hostname", home / "link")
    for path in home.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.chmod(home, 0o755)
    os.chmod(home / "pg", 0o750)
    os.chmod(home / "pg/postgresql.conf", 0o640)
    return home


def test_an_old_home_is_made_private_and_new_files_are_created_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    home = old_home(tmp_path)
    private.make_private(home)
    (home / "logs/still-umask-022.log").write_text("x")  # the process umask is not changed
    assert mode(home / "logs/still-umask-022.log") == 0o644
    os.remove(home / "logs/still-umask-022.log")
    private.private_process(home)  # an entry point: its umask too
    for path in [home, *home.rglob("*")]:
        if path.is_symlink() or "pg" in path.relative_to(tmp_path).parts:
            continue
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path
    assert mode(home / "pg") == 0o750 and mode(home / "pg/postgresql.conf") == 0o640
    assert mode(Path("/etc/hostname")) & 0o044  # a symlink's target is not touched
    # the entry point and its children now create private files and directories
    (home / "logs/new.log").write_text("x")
    (home / "newdir").mkdir()
    assert mode(home / "logs/new.log") == 0o600 and mode(home / "newdir") == 0o700
    private.make_private(home)  # idempotent
    assert mode(home / "logs/tansu.log") == 0o600


def test_as_root_the_postgres_user_can_still_traverse_to_its_cluster_and_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    home = old_home(tmp_path)
    private.make_private(home)
    # execute for others (pass through, no listing) on the homes and their logs only
    for d in (home, home / "logs", home / "demo", home / "demo/logs"):
        assert mode(d) == 0o711, d
    assert mode(home / "faust") == 0o700 and mode(home / "faust/enricher/v1") == 0o700
    for f in ("logs/tansu.log", "logs/postgres.log", "run.lock", "demo/logs/tansu.log"):
        assert mode(home / f) == 0o600, f


def test_a_missing_home_is_created_private_below_parents_made_as_usual(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    home = tmp_path / "checkout" / ".newsflow"
    private.make_private(home)
    assert mode(home) == 0o700
    assert mode(home.parent) == 0o755  # the caller's umask (022 here), as before


def test_as_root_a_home_its_owner_made_0700_is_not_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # e.g. under /root: no traverse bit is added (the cluster then lives outside the home)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    home = tmp_path / "root-home"
    home.mkdir(mode=0o700)
    (home / "logs").mkdir(mode=0o755)
    private.make_private(home)
    assert mode(home) == 0o700 and mode(home / "logs") == 0o700


async def test_newsflow_run_works_under_umask_077_and_gives_the_old_one_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every child of `newsflow run` inherits 077; an in-process caller (the demo, tests) gets
    # its own umask back afterwards
    from services.cli import supervisor as sup
    from shared.settings import Settings

    s = sup.Supervisor(Settings(home=tmp_path / "home"))
    seen: list[int] = []

    async def body() -> int:
        seen.append(os.umask(0o077))
        return 0

    monkeypatch.setattr(s, "_run_private", body)
    assert await s.run() == 0
    assert seen == [private.PRIVATE_UMASK]
    assert os.umask(0o022) == 0o022  # restored
    assert mode(tmp_path / "home") in (0o700, 0o711)


@pytest.mark.parametrize("loose", [0o755, 0o777, 0o770])
def test_a_cluster_directory_postgresql_would_refuse_is_made_0700(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loose: int
) -> None:
    # a `chmod -R go+rX` home: PostgreSQL refused its 0755 data directory ("invalid
    # permissions") and `stack up` hung (then failed); the files inside stay the server's business
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    home = old_home(tmp_path)
    os.chmod(home / "pg", loose)
    private.make_private(home)
    assert mode(home / "pg") == 0o700
    assert mode(home / "pg/postgresql.conf") == 0o640
