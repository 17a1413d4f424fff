"""Run real service workers (``newsflow worker X``) as child processes for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


#: what every test process gets: no fixed metrics ports, readable logs, quick group joins
#: (Tansu's join takes about half the rebalance timeout)
TEST_SETTINGS = {
    "NEWSFLOW_METRICS_PORT_BASE": "0",
    "NEWSFLOW_LOG_FORMAT": "text",
    "NEWSFLOW_SESSION_TIMEOUT_S": "4",
    "NEWSFLOW_REBALANCE_TIMEOUT_S": "4",
}


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without the caller's ``NEWSFLOW_*`` settings (a developer's
    own home, database or broker must never leak into a test), plus :data:`TEST_SETTINGS`,
    ``NEWSFLOW_HOME=home`` and *extra* (``NEWSFLOW_...`` names)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env.update(TEST_SETTINGS)
    env["NEWSFLOW_HOME"] = str(home)
    env.update(extra)
    return env


def pipeline_env(
    *, bootstrap: str, database_url: str, prefix: str, home: Path, **extra: str
) -> dict[str, str]:
    """:func:`cli_env` pointed at the test broker and database under a topic prefix."""
    return cli_env(
        home,
        NEWSFLOW_KAFKA_BOOTSTRAP=bootstrap,
        NEWSFLOW_DATABASE_URL=database_url,
        NEWSFLOW_TOPIC_PREFIX=prefix,
        **extra,
    )


def service_env(
    *, bootstrap: str, database_url: str, prefix: str, home: Path, **extra: str
) -> dict[str, str]:
    """:func:`pipeline_env` for ``newsflow worker`` processes (offsets committed often)."""
    extra.setdefault("NEWSFLOW_COMMIT_INTERVAL_S", "0.5")
    return pipeline_env(
        bootstrap=bootstrap, database_url=database_url, prefix=prefix, home=home, **extra
    )


def newsflow(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m services.cli ARGS`` from the repository root; text output captured."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@contextmanager
def workers(
    services: list[str], env: dict[str, str], log_dir: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for index, service in enumerate(services):
            log = open(log_dir / f"{service}-{index}.log", "wb")  # noqa: SIM115 - closed below
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "services.cli", "worker", service],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            )
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def logs(log_dir: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
        for p in sorted(log_dir.glob("*.log"))
    )
