"""Broker failures in operator commands end as one actionable line, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_lag_with_no_broker_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env.update({"NEWSFLOW_HOME": str(tmp_path), "NEWSFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"})
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "lag"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert f"cannot reach the broker at 127.0.0.1:{port}" in result.stderr
    assert "NEWSFLOW_KAFKA_BOOTSTRAP" in result.stderr  # external: no stack to start
    assert "Traceback" not in result.stderr
