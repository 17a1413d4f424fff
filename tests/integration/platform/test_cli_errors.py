"""Every ``newsflow`` command, run against an unreachable database and broker, against a home
where the embedded stack is not running, and with an invalid setting, ends with one
``error:`` line that says what to do: never a traceback.

The commands are enumerated from the CLI itself, so a new command is covered the day it is
added. Run in-process (one import for ~35 commands); a few also run as real subprocesses to
check that nothing else reaches stderr (library log lines, unclosed-client warnings).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main

from shared.settings import get_settings

ROOT = Path(__file__).resolve().parents[3]
CLI_MODULE = "services.cli.main"

#: Not run here, and why:
SKIPPED = {
    ("demo",): "runs its own embedded stack in its own home: it never uses these settings",
    ("schemas", "write"): "rewrites docs/schemas in the checkout",
}
#: Commands whose job is to start the embedded stack: not run where it is 'not running'.
STARTS_STACK = {("run",), ("stack", "up")}
#: A value for each required parameter, by name (anything else gets "1").
REQUIRED = {
    "before": "30d",
    "since": "1d",
    "source": "articles",
    "urls": "example.com/rss",
    "url": "http://127.0.0.1:9/",
    "refs": "1",
    "file": "{feeds_file}",
    "query": "Iraq",
    "text": "Ankara",
    # `worker` probes the broker before it starts (one error line, exit 2, like the others)
    "service": "writer",
}
#: Commands that use neither the database nor the broker: only "no traceback" applies.
NO_INFRA = {("feeds", "discover"), ("schemas", "check"), ("settings",), ("db", "url")}
#: Extra options that make a command reach the database or broker it would otherwise skip.
EXTRA = {
    ("run",): ["--once", "--timeout", "5"],
    ("feeds", "poll"): ["--all"],
    ("watch", "edit"): ["--query", "Iraq"],
    ("entities", "explain"): ["--with-db"],
    ("feeds", "add"): ["--no-discover"],
}


def _main() -> typer.Typer:
    import importlib

    module = importlib.import_module(CLI_MODULE)
    if hasattr(module, "build"):
        return module.build()  # type: ignore[no-any-return]
    module._register_plugins()
    return module.app  # type: ignore[no-any-return]


def _commands() -> list[tuple[str, ...]]:
    def walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], object]]:
        children = getattr(command, "commands", None)
        if children is None:
            yield path, command
            return
        for name, sub in sorted(children.items()):
            yield from walk(sub, (*path, name))

    return [path for path, _ in walk(typer.main.get_command(_main()), ())]


def _argv(path: tuple[str, ...], feeds_file: Path) -> list[str]:
    command = typer.main.get_command(_main())
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    args: list[str] = list(path)
    for param in command.params:  # type: ignore[attr-defined]
        if not param.required:
            continue
        value = REQUIRED.get(param.name, "1").format(feeds_file=feeds_file)
        if param.param_type_name == "option":
            args += [param.opts[0], value]
        else:
            args.append(value)
    return args + EXTRA.get(path, [])


COMMANDS = [c for c in _commands() if c not in SKIPPED]


def _closed_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def feeds_file(tmp_path: Path) -> Path:
    path = tmp_path / "feeds.txt"
    path.write_text("https://example.com/rss\n")
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("NEWSFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NEWSFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NEWSFLOW_METRICS_PORT_BASE", "0")
    monkeypatch.setenv("NEWSFLOW_LOG_FORMAT", "text")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    root.handlers[:] = handlers
    root.setLevel(level)


def _invoke(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    import importlib

    main = importlib.import_module(CLI_MODULE).main
    saved = sys.argv
    sys.argv = ["newsflow", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    return code, capsys.readouterr().err


def _assert_one_error_line(
    path: tuple[str, ...],
    argv: list[str],
    code: int,
    err: str,
    *,
    expect: str,
    not_found_ok: bool = False,
) -> None:
    assert "Traceback" not in err, f"newsflow {' '.join(argv)}:\n{err}"
    if code == 0 or (code == 1 and not_found_ok):  # 1: ran, found nothing (no such feed…)
        return
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"newsflow {' '.join(argv)} (exit {code}):\n{err}"
    if path not in NO_INFRA:
        assert expect in errors[0], f"newsflow {' '.join(argv)}:\n{err}"
    assert code == 2, f"newsflow {' '.join(argv)} exit {code}:\n{err}"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_unreachable_database_and_broker(
    path: tuple[str, ...],
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
    feeds_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", f"postgresql://u@127.0.0.1:{_closed_port()}/x")
    monkeypatch.setenv("NEWSFLOW_KAFKA_BOOTSTRAP", f"127.0.0.1:{_closed_port()}")
    argv = _argv(path, feeds_file)
    code, err = _invoke(argv, capsys)
    _assert_one_error_line(path, argv, code, err, expect="cannot reach the")


@pytest.mark.parametrize("path", [c for c in COMMANDS if c not in STARTS_STACK], ids=" ".join)
def test_embedded_stack_not_running(
    path: tuple[str, ...], clean_env: None, feeds_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _argv(path, feeds_file)
    code, err = _invoke(argv, capsys)
    _assert_one_error_line(path, argv, code, err, expect="NEWSFLOW_HOME=")


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_invalid_setting(
    path: tuple[str, ...],
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
    feeds_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", "mysql://u@db/x")
    argv = _argv(path, feeds_file)
    code, err = _invoke(argv, capsys)
    _assert_one_error_line(path, argv, code, err, expect="NEWSFLOW_DATABASE_URL")


@pytest.mark.parametrize(
    "argv",
    [
        ["feeds", "list"],
        ["lag"],
        ["db", "upgrade"],
        ["run", "--once", "--timeout", "5"],
        ["worker", "writer"],
    ],
    ids=" ".join,
)
def test_nothing_else_reaches_stderr(argv: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env.update(
        {
            "NEWSFLOW_HOME": str(tmp_path),
            "NEWSFLOW_METRICS_PORT_BASE": "0",
            "NEWSFLOW_DATABASE_URL": f"postgresql://u@127.0.0.1:{_closed_port()}/x",
            "NEWSFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{_closed_port()}",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", CLI_MODULE, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    # `run` first says which stack it uses; nothing else may precede the error
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith("stack: ")
    ]
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the"), result.stderr


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_reachable_database_unreachable_broker(
    path: tuple[str, ...],
    clean_env: None,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    feeds_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSFLOW_KAFKA_BOOTSTRAP", f"127.0.0.1:{_closed_port()}")
    argv = _argv(path, feeds_file)
    code, err = _invoke(argv, capsys)
    _assert_one_error_line(path, argv, code, err, expect="", not_found_ok=True)
    if code == 2 and "broker" in err:
        assert "cannot reach the broker" in err, err


@pytest.mark.parametrize(
    "argv", [["run", "--once", "--timeout", "5"], ["worker", "writer"]], ids=" ".join
)
def test_unreachable_broker_alone_is_one_line(
    argv: list[str], database_url: str, tmp_path: Path
) -> None:
    """With the database reachable, `run` used to print aiokafka's "Unable connect" log line
    before its own error, and `worker` faust's traceback (exit 1)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env.update(
        {
            "NEWSFLOW_HOME": str(tmp_path),
            "NEWSFLOW_METRICS_PORT_BASE": "0",
            "NEWSFLOW_DATABASE_URL": database_url,
            "NEWSFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{_closed_port()}",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", CLI_MODULE, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith("stack: ")
    ]
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the broker"), result.stderr
