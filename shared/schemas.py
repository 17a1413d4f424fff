"""JSON Schema files for every topic, generated from the contracts for non-Python consumers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.topology import ALL_TOPICS

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "docs" / "schemas"


def topic_schema(name: str) -> dict[str, Any]:
    spec = next(s for s in ALL_TOPICS if s.name == name)
    schema = spec.model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://newsflow.invalid/schemas/{name}.json"
    schema["description"] = f"{spec.description}. Key: {spec.key}. " + (
        schema.get("description") or ""
    )
    return schema


def render(name: str) -> str:
    return json.dumps(topic_schema(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in ALL_TOPICS:
        path = directory / f"{spec.name}.json"
        path.write_text(render(spec.name))
        paths.append(path)
    return paths


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Topics whose committed schema file differs from the models."""
    out = []
    for spec in ALL_TOPICS:
        path = directory / f"{spec.name}.json"
        if not path.exists() or path.read_text() != render(spec.name):
            out.append(spec.name)
    return out
