"""The shipped data files are part of the rules: changing them must bump RULES_VERSION."""

from __future__ import annotations

import hashlib
from importlib import resources

from services.enricher.pipeline import RULES_VERSION

# When a data file changes: bump RULES_VERSION in services/enricher/pipeline.py and record the
# new digests under the new version here (old articles are then found by `newsflow reenrich`).
PINNED_DIGESTS = {
    "2026.11.22-1": {
        "aliases.json": "fdc2933bc5096d20a3e36a2362ad77bbfc023f5485ce4cacc4bb240a88b54a1f",
        "given_names.txt": "9b2e6670a141eade79d34f089990e3486553fcc11961843aa05371d98fa8849b",
    },
    "2026.11.30-1": {
        "aliases.json": "95fcfa7fd8be28a8409961ae7eae7ba7811168b4805a157647e600ca75d14a0e",
        "given_names.txt": "9b2e6670a141eade79d34f089990e3486553fcc11961843aa05371d98fa8849b",
    },
    "2026.11.30-2": {
        "aliases.json": "95fcfa7fd8be28a8409961ae7eae7ba7811168b4805a157647e600ca75d14a0e",
        "given_names.txt": "9b2e6670a141eade79d34f089990e3486553fcc11961843aa05371d98fa8849b",
    },
    # publisher names without their edition word ("Rudaw English" drops "Rudaw")
    "2026.11.30-3": {
        "aliases.json": "95fcfa7fd8be28a8409961ae7eae7ba7811168b4805a157647e600ca75d14a0e",
        "given_names.txt": "9b2e6670a141eade79d34f089990e3486553fcc11961843aa05371d98fa8849b",
    },
    # Turkish and Arabic names of Syrian towns and Turkish provinces the gazetteer lacked
    # (Tabka/الطبقة, Busayra/البصيرة, سعرت...): found by the storyteller's evaluation on the
    # enricher's real output
    "2026.11.30-4": {
        "aliases.json": "db1d7d7e5a2568962067db5bf7521d3509f1e521f5d200799765636dee7f4e9f",
        "given_names.txt": "9b2e6670a141eade79d34f089990e3486553fcc11961843aa05371d98fa8849b",
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
