"""Rendering mails: structure and headers, Dutch content, injection, template overrides."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, cast

import icalendar
import pytest

from leergang_ops.errors import InputError
from leergang_ops.mail.ics import ZONE
from leergang_ops.mail.render import (
    Attachment,
    Templates,
    generated_bytes,
    message_id,
    render,
    rendering,
    sample_course,
    to_bytes,
)
from leergang_ops.model import Course, Level, MailIntent, MailKind, Registration

NOW = datetime(2021, 11, 4, 9, 0, tzinfo=ZONE)
COURSE = sample_course()
SANNE, JORIS = COURSE.registrations  # a participant and a bestuurder
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REQUIRED = ("From", "To", "Subject", "Date", "Message-ID", "Reply-To", "MIME-Version",
            "X-Leergang-Mail", "Auto-Submitted")


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates()


def intent(kind: MailKind, reg: Registration | None = SANNE, **kw: Any) -> MailIntent:
    """An intent as the planner makes it."""
    if reg is None:
        address, name = COURSE.settings.contactpersoon_email, COURSE.settings.contactpersoon
    else:
        address, name = kw.pop("address", reg.email), kw.pop("name", reg.naam)
    return MailIntent(kind, address, name, kw.pop("scope", "-"),
                      row=reg.row if reg else None, **kw)


ALL_KINDS = [
    intent(MailKind.BEVESTIGING),
    intent(MailKind.WACHTLIJST, extra={"status": "wachtlijst", "positie": "2"}),
    intent(MailKind.HERINNERING, scope="m1-7d", meetings=(1,), reminder_days=7),
    intent(MailKind.WIJZIGING, scope="m2@1", meetings=(2,), sequence=1),
    intent(MailKind.OVERZICHT, None, scope="2021-W44"),
]


def parsed(message: Message) -> EmailMessage:
    """The message as a mail client reads it."""
    return cast(EmailMessage, message_from_bytes(to_bytes(message), policy=policy.default))


def mail(templates: Templates, it: MailIntent, course: Course = COURSE,
         **kw: Any) -> EmailMessage:
    return parsed(render(it, course, templates, now=NOW, **kw))


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return cast(str, cast(EmailMessage, part).get_content()).replace("\r\n", "\n")


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return cast(str, cast(EmailMessage, part).get_content()).replace("\r\n", "\n")


def ics_of(message: EmailMessage) -> icalendar.Calendar:
    [part] = [p for p in message.iter_attachments() if p.get_filename() == "uitnodiging.ics"]
    return icalendar.Calendar.from_ical(part.get_content())


def with_registration(**changes: Any) -> tuple[Course, Registration]:
    reg = dataclasses.replace(SANNE, **changes)
    return dataclasses.replace(COURSE, registrations=(reg, JORIS)), reg


# --- structure and headers -----------------------------------------------------------


@pytest.mark.parametrize("it", ALL_KINDS, ids=lambda i: str(i.kind))
def test_every_kind_has_text_then_html_and_the_required_headers(
    templates: Templates, it: MailIntent
) -> None:
    message = mail(templates, it)
    alternative = next(p for p in message.walk() if p.get_content_type() ==
                       "multipart/alternative")
    kinds = [p.get_content_type() for p in cast(EmailMessage, alternative).iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    assert all(message[h] for h in REQUIRED)
    assert message["X-Leergang-Mail"] == str(it.kind)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["From"] == "Leergang wijkaanpak <leergang@example.org>"
    assert message["Reply-To"] == "Annemiek van Tol <contact@example.org>"
    assert message["To"].addresses[0].addr_spec == it.address
    assert cast(EmailMessage, message.get_body(("plain",))).get_content_charset() == "utf-8"
    assert not message.defects


def test_only_mails_with_attachments_are_multipart_mixed(templates: Templates) -> None:
    assert mail(templates, ALL_KINDS[1]).get_content_type() == "multipart/alternative"
    assert mail(templates, ALL_KINDS[0]).get_content_type() == "multipart/mixed"


@pytest.mark.parametrize("it", [ALL_KINDS[0], ALL_KINDS[3]], ids=["bevestiging", "wijziging"])
def test_confirmation_and_change_carry_a_publish_calendar(
    templates: Templates, it: MailIntent
) -> None:
    message = mail(templates, it)
    [part] = list(message.iter_attachments())
    assert part.get_filename() == "uitnodiging.ics"
    assert part.get_content_type() == "text/calendar"
    assert part.get_param("method") == "PUBLISH"
    assert part.get_content_charset() == "utf-8"
    assert ics_of(message)["method"] == "PUBLISH"


@pytest.mark.parametrize("it", [ALL_KINDS[1], ALL_KINDS[2]], ids=["wachtlijst", "herinnering"])
def test_other_kinds_carry_no_calendar(templates: Templates, it: MailIntent) -> None:
    assert list(mail(templates, it).iter_attachments()) == []


def test_message_id_is_derived_from_the_key_on_the_senders_domain(
    templates: Templates,
) -> None:
    first = render(ALL_KINDS[0], COURSE, templates, now=NOW)
    resent = render(ALL_KINDS[0], COURSE, templates, now=datetime(2021, 11, 5, tzinfo=UTC))
    assert first["Message-ID"] == resent["Message-ID"] == message_id(ALL_KINDS[0],
                                                                      COURSE.settings)
    assert first["Message-ID"].endswith("@example.org>")
    other = render(ALL_KINDS[2], COURSE, templates, now=NOW)
    assert other["Message-ID"] != first["Message-ID"]


def test_message_id_depends_on_the_scope_so_gmail_keeps_each_mail() -> None:
    # Gmail drops a second message with a Message-ID it has seen as a duplicate.
    week, day = (intent(MailKind.HERINNERING, scope=f"m1-{d}d", meetings=(1,), reminder_days=d)
                 for d in (7, 1))
    first, second = (intent(MailKind.WIJZIGING, scope=f"m2@{s}", meetings=(2,), sequence=s)
                     for s in (1, 2))
    assert message_id(week, COURSE.settings) != message_id(day, COURSE.settings)
    assert message_id(first, COURSE.settings) != message_id(second, COURSE.settings)


def test_date_header_comes_from_now(templates: Templates) -> None:
    assert mail(templates, ALL_KINDS[0])["Date"].datetime == NOW


def test_lines_end_in_crlf_for_smtp(templates: Templates) -> None:
    data = to_bytes(render(ALL_KINDS[0], COURSE, templates, now=NOW))
    assert data.count(b"\n") == data.count(b"\r\n")


@pytest.mark.parametrize("it", ALL_KINDS, ids=lambda it: str(it.kind))
def test_to_bytes_gives_what_the_standard_generator_gives(templates: Templates,
                                                           it: MailIntent) -> None:
    attachments = [Attachment("overzicht week 44 – ‘concept’.xlsx", b"PK\x03\x04" * 300,
                              XLSX)] if it.kind == MailKind.OVERZICHT else []
    message = render(it, COURSE, templates, now=NOW, attachments=attachments)
    assert to_bytes(message) == generated_bytes(message)


def test_to_bytes_matches_the_generator_for_long_lines_and_odd_line_ends(
    templates: Templates,
) -> None:
    settings = dataclasses.replace(COURSE.settings, leergang="Wijk " * 400)  # base64 parts
    course = dataclasses.replace(COURSE, settings=settings)
    message = render(ALL_KINDS[0], course, templates, now=NOW)
    message.get_payload(0).get_payload(0).set_payload("een\rtwee\r\ndrie\n")
    assert to_bytes(message) == generated_bytes(message)


def test_compiled_templates_are_cached_and_a_changed_one_compiled_anew(tmp_path: Path) -> None:
    from leergang_ops.mail import render as render_module

    cache = tmp_path / "cache"
    cache.mkdir()
    overrides = tmp_path / "sjablonen"
    overrides.mkdir()
    subject = overrides / "bevestiging.subject.j2"
    for text in ("Eerste versie", "Tweede versie"):
        subject.write_text(text, encoding="utf-8")
        templates = Templates(overrides)
        templates.env.bytecode_cache = render_module._BytecodeCache(str(cache))
        assert render(ALL_KINDS[0], COURSE, templates, now=NOW)["Subject"] == text
    assert len(list(cache.iterdir())) >= 2  # shipped templates and both subject versions


def test_html_templates_are_autoescaped_and_text_and_subject_ones_are_not(
    templates: Templates,
) -> None:
    assert [templates.env.autoescape(name) for name in (
        "bevestiging.html.j2", "base.html.j2", "bevestiging.txt.j2", "bevestiging.subject.j2",
    )] == [True, True, False, False]


def test_a_template_cached_under_other_options_is_compiled_anew(tmp_path: Path) -> None:
    from leergang_ops.mail import render as render_module

    course, reg = with_registration(voornaam="<b>Sanne</b>")
    cache = tmp_path / "cache"
    cache.mkdir()
    htmls = []
    for autoescape in (True, False):  # as a release that changed the option would
        templates = Templates()
        templates.env.bytecode_cache = render_module._BytecodeCache(str(cache))
        templates.env.autoescape = autoescape
        htmls.append(html_of(mail(templates, intent(MailKind.BEVESTIGING, reg), course)))
    assert "&lt;b&gt;Sanne&lt;/b&gt;" in htmls[0]
    assert "<b>Sanne</b>" in htmls[1]  # not the escaping code compiled the first time


def test_the_template_cache_key_holds_the_package_version_and_the_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from leergang_ops.mail import render as render_module

    env = Templates().env
    key = render_module.compile_options_key
    html = key(env, "bevestiging.html.j2")
    assert key(env, "bevestiging.txt.j2") != html  # autoescape differs per template
    monkeypatch.setattr(render_module, "__version__", "99.0")
    assert key(env, "bevestiging.html.j2") != html
    monkeypatch.undo()
    monkeypatch.setattr(env, "trim_blocks", False)
    assert key(env, "bevestiging.html.j2") != html


def test_a_cache_that_cannot_be_written_does_not_stop_the_mail(tmp_path: Path) -> None:
    from leergang_ops.mail import render as render_module

    templates = Templates()
    templates.env.bytecode_cache = render_module._BytecodeCache(str(tmp_path / "missing"))
    message = render(ALL_KINDS[0], COURSE, templates, now=NOW)
    assert message["X-Leergang-Mail"] == str(ALL_KINDS[0].kind)


def test_multiparts_are_built_as_mimemultipart_builds_them(templates: Templates) -> None:
    from email.mime.multipart import MIMEMultipart

    from leergang_ops.mail import render as render_module

    parts = render(ALL_KINDS[0], COURSE, templates, now=NOW).get_payload()
    for subtype in ("mixed", "alternative"):
        ours = render_module._Multipart(subtype, parts)
        theirs = MIMEMultipart(subtype, _subparts=parts, boundary=ours.boundary,
                               policy=render_module.POLICY)
        assert ours.items() == theirs.items()
        assert to_bytes(ours) == generated_bytes(theirs)
        ours.set_boundary("=_een-andere-grens")
        assert to_bytes(ours) == generated_bytes(ours)
        assert b"--=_een-andere-grens--" in to_bytes(ours)


def test_to_bytes_leaves_what_it_does_not_build_to_the_generator(templates: Templates) -> None:
    message = render(ALL_KINDS[1], COURSE, templates, now=NOW)
    message.preamble = "Dit is een MIME-bericht."
    assert to_bytes(message) == generated_bytes(message)
    assert b"Dit is een MIME-bericht." in to_bytes(message)


def test_rendering_in_steps_gives_the_same_mail(templates: Templates) -> None:
    steps = rendering(ALL_KINDS[0], COURSE, templates, now=NOW)
    paused = 0
    try:
        while True:
            next(steps)
            paused += 1
    except StopIteration as done:
        stepwise = done.value
    assert paused >= 2  # there are pauses to fill
    whole = render(ALL_KINDS[0], COURSE, templates, now=NOW)
    assert text_of(parsed(stepwise)) == text_of(parsed(whole))


def test_the_fingerprint_changes_with_an_override(tmp_path: Path) -> None:
    shipped = Templates().fingerprint()
    assert Templates(tmp_path).fingerprint() == shipped  # an empty folder overrides nothing
    (tmp_path / "wachtlijst.subject.j2").write_text("Wachtlijst: {{ leergang }}\n")
    assert Templates(tmp_path).fingerprint() != shipped


def test_now_must_be_timezone_aware(templates: Templates) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render(ALL_KINDS[0], COURSE, templates, now=datetime(2021, 11, 4, 9))


def test_utf8_subject_and_names_round_trip(templates: Templates) -> None:
    settings = dataclasses.replace(COURSE.settings, leergang="Leergang ‘wijkaanpak’: oriënteren",
                                   afzender_naam="Wijkaanpak – Utrecht")
    course, reg = with_registration(voornaam="Zoë", achternaam="Çelik-Öztürk")
    course = dataclasses.replace(course, settings=settings)
    message = mail(templates, intent(MailKind.BEVESTIGING, reg), course)
    assert message["Subject"] == "Bevestiging van uw aanmelding: Leergang ‘wijkaanpak’: oriënteren"
    assert message["To"].addresses[0].display_name == "Zoë Çelik-Öztürk"
    assert message["From"].addresses[0].display_name == "Wijkaanpak – Utrecht"
    assert "Beste Zoë," in text_of(message)


def test_a_very_long_line_is_sent_as_base64_and_reads_back(templates: Templates) -> None:
    long_title = "Heel lang " * 150
    meetings = (dataclasses.replace(COURSE.meetings[0], titel=long_title), *COURSE.meetings[1:])
    message = mail(templates, ALL_KINDS[0], dataclasses.replace(COURSE, meetings=meetings))
    plain = cast(EmailMessage, message.get_body(("plain",)))
    assert plain["Content-Transfer-Encoding"] == "base64"
    assert long_title.strip() in text_of(message)


# --- content -------------------------------------------------------------------------


def test_meetings_show_dutch_dates_times_and_place(templates: Templates) -> None:
    message = mail(templates, ALL_KINDS[0])
    for body in (text_of(message), html_of(message)):
        assert "donderdag 11 november 2021, 14.00–17.00 uur" in body
        assert "Molen de Ster, Molenpark 2-1, Utrecht" in body
        assert "https://meet.example.org/wijkaanpak-2" in body
        assert "deelnemers en bestuurders" in body
        assert "Annemiek van Tol" in body and "contact@example.org" in body
        assert "uitnodiging.ics" in body


def test_a_meeting_without_a_date_says_datum_volgt(templates: Templates) -> None:
    text = text_of(mail(templates, ALL_KINDS[0]))
    assert "4. Terugblik en vervolg\n   Wanneer: datum volgt" in text


def test_bestuurders_confirmation_lists_only_meetings_for_bestuurders(
    templates: Templates,
) -> None:
    message = mail(templates, intent(MailKind.BEVESTIGING, JORIS))
    text = text_of(message)
    assert "Hoe ga je aan de slag met een wijkaanpak?" in text
    assert "Waarom een wijkaanpak?" not in text
    assert "Wat is een wijkaanpak" not in text
    uids = [str(e["uid"]) for e in ics_of(message).walk("VEVENT")]
    assert uids == ["leergang-slagvaardige-wijkaanpak-m3@example.org"]


def test_intent_meetings_cannot_widen_a_bestuurders_list(templates: Templates) -> None:
    message = mail(templates, intent(MailKind.BEVESTIGING, JORIS, meetings=(1, 2, 3)))
    assert "Waarom een wijkaanpak?" not in text_of(message)


def test_participants_confirmation_lists_every_meeting(templates: Templates) -> None:
    message = mail(templates, ALL_KINDS[0])
    assert len(list(ics_of(message).walk("VEVENT"))) == 3  # the fourth has no date yet
    assert all(f"{nr}. " in text_of(message) for nr in (1, 2, 3, 4))


def test_online_reminder_gives_the_link(templates: Templates) -> None:
    it = intent(MailKind.HERINNERING, scope="m2-1d", meetings=(2,), reminder_days=1)
    message = parsed(render(it, COURSE, templates, now=datetime(2021, 12, 1, 9, tzinfo=ZONE)))
    assert message["Subject"].startswith("Morgen: bijeenkomst 2")
    assert 'href="https://meet.example.org/wijkaanpak-2"' in html_of(message)
    assert "https://meet.example.org/wijkaanpak-2" in text_of(message)
    assert "Molenpark" not in text_of(message)


def test_on_site_reminder_gives_the_address_and_counts_days_from_now(
    templates: Templates,
) -> None:
    text = text_of(mail(templates, ALL_KINDS[2]))
    assert "Over 7 dagen is de volgende bijeenkomst" in text
    assert "Het adres: Molen de Ster, Molenpark 2-1, Utrecht." in text
    assert "meet.example.org" not in text


def test_a_late_reminder_counts_the_days_that_are_really_left(templates: Templates) -> None:
    late = datetime(2021, 11, 9, 20, tzinfo=ZONE)  # the 7-day reminder, caught up late
    text = text_of(parsed(render(ALL_KINDS[2], COURSE, templates, now=late)))
    assert "Over 2 dagen" in text


def test_waiting_list_and_overbooked_are_explained_differently(templates: Templates) -> None:
    waiting = mail(templates, ALL_KINDS[1])
    over = mail(templates, intent(MailKind.WACHTLIJST, extra={
        "status": "overboekt", "melding": "Overboekt: gemeente Utrecht heeft al 3"}))
    assert "wachtlijst" in waiting["Subject"]
    assert "20 gemeenten" in text_of(waiting)
    assert "De gemeente Utrecht staat als 2e op de wachtlijst." in text_of(waiting)
    assert "nog geen plaats" in over["Subject"]
    assert "al 3 deelnemers aangemeld" in text_of(over)
    assert "de gemeente Utrecht" in text_of(over)
    # The organisers' Melding never reaches a participant, even when an intent carries one.
    assert "Overboekt:" not in text_of(over) + html_of(over)
    assert "Toelichting" not in text_of(over) + html_of(over)


def test_change_shows_the_new_details_with_a_higher_sequence(templates: Templates) -> None:
    moved = dataclasses.replace(COURSE.meetings[1], datum=date(2021, 12, 9))
    course = dataclasses.replace(COURSE, meetings=(COURSE.meetings[0], moved,
                                                   *COURSE.meetings[2:]))
    message = mail(templates, ALL_KINDS[3], course, sequences={2: 1})
    assert message["Subject"] == "Gewijzigd: bijeenkomst 2 van Leergang slagvaardige wijkaanpak"
    assert "donderdag 9 december 2021, 14.00–17.00 uur" in text_of(message)
    [event] = ics_of(message).walk("VEVENT")
    assert event["sequence"] == 1
    assert str(event["uid"]) == "leergang-slagvaardige-wijkaanpak-m2@example.org"


def test_a_newly_announced_meeting_is_called_new_not_changed(templates: Templates) -> None:
    added = intent(MailKind.WIJZIGING, scope="m2@1", meetings=(2,), sequence=1,
                   extra={"change": "added"})
    message = mail(templates, added, sequences={2: 1})
    assert message["Subject"] == "Nieuw: bijeenkomst 2 van Leergang slagvaardige wijkaanpak"
    assert "Er is een nieuwe bijeenkomst" in text_of(message)
    assert "veranderd" not in text_of(message) + html_of(message)
    dated = mail(templates, dataclasses.replace(added, extra={"change": "dated"}),
                 sequences={2: 1})
    assert dated["Subject"] == "Datum bekend: bijeenkomst 2 van Leergang slagvaardige wijkaanpak"
    assert "de datum staat nu vast" in text_of(dated)
    assert "veranderd" not in text_of(message)


def test_change_without_sequences_uses_the_intents_sequence(templates: Templates) -> None:
    [event] = ics_of(mail(templates, ALL_KINDS[3])).walk("VEVENT")
    assert event["sequence"] == 1


def test_summary_shows_the_figures_and_says_the_workbook_is_attached(
    templates: Templates,
) -> None:
    attachment = Attachment("overzicht-2021-W44.xlsx", b"PK\x03\x04 fake", XLSX)
    message = mail(templates, ALL_KINDS[4], attachments=[attachment],
                   context={"cijfers": {"Bevestigd": 42, "Wachtlijst": 3},
                            "aandachtspunten": ["1 e-mail kon niet worden bezorgd"]})
    text = text_of(message)
    assert message["To"].addresses[0].addr_spec == "contact@example.org"
    assert "week 44 van 2021" in message["Subject"]
    assert "Bevestigd: 42" in text and "Wachtlijst: 3" in text
    assert "1 e-mail kon niet worden bezorgd" in html_of(message)
    assert "overzicht-2021-W44.xlsx" in text
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == XLSX
    assert part.get_content() == b"PK\x03\x04 fake"


def test_html_needs_nothing_from_outside(templates: Templates) -> None:
    for it in ALL_KINDS:
        html = html_of(mail(templates, it)).lower()
        assert "<img" not in html and "<script" not in html and "<link" not in html
        assert "<style" not in html and "@import" not in html and "src=" not in html


class _TagBalance(HTMLParser):
    """Records end tags that do not close the innermost open element."""

    VOID = frozenset({"br", "meta", "img", "hr", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.wrong: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.wrong.append(tag)


@pytest.mark.parametrize("it", ALL_KINDS, ids=lambda i: str(i.kind))
def test_html_tags_are_balanced(templates: Templates, it: MailIntent) -> None:
    balance = _TagBalance()
    balance.feed(html_of(mail(templates, it)))
    assert (balance.wrong, balance.open) == ([], [])


def test_a_javascript_link_is_never_a_link(templates: Templates) -> None:
    bad = dataclasses.replace(COURSE.meetings[1], online_link="javascript:alert(1)")
    course = dataclasses.replace(COURSE, meetings=(COURSE.meetings[0], bad,
                                                   *COURSE.meetings[2:]))
    html = html_of(mail(templates, ALL_KINDS[0], course))
    assert 'href="javascript' not in html


# --- participant data stays data -----------------------------------------------------


def test_template_syntax_in_a_name_stays_literal(templates: Templates) -> None:
    course, reg = with_registration(voornaam="{{ 7*7 }}", achternaam="{% include 'x' %}")
    message = mail(templates, intent(MailKind.BEVESTIGING, reg), course)
    assert "Beste {{ 7*7 }}," in text_of(message)
    assert "49" not in text_of(message)
    assert message["To"].addresses[0].display_name == "{{ 7*7 }} {% include 'x' %}"


def test_html_in_a_name_is_escaped_in_the_html_part(templates: Templates) -> None:
    course, reg = with_registration(voornaam="<script>alert(1)</script>")
    message = mail(templates, intent(MailKind.BEVESTIGING, reg), course)
    assert "<script>" not in html_of(message)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_of(message)
    assert "Beste <script>alert(1)</script>," in text_of(message)


def test_cr_lf_in_a_name_never_makes_a_header(templates: Templates) -> None:
    name = "Jan\r\nBcc: slachtoffer@example.org\r\nX-Evil: 1"
    course, reg = with_registration(voornaam="Jan", achternaam="\nBcc: x@example.org")
    message = mail(templates, intent(MailKind.BEVESTIGING, reg, name=name), course)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert len(message.get_all("To") or []) == 1
    assert message["To"].addresses[0].addr_spec == SANNE.email
    assert "\n" not in str(message["To"])


def test_cr_lf_in_the_course_name_never_makes_a_header(templates: Templates) -> None:
    settings = dataclasses.replace(COURSE.settings, leergang="Leergang\r\nBcc: x@example.org")
    message = mail(templates, ALL_KINDS[0], dataclasses.replace(COURSE, settings=settings))
    assert message["Bcc"] is None
    assert message["Subject"] == "Bevestiging van uw aanmelding: Leergang Bcc: x@example.org"


def test_a_name_that_is_a_file_path_is_just_text(templates: Templates) -> None:
    course, reg = with_registration(voornaam="/etc/passwd", achternaam="../base.txt.j2")
    message = mail(templates, intent(MailKind.BEVESTIGING, reg), course)
    assert "Beste /etc/passwd," in text_of(message)
    assert "root:" not in text_of(message)


def test_an_address_with_a_line_break_is_refused(templates: Templates) -> None:
    it = intent(MailKind.BEVESTIGING, address="a@example.nl\r\nBcc: b@example.nl")
    with pytest.raises(InputError, match="ongeldig e-mailadres"):
        render(it, COURSE, templates, now=NOW)


# --- overrides and checks ------------------------------------------------------------


def override(tmp_path: Path, files: dict[str, str]) -> Templates:
    folder = tmp_path / "mail_templates"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return Templates(folder)


def test_an_override_folder_wins_file_by_file(tmp_path: Path) -> None:
    templates = override(tmp_path, {"bevestiging.subject.j2": "Welkom bij {{ leergang }}",
                                    "base.txt.j2": "EIGEN {% block inhoud %}{% endblock %}"})
    message = mail(templates, ALL_KINDS[0])
    assert message["Subject"] == "Welkom bij Leergang slagvaardige wijkaanpak"
    assert text_of(message).startswith("EIGEN Beste Sanne,")
    assert "Met vriendelijke groet" in html_of(message)  # the shipped HTML still applies
    assert mail(templates, ALL_KINDS[1])["Subject"].startswith("Uw aanmelding")


def test_missing_override_folder_means_shipped_templates(tmp_path: Path) -> None:
    templates = Templates(tmp_path / "mail_templates")
    assert templates.check() == []


def test_shipped_templates_pass_the_check(templates: Templates) -> None:
    assert templates.check() == []


def findings_of(templates: Templates) -> list[tuple[str | None, int | None, str]]:
    return [(f.sheet, f.row, f.code) for f in templates.check()]


def test_check_reports_a_syntax_error_with_file_and_line(tmp_path: Path) -> None:
    templates = override(tmp_path, {"wachtlijst.txt.j2":
                                    "{% extends 'base.txt.j2' %}\n{% block inhoud %}\n"
                                    "Beste {{ voornaam }\n{% endblock %}\n"})
    [finding] = templates.check()
    assert (finding.level, finding.code, finding.sheet, finding.row, finding.column) == \
        (Level.ERROR, "template-error", None, 3, None)
    assert finding.message.startswith("mail_templates/wachtlijst.txt.j2:3: syntaxfout")


def test_check_reports_an_unknown_variable_with_file_and_line(tmp_path: Path) -> None:
    templates = override(tmp_path, {"herinnering.html.j2":
                                    "{% extends 'base.html.j2' %}\n{% block inhoud %}\n"
                                    "<p>Beste {{ voornaam }},</p>\n<p>{{ achternaam }}</p>\n"
                                    "{% endblock %}\n"})
    [finding] = templates.check()
    assert finding.row == 4
    assert finding.message.startswith("mail_templates/herinnering.html.j2:4: "
                                      "onbekende variabele")
    assert "achternaam" in finding.message


def test_check_reports_an_error_in_a_shared_file_once(tmp_path: Path) -> None:
    templates = override(tmp_path, {"base.txt.j2": "{{ onbekend }}\n"})
    assert findings_of(templates) == [(None, 1, "template-error")]
    assert templates.check()[0].message.startswith("mail_templates/base.txt.j2:1:")


@pytest.mark.parametrize("expression", ["leergang.__class__.__mro__",
                                        "contactpersoon.naam.__class__.__mro__",
                                        "instellingen.__class__.__init__.__globals__"])
def test_the_sandbox_refuses_python_internals(tmp_path: Path, expression: str) -> None:
    templates = override(tmp_path, {"wachtlijst.subject.j2": f"{{{{ {expression} }}}}"})
    [finding] = templates.check()
    assert finding.message.startswith("mail_templates/wachtlijst.subject.j2:1:")


def test_render_with_a_broken_template_raises_input_error_with_location(
    tmp_path: Path,
) -> None:
    templates = override(tmp_path, {"bevestiging.subject.j2": "{{ niet_bestaand }}"})
    with pytest.raises(InputError, match=r"mail_templates/bevestiging.subject.j2:1: ") as err:
        render(ALL_KINDS[0], COURSE, templates, now=NOW)
    assert [f.code for f in err.value.findings] == ["template-error"]


def test_unknown_meeting_number_in_an_intent_is_a_programming_error(
    templates: Templates,
) -> None:
    with pytest.raises(ValueError, match="unknown meeting"):
        render(intent(MailKind.HERINNERING, meetings=(9,)), COURSE, templates, now=NOW)


def test_without_a_row_the_registration_is_found_by_address(templates: Templates) -> None:
    it = MailIntent(MailKind.BEVESTIGING, JORIS.email.upper(), JORIS.naam, "-")
    assert "Waarom een wijkaanpak?" not in text_of(mail(templates, it))


@dataclasses.dataclass(frozen=True)
class Headline:
    """The shape of summary.Headline, which jobs passes as context["headline"]."""

    gemeenten: int = 12
    max_gemeenten: int = 20
    bevestigd: int = 30
    wachtlijst: int = 2
    overboekt: int = 1
    ongeldig: int = 0
    afgemeld: int = 1
    per_meeting: tuple[tuple[str, int], ...] = (("1. Waarom een wijkaanpak? — do 11-11-2021",
                                                  29),)
    mails_this_week: int = 34
    problems: tuple[tuple[str, str], ...] = (("Adres geweigerd: 550", "Deelnemers, rij 7"),)


def test_summary_shows_the_headline_figures(templates: Templates) -> None:
    headline = Headline()
    message = mail(templates, ALL_KINDS[4],
                   context={"headline": headline, **dataclasses.asdict(headline)})
    text = text_of(message)
    assert "Deelnemende gemeenten: 12 van 20" in text
    assert "Bevestigde deelnemers: 30" in text
    assert "E-mails verstuurd (afgelopen 7 dagen): 34" in text
    assert "1. Waarom een wijkaanpak? — do 11-11-2021: 29" in text
    assert "Adres geweigerd: 550 (Deelnemers, rij 7)" in html_of(message)


def test_a_reminder_about_a_meeting_the_bestuurder_does_not_attend_is_refused(
    templates: Templates,
) -> None:
    it = intent(MailKind.HERINNERING, JORIS, scope="m1-7d", meetings=(1,), reminder_days=7)
    with pytest.raises(ValueError, match="no meeting its recipient attends"):
        render(it, COURSE, templates, now=NOW)
