"""Contract §2, one rule per test."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time
from typing import Any

from leergang_ops.allocation import allocate
from leergang_ops.model import (
    Allocation,
    Course,
    Meeting,
    Registration,
    Settings,
    SheetLayout,
    Status,
)

SETTINGS = Settings(leergang="Leergang", contactpersoon="Annemiek van Tol",
                    contactpersoon_email="contact@example.org", afzender_naam="Leergang",
                    afzender_email="leergang@example.org")
MEETINGS = (
    Meeting(1, "Oriëntatie", date(2021, 11, 11), time(14), time(17), "Molen de Ster"),
    Meeting(3, "Met bestuurders", date(2022, 1, 20), time(14), time(17), "Molen de Ster",
            voor_bestuurders=True),
)
LAYOUT = SheetLayout("Deelnemers", 1, {}, 13, 100)


def reg(row: int, gemeente: str = "Utrecht", *, day: int | None = None, **kw: Any) -> Registration:
    """Registration in sheet row `row`; registered on October `day` (default: the row)."""
    values: dict[str, Any] = dict(
        aangemeld_op=datetime(2021, 10, day if day is not None else row, 9),
        voornaam=f"Voornaam{row}", achternaam=f"Achternaam{row}",
        email=f"persoon{row}@example.nl", gemeente=gemeente, beleidsdomein=f"domein {row}",
    )
    values.update(kw)
    return Registration(row=row, **values)


def course(*regs: Registration, meetings: tuple[Meeting, ...] = MEETINGS,
           **settings: Any) -> Course:
    return Course(replace(SETTINGS, **settings), meetings, tuple(regs), LAYOUT)


def statuses(allocation: Allocation) -> dict[int, Status]:
    return {d.row: d.status for d in allocation.decisions}


def melding(allocation: Allocation, row: int) -> str:
    return allocation.by_row()[row].melding


def codes(allocation: Allocation) -> list[tuple[int | None, str | None, str]]:
    return [(f.row, f.column, f.code) for f in allocation.findings]


def test_first_three_of_a_municipality_are_confirmed() -> None:
    result = allocate(course(reg(2), reg(3), reg(4)))
    assert statuses(result) == {2: Status.BEVESTIGD, 3: Status.BEVESTIGD, 4: Status.BEVESTIGD}


def test_fourth_registration_is_overbooked() -> None:
    result = allocate(course(reg(2), reg(3), reg(4), reg(5)))
    assert statuses(result)[5] == Status.OVERBOEKT
    assert "Utrecht heeft al 3 deelnemers" in melding(result, 5)


def test_order_is_by_registration_time_not_row() -> None:
    result = allocate(course(reg(2, day=20), reg(3, day=1), reg(4, day=2), reg(5, day=3)))
    assert statuses(result)[2] == Status.OVERBOEKT


def test_overbooked_in_plain_order_does_not_blame_kept_places() -> None:
    # Three were ahead in line: no earlier confirmation took the fourth's place.
    result = allocate(course(reg(2), reg(3), reg(4), reg(5)))
    assert melding(result, 5) == ("Overboekt: gemeente Utrecht heeft al 3 deelnemers "
                                  "(maximum 3 per gemeente)")


def test_ties_in_registration_time_keep_row_order() -> None:
    result = allocate(course(*(reg(r, day=5) for r in (2, 3, 4, 5))))
    assert statuses(result)[5] == Status.OVERBOEKT


def test_registration_without_date_comes_after_dated_ones() -> None:
    undated = reg(2, aangemeld_op=None)
    result = allocate(course(undated, reg(3), reg(4), reg(5)))
    assert statuses(result)[2] == Status.OVERBOEKT


def test_limit_per_municipality_comes_from_settings() -> None:
    result = allocate(course(reg(2), reg(3), max_deelnemers_per_gemeente=1))
    assert statuses(result) == {2: Status.BEVESTIGD, 3: Status.OVERBOEKT}


def test_missing_required_field_is_invalid() -> None:
    result = allocate(course(reg(2, achternaam="")))
    assert statuses(result)[2] == Status.ONGELDIG
    assert codes(result) == [(2, "Achternaam", "missing-field")]


def test_each_required_field_is_checked() -> None:
    rows = [reg(2, voornaam=""), reg(3, email=""), reg(4, gemeente=""), reg(5, achternaam="")]
    assert set(statuses(allocate(course(*rows))).values()) == {Status.ONGELDIG}


def test_invalid_email_is_invalid() -> None:
    result = allocate(course(reg(2, email="jan.example.nl")))
    assert statuses(result)[2] == Status.ONGELDIG
    assert codes(result) == [(2, "E-mail", "invalid-email")]


def test_unusual_but_valid_email_is_accepted() -> None:
    result = allocate(course(reg(2, email="fenna.de-vries+leergang@gemeente.example.nl")))
    assert statuses(result)[2] == Status.BEVESTIGD


def test_duplicate_email_is_invalid_and_names_the_earlier_row() -> None:
    result = allocate(course(reg(2), reg(3, email=" PERSOON2@example.nl ")))
    assert statuses(result) == {2: Status.BEVESTIGD, 3: Status.ONGELDIG}
    assert "rij 2" in melding(result, 3)


def test_cancelled_registration_is_afgemeld() -> None:
    result = allocate(course(reg(2, afgemeld=True)))
    assert statuses(result)[2] == Status.AFGEMELD


def test_re_registration_after_cancellation_is_not_a_duplicate() -> None:
    result = allocate(course(reg(2, afgemeld=True), reg(3, email="persoon2@example.nl")))
    assert statuses(result) == {2: Status.AFGEMELD, 3: Status.BEVESTIGD}


def test_cancellation_frees_the_place_for_the_next_in_line() -> None:
    rows = [reg(2), reg(3), reg(4), reg(5)]
    assert statuses(allocate(course(*rows)))[5] == Status.OVERBOEKT
    rows[0] = reg(2, afgemeld=True)
    assert statuses(allocate(course(*rows)))[5] == Status.BEVESTIGD


def test_invalid_registrations_take_no_place() -> None:
    result = allocate(course(reg(2, email="fout"), reg(3), reg(4), reg(5)))
    assert statuses(result)[5] == Status.BEVESTIGD


def test_twenty_first_municipality_goes_on_the_waiting_list() -> None:
    rows = [reg(n + 2, f"Gemeente{n}") for n in range(21)]
    result = allocate(course(*rows))
    assert statuses(result)[22] == Status.WACHTLIJST
    assert list(statuses(result).values()).count(Status.BEVESTIGD) == 20
    assert "nummer 1 op de wachtlijst" in melding(result, 22)
    assert result.waiting == ("Gemeente20",)


def test_municipalities_are_counted_by_their_earliest_active_registration() -> None:
    # Amersfoort's first row is cancelled, so its place in line is that of its second row.
    rows = [reg(2, "Amersfoort", afgemeld=True), reg(3, "Utrecht"), reg(4, "Amersfoort")]
    result = allocate(course(*rows, max_gemeenten=1))
    assert statuses(result) == {2: Status.AFGEMELD, 3: Status.BEVESTIGD, 4: Status.WACHTLIJST}


def test_municipalities_queue_by_aangemeld_op_not_by_row_in_an_unsorted_sheet() -> None:
    # Rows as organisers paste them: row order is not date order.
    rows = [reg(2, "Zeist", day=20), reg(3, "Utrecht", day=1), reg(4, "Houten", day=12),
            reg(5, "Amersfoort", day=5)]
    result = allocate(course(*rows, max_gemeenten=2))
    assert result.admitted == ("Utrecht", "Amersfoort")
    assert result.waiting == ("Houten", "Zeist")
    assert statuses(result) == {2: Status.WACHTLIJST, 3: Status.BEVESTIGD,
                                4: Status.WACHTLIJST, 5: Status.BEVESTIGD}
    assert "Houten is nummer 1 op de wachtlijst" in melding(result, 4)
    assert "Zeist is nummer 2 op de wachtlijst" in melding(result, 2)


def test_all_registrations_of_a_waiting_municipality_wait() -> None:
    rows = [reg(2, "Utrecht"), reg(3, "Zeist"), reg(4, "Zeist")]
    result = allocate(course(*rows, max_gemeenten=1))
    assert statuses(result)[3] == statuses(result)[4] == Status.WACHTLIJST


def test_municipality_names_compare_after_normalising_case_spaces_and_apostrophes() -> None:
    rows = [reg(2, "'s-Hertogenbosch"), reg(3, " ’S-HERTOGENBOSCH "),
            reg(4, "’s - Hertogenbosch"), reg(5, "'s-hertogenbosch")]
    assert statuses(allocate(course(*rows)))[5] == Status.OVERBOEKT


def test_known_spelling_variants_are_one_municipality_and_not_flagged() -> None:
    rows = [reg(2, "Den Haag"), reg(3, "'s-Gravenhage"), reg(4, "den haag"), reg(5, "Den Haag")]
    result = allocate(course(*rows))
    assert statuses(result)[5] == Status.OVERBOEKT
    assert "unknown-municipality" not in [c for *_, c in codes(result)]


def test_bestuurders_do_not_count_by_default() -> None:
    rows = [reg(2), reg(3), reg(4), reg(5, rol="bestuurder")]
    assert statuses(allocate(course(*rows)))[5] == Status.BEVESTIGD


def test_bestuurders_count_when_the_setting_says_ja() -> None:
    rows = [reg(2, rol="bestuurder"), reg(3), reg(4), reg(5)]
    result = allocate(course(*rows, bestuurders_tellen_mee=True))
    assert statuses(result)[5] == Status.OVERBOEKT


def test_confirmed_place_is_kept_when_an_earlier_registration_is_added() -> None:
    confirmed = frozenset({"persoon3@example.nl", "persoon4@example.nl", "persoon5@example.nl"})
    rows = [reg(2, day=1), reg(3, day=5), reg(4, day=6), reg(5, day=7)]
    result = allocate(course(*rows), confirmed)
    assert statuses(result) == {2: Status.OVERBOEKT, 3: Status.BEVESTIGD,
                                4: Status.BEVESTIGD, 5: Status.BEVESTIGD}
    assert "eerder bevestigde deelnemers houden hun plaats" in melding(result, 2)


def test_confirmed_place_is_kept_when_the_limit_is_lowered() -> None:
    confirmed = frozenset({"persoon2@example.nl", "persoon3@example.nl"})
    result = allocate(course(reg(2), reg(3), max_deelnemers_per_gemeente=1), confirmed)
    assert statuses(result) == {2: Status.BEVESTIGD, 3: Status.BEVESTIGD}


def test_confirmed_municipality_keeps_its_place_when_an_earlier_one_is_added() -> None:
    confirmed = frozenset({"persoon3@example.nl"})
    rows = [reg(2, "Zeist", day=1), reg(3, "Utrecht", day=2)]
    result = allocate(course(*rows, max_gemeenten=1), confirmed)
    assert statuses(result) == {2: Status.WACHTLIJST, 3: Status.BEVESTIGD}
    assert "eerder bevestigde gemeenten houden hun plaats" in melding(result, 2)


def test_cancelled_confirmation_gives_up_its_kept_place() -> None:
    confirmed = frozenset({"persoon2@example.nl"})
    rows = [reg(2, afgemeld=True), reg(3), reg(4), reg(5)]
    assert statuses(allocate(course(*rows), confirmed))[5] == Status.BEVESTIGD


def test_same_policy_domain_in_one_municipality_is_a_warning() -> None:
    rows = [reg(2, beleidsdomein="Veiligheid"), reg(3, beleidsdomein="veiligheid ")]
    result = allocate(course(*rows))
    assert statuses(result) == {2: Status.BEVESTIGD, 3: Status.BEVESTIGD}
    assert codes(result) == [(3, "Beleidsdomein", "same-domain")]
    assert "rij 2" in melding(result, 3)


def test_same_policy_domain_in_different_municipalities_is_fine() -> None:
    result = allocate(course(reg(2, "Zeist", beleidsdomein="Zorg"), reg(3, beleidsdomein="Zorg")))
    assert codes(result) == []


def test_unknown_municipality_is_a_warning_with_a_suggestion() -> None:
    result = allocate(course(reg(2, "Utreht")))
    assert statuses(result)[2] == Status.BEVESTIGD
    assert codes(result) == [(2, "Gemeente", "unknown-municipality")]
    assert "bedoelt u Utrecht?" in melding(result, 2)


def test_bestuurder_without_a_meeting_for_bestuurders_is_a_warning() -> None:
    only_participants = MEETINGS[:1]
    result = allocate(course(reg(2, rol="bestuurder"), meetings=only_participants))
    assert codes(result) == [(2, "Rol", "no-meeting-for-bestuurders")]


def test_bestuurder_with_a_meeting_for_bestuurders_is_fine() -> None:
    assert codes(allocate(course(reg(2, rol="bestuurder")))) == []


def test_allocation_is_deterministic() -> None:
    rows = [reg(n + 2, f"Gemeente{n % 23}", day=1 + n % 9) for n in range(80)]
    assert allocate(course(*rows)) == allocate(course(*rows))


def test_decisions_follow_sheet_row_order() -> None:
    result = allocate(course(reg(5, day=1), reg(2, day=9), reg(9, day=3)))
    assert [d.row for d in result.decisions] == [5, 2, 9]
