"""The shipped data files are part of the rules: changing them must bump RULES_VERSION."""

from __future__ import annotations

import hashlib
from importlib import resources

from services.enricher.pipeline import RULES_VERSION

# When a data file changes: bump RULES_VERSION in services/enricher/pipeline.py and record the
# new digests under the new version here (old articles are then found by `newsflow reenrich`).
PINNED_DIGESTS = {
    "2026.11.22-1": {
        "aliases.json": "a14ea3d1d2b67c553676d62b5859760ff7343635b5de0d793b9b80be24bfc1ad",
        "given_names.txt": "8a1c0a78b8c2f26419ccab04376783df77209ce8f4b392fe9e568f5a15760e5d",
    },
}


def test_rules_version_matches_data_files() -> None:
    data = resources.files("services.enricher").joinpath("data")
    digests = {
        name: hashlib.sha256(data.joinpath(name).read_bytes()).hexdigest()
        for name in ("aliases.json", "given_names.txt")
    }
    assert PINNED_DIGESTS.get(RULES_VERSION) == digests, (
        "enricher data changed: bump RULES_VERSION and pin the new digests in this test"
    )
