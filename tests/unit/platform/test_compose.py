"""The compose deployment validates with Debian's docker-compose (installed by `make tools`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from shared.topology import SERVICES

ROOT = Path(__file__).resolve().parents[3]


def test_compose_file_is_valid_and_wired() -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose not installed: run 'make tools'"
    env = {**os.environ, "POSTGRES_PASSWORD": "test-only", "GRAFANA_ADMIN_PASSWORD": "test-only"}
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {
        "kafka",
        "postgres",
        "migrate",
        "topics",
        "fetcher",
        "parser",
        "enricher",
        "writer",
        "alerter",
        "storyteller",
        "prometheus",
        "grafana",
    } <= set(services)
    for name in SERVICES:  # every stage of the topology runs from the same image
        assert services[name]["command"] == ["newsflow", "worker", name]
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["topics"]["condition"] == "service_completed_successfully"
        assert deps["postgres"]["condition"] == "service_healthy"
        # Prometheus scrapes from another container: the loopback default would hide them
        assert services[name]["environment"]["NEWSFLOW_METRICS_BIND"] == "0.0.0.0"
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["kafka"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_compose_refuses_to_start_without_a_password() -> None:
    binary = shutil.which("docker-compose")
    assert binary
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
    }
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr
