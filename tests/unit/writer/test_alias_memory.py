"""AliasMemory: what the writer may skip, and how long it trusts that."""

from __future__ import annotations

from services.writer.articles import AliasMemory


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_only_unremembered_pairs_are_unknown() -> None:
    memory = AliasMemory()
    memory.remember([(1, "Türkiye"), (1, "Turkey")])
    assert memory.unknown({(1, "Turkey"), (1, "Turkiye"), (2, "Turkey")}) == {
        (1, "Turkiye"),
        (2, "Turkey"),
    }


def test_memory_is_forgotten_after_max_age() -> None:
    clock = Clock()
    memory = AliasMemory(max_age_s=60, clock=clock)
    memory.remember([(1, "PKK")])
    clock.now += 59
    assert memory.unknown({(1, "PKK")}) == set()
    clock.now += 2  # an alias deleted meanwhile is stored again from now on
    assert memory.unknown({(1, "PKK")}) == {(1, "PKK")}
    assert len(memory) == 0


def test_memory_never_grows_past_its_size() -> None:
    memory = AliasMemory(max_size=3)
    memory.remember([(1, "a"), (1, "b"), (1, "c")])
    memory.remember([(2, "d")])
    assert len(memory) == 1
    assert memory.unknown({(1, "a"), (2, "d")}) == {(1, "a")}
