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


def service_env(
    *, bootstrap: str, database_url: str, prefix: str, home: Path, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env.update(
        {
            "NEWSFLOW_KAFKA_BOOTSTRAP": bootstrap,
            "NEWSFLOW_DATABASE_URL": database_url,
            "NEWSFLOW_TOPIC_PREFIX": prefix,
            "NEWSFLOW_HOME": str(home),
            "NEWSFLOW_METRICS_PORT_BASE": "0",
            "NEWSFLOW_LOG_FORMAT": "text",
            "NEWSFLOW_SESSION_TIMEOUT_S": "4",
            "NEWSFLOW_REBALANCE_TIMEOUT_S": "4",
            "NEWSFLOW_COMMIT_INTERVAL_S": "0.5",
        }
    )
    env.update(extra)
    return env


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
