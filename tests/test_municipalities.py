"""The official list of municipalities and name matching."""

from __future__ import annotations

from leergang_ops import municipalities


def test_the_list_holds_the_342_current_municipalities() -> None:
    names = [m.name for m in municipalities.official()]
    assert len(names) == len(set(names)) == 342
    assert "Utrecht" in names and "'s-Gravenhage" in names


def test_misspelling_gets_the_closest_official_name() -> None:
    assert municipalities.lookup("Utreht") is None
    assert municipalities.suggest("Utreht") == "Utrecht"


def test_den_bosch_and_den_haag_are_known_variants() -> None:
    assert municipalities.lookup("Den Bosch").name == "'s-Hertogenbosch"  # type: ignore[union-attr]
    assert municipalities.lookup("den haag").name == "'s-Gravenhage"  # type: ignore[union-attr]


def test_curly_apostrophes_and_gemeente_prefix_are_matched() -> None:
    assert municipalities.identity("’s-Hertogenbosch") == municipalities.identity("Den Bosch")
    assert municipalities.lookup("Gemeente Utrecht") is not None


def test_province_suffix_may_be_left_out() -> None:
    assert municipalities.lookup("Hengelo").name == "Hengelo (O.)"  # type: ignore[union-attr]


def test_ambiguous_base_name_is_not_merged_with_either_municipality() -> None:
    assert municipalities.lookup("Bergen") is not None
    assert municipalities.identity("Bergen") != municipalities.identity("Bergen (L.)")


def test_nonsense_has_no_suggestion() -> None:
    assert municipalities.suggest("Qwxyzzz") is None
