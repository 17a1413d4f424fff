"""The embedded PostgreSQL's secret file and a start that fails half-way (no real server)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from shared import stack
from shared.errors import StackError


def _cluster(datadir: Path, auth: str) -> None:
    datadir.mkdir(parents=True)
    (datadir / "PG_VERSION").write_text("15\n")
    (datadir / "pg_hba.conf").write_text(
        f"local all all {auth}\nhost all all 127.0.0.1/32 {auth}\n"
    )


def test_a_missing_secret_of_a_password_cluster_is_refused_and_not_replaced(
    tmp_path: Path,
) -> None:
    # a fresh random secret cannot match the cluster's password: every connection failed,
    # and the new file hid what had happened
    _cluster(tmp_path / "pg", "scram-sha-256")
    with pytest.raises(StackError, match="pg-secret is missing"):
        stack._check_secret_kept(tmp_path, tmp_path / "pg")
    assert not (tmp_path / stack.SECRET_FILE).exists()


@pytest.mark.parametrize("auth", ["trust", None])
def test_a_new_or_trust_cluster_may_get_a_new_secret(tmp_path: Path, auth: str | None) -> None:
    if auth:
        _cluster(tmp_path / "pg", auth)
    stack._check_secret_kept(tmp_path, tmp_path / "pg")  # no error


def test_a_kept_secret_passes(tmp_path: Path) -> None:
    _cluster(tmp_path / "pg", "scram-sha-256")
    (tmp_path / stack.SECRET_FILE).write_text("abc\n")
    stack._check_secret_kept(tmp_path, tmp_path / "pg")


def test_a_server_started_but_not_set_up_is_stopped_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pg_ctl start succeeded, CREATE DATABASE failed: the server used to keep running,
    # unknown to stack.json, and the next 'stack up' refused to start beside it
    datadir = tmp_path / "pg"
    _cluster(datadir, "scram-sha-256")
    (tmp_path / stack.SECRET_FILE).write_text("abc\n")
    monkeypatch.setattr(stack, "pg_bindir", lambda: tmp_path)
    monkeypatch.setattr(stack, "_as_pg_user", lambda: [])
    monkeypatch.setattr(stack, "_chown_for_pg", lambda path: None)
    monkeypatch.setattr(stack, "pg_paths", lambda home: (datadir, tmp_path / "pg.log"))

    def fake_run(cmd: list[str], **_kw: object) -> None:
        (datadir / "postmaster.pid").write_text("4242\n")

    def refuse(*_a: object) -> None:
        raise StackError("CREATE DATABASE failed")

    stopped: list[int | None] = []
    monkeypatch.setattr(stack, "_run", fake_run)
    monkeypatch.setattr(stack, "_create_database", refuse)
    monkeypatch.setattr(stack, "stop_postgres", lambda comp: stopped.append(comp.pid))
    with pytest.raises(StackError, match="CREATE DATABASE"):
        stack.start_postgres(tmp_path, port=stack.free_port())
    assert stopped == [4242]


def test_another_accounts_stack_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stack.json is 0600: another user's 'newsflow db url' / 'stack status' got a traceback
    (tmp_path / stack.STACK_FILE).write_text("{}")
    real = Path.read_text

    def denied(self: Path, *a: object, **kw: object) -> str:
        if self.name == stack.STACK_FILE:
            raise PermissionError(13, "Permission denied")
        return real(self, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(StackError, match=r"another account.*NEWSFLOW_HOME"):
        stack.read_state(tmp_path)


def test_a_failed_up_stops_what_it_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PostgreSQL failing after Tansu started left Tansu running outside any run
    monkeypatch.setattr(stack, "preflight", lambda home, want_postgres: None)
    monkeypatch.setattr(
        stack, "start_kafka", lambda home: stack.Component("kafka", pid=4242, port=1)
    )

    def fail(home: Path) -> stack.Component:
        raise StackError("pg_ctl start failed")

    stopped: list[int | None] = []
    monkeypatch.setattr(stack, "start_postgres", fail)
    monkeypatch.setattr(stack, "pid_alive", lambda pid, expect=None: pid == 4242)
    monkeypatch.setattr(stack, "_terminate", lambda pid, expect: stopped.append(pid))
    # the real stop path, under the stack lock up() holds: it once called down(), which
    # waited for that lock forever; a thread, so a regression fails instead of hanging
    errors: list[BaseException] = []

    def run_up() -> None:
        try:
            stack.up(tmp_path)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run_up, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "stack.up hung stopping what it started"
    assert len(errors) == 1 and isinstance(errors[0], StackError)
    assert "pg_ctl" in str(errors[0])
    assert stopped == [4242]
    assert stack.read_state(tmp_path).kafka is None
