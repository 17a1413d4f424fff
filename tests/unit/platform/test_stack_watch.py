"""The watchdog's decision: which embedded component needs a restart, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import stack


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> dict[str, stack.Health]:
    state = stack.StackState(
        kafka=stack.Component("kafka", pid=11, port=1001),
        postgres=stack.Component("postgres", pid=22, port=1002),
    )
    health = {
        "kafka": stack.Health("kafka", True, True),
        "postgres": stack.Health("postgres", True, True),
    }
    monkeypatch.setattr(stack, "read_state", lambda home: state)
    monkeypatch.setattr(stack, "probe", lambda comp: health[comp.name])
    monkeypatch.setattr(stack, "rss_bytes", lambda pid: 500 * 2**20 if pid == 11 else 0)
    return health


def test_healthy_stack_needs_nothing(probes: dict[str, stack.Health]) -> None:
    assert stack.StackWatch(Path("/x"), ["kafka", "postgres"]).check(now=0) is None


def test_a_dead_pid_is_a_fault_at_once(probes: dict[str, stack.Health]) -> None:
    probes["postgres"] = stack.Health("postgres", False, False)
    fault = stack.StackWatch(Path("/x"), ["kafka", "postgres"]).check(now=0)
    assert fault is not None and (fault.name, fault.reason) == ("postgres", "gone")
    assert "pid 22" in fault.detail


def test_only_watched_components_count(probes: dict[str, stack.Health]) -> None:
    probes["postgres"] = stack.Health("postgres", False, False)  # external: not ours
    assert stack.StackWatch(Path("/x"), ["kafka"]).check(now=0) is None


def test_a_silent_port_is_a_fault_only_after_the_limit(probes: dict[str, stack.Health]) -> None:
    watch = stack.StackWatch(Path("/x"), ["kafka"], silent_limit_s=15)
    probes["kafka"] = stack.Health("kafka", True, False)
    assert watch.check(now=100) is None
    assert watch.check(now=110) is None
    probes["kafka"] = stack.Health("kafka", True, True)  # answered again: the clock resets
    assert watch.check(now=112) is None
    probes["kafka"] = stack.Health("kafka", True, False)
    assert watch.check(now=113) is None
    fault = watch.check(now=128)
    assert fault is not None and fault.reason == "silent"


def test_broker_memory_over_the_limit_is_a_planned_restart(
    probes: dict[str, stack.Health],
) -> None:
    assert stack.StackWatch(Path("/x"), ["kafka"], broker_max_rss=600 * 2**20).check() is None
    watch = stack.StackWatch(Path("/x"), ["kafka"], broker_max_rss=400 * 2**20)
    fault = watch.check(now=1000)
    assert fault is not None and (fault.name, fault.reason) == ("kafka", "memory")
    assert "500 MB" in fault.detail
    # still over (a limit below its resting size): not again until the gap has passed
    assert watch.check(now=1000 + stack.PLANNED_RESTART_GAP_S - 1) is None
    assert watch.check(now=1000 + stack.PLANNED_RESTART_GAP_S + 1) is not None
    # 0 disables it
    assert stack.StackWatch(Path("/x"), ["kafka"], broker_max_rss=0).check() is None


def test_redact_url_hides_only_the_password() -> None:
    url = "postgresql+asyncpg://postgres:s3cret@127.0.0.1:5432/newsflow"
    assert stack.redact_url(url) == "postgresql+asyncpg://postgres:***@127.0.0.1:5432/newsflow"
    assert stack.redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert stack.redact_url(None) is None


def test_postgres_options_quote_a_socket_dir_with_spaces() -> None:
    # pg_ctl runs the options through /bin/sh: an unquoted space split the -k argument and
    # the server refused to start under NEWSFLOW_HOME="/tmp/with space/home"
    import shlex
    from pathlib import Path

    options = stack.postgres_options(5432, Path("/tmp/with space/home/pg"))
    words = shlex.split(options)
    assert words[words.index("-k") + 1] == "/tmp/with space/home/pg"
    assert words[words.index("-p") + 1] == "5432"


def test_a_port_that_accepts_but_never_replies_does_not_answer() -> None:
    # a SIGSTOPped (or wedged) server still completes TCP connects from its listen backlog,
    # so a 20 s hang of Tansu went unnoticed by the watchdog
    import socket
    import threading

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # never accepts, never replies
        port = silent.getsockname()[1]
        assert stack.port_open(port)
        assert not stack.port_answers("kafka", port)
        assert not stack.port_answers("postgres", port)

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]

        def reply() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(64)
                conn.sendall(b"N")

        thread = threading.Thread(target=reply, daemon=True)
        thread.start()
        assert stack.port_answers("postgres", port)
        thread.join(2)


def test_a_restart_waits_for_the_old_server_to_release_its_port() -> None:
    # a planned broker restart under load failed with "Port N is busy": the old Tansu, just
    # stopped, still held the port when the new one was started on it
    import socket
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    threading.Timer(0.3, server.close).start()
    t0 = time.monotonic()
    stack.wait_port_free(port, timeout=5)
    assert not stack.port_open(port)
    assert 0.2 < time.monotonic() - t0 < 4
