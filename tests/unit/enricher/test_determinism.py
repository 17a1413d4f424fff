"""Keys must not depend on the process: same article, another interpreter with another hash
seed, byte-identical entities and mentions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "enricher" / "eval_holdout.json"

SCRIPT = """
import json, sys
from datetime import UTC, datetime
from services.enricher.pipeline import Enricher
from shared.messages import Article
now = datetime(2026, 11, 20, tzinfo=UTC)
data = json.load(open(sys.argv[1], encoding="utf-8"))
enricher = Enricher()
enricher.load()
out = []
for item in data["articles"]:
    url = "https://d.example/" + item["id"]
    article = Article(url=url, final_url=url, canonical_url=url, host="d.example",
                      title=item["title"], body_text=item["body"], content_hash="0",
                      language="en", discovered_at=now, fetched_at=now, parsed_at=now)
    result = enricher.enrich(article).model_dump(mode="json")
    out.append({"entities": result["entities"], "mentions": result["mentions"]})
print(json.dumps(out, sort_keys=True))
"""


def _run(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(FIXTURE)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_same_output_under_different_hash_seeds() -> None:
    first, second = _run("1"), _run("4242")
    assert first == second
    entities = [e["key"] for article in json.loads(first) for e in article["entities"]]
    assert "ORG:islamic state" in entities and len(entities) > 50
