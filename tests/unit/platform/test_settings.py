from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import Settings


def test_defaults_mean_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "NEWSFLOW_DATABASE_URL",
        "NEWSFLOW_KAFKA_BOOTSTRAP",
        "NEWSFLOW_ALLOW_PRIVATE_NETWORKS",
    ):
        monkeypatch.delenv(var, raising=False)
    s = Settings(_env_file=None)
    assert s.database_url is None and s.kafka_bootstrap is None
    assert s.allow_private_networks is False
    assert str(s.home) == ".newsflow"


def test_env_prefix_and_driver_normalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", "postgres://u:p@db:5432/news")
    monkeypatch.setenv("NEWSFLOW_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", "true")
    s = Settings(_env_file=None)
    assert s.database_url == "postgresql+asyncpg://u:p@db:5432/news"
    assert s.kafka_bootstrap == "k1:9092,k2:9092"
    assert s.allow_private_networks is True


@pytest.mark.parametrize(
    ("var", "value", "hint"),
    [
        ("NEWSFLOW_DATABASE_URL", "mysql://x/y", "PostgreSQL URL"),
        ("NEWSFLOW_KAFKA_BOOTSTRAP", "just-a-host", "host:port"),
        ("NEWSFLOW_LOG_LEVEL", "LOUD", "DEBUG"),
    ],
)
def test_bad_values_get_helpful_errors(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, hint: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None)
    assert hint in str(info.value)


def test_env_example_documents_every_setting() -> None:
    from pathlib import Path

    example = (Path(__file__).resolve().parents[3] / ".env.example").read_text()
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    for name in Settings.model_fields:
        var = f"NEWSFLOW_{name.upper()}"
        assert var in example, f"{var} missing from .env.example"
        assert var in readme, f"{var} missing from README settings table"


def test_generated_docs_are_current() -> None:
    from pathlib import Path

    from services.cli.docs import render_readme
    from shared.settings import render_env_example

    root = Path(__file__).resolve().parents[3]
    readme = (root / "README.md").read_text()
    assert render_readme(readme) == readme, "README settings table is stale: run 'make docs'"
    assert (root / ".env.example").read_text() == render_env_example(), "run 'make docs'"


def test_enricher_workers_default_to_the_usable_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv("NEWSFLOW_ENRICHER_WORKERS", raising=False)
    assert Settings(_env_file=None).enricher_processes == len(os.sched_getaffinity(0))
    monkeypatch.setenv("NEWSFLOW_ENRICHER_WORKERS", "3")
    assert Settings(_env_file=None).enricher_processes == 3


def test_retention_defaults_and_validation() -> None:
    s = Settings(_env_file=None)
    assert (s.retention_pages_days, s.retention_seen_links_days) == (14.0, 90.0)
    assert (s.retention_dead_letters_days, s.retention_pending_dead_letters_days) == (30.0, 90.0)
    with pytest.raises(ValidationError):
        Settings(_env_file=None, retention_pages_days=-1)
