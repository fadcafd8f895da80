"""The reminders' e-mail texts, in the recipient's language through the catalogue (kurspakke.notices.catalogue).

Every message has one recipient and names nobody else's address: the seat-expiry notice lists names only, a
meeting notice names the group, and the mentors by name. Times are Europe/Oslo, written the way the language
writes a date (Babel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from gettext import NullTranslations
from zoneinfo import ZoneInfo

from babel.dates import format_date

from kurspakke.notices import Message, catalogue
from kurspakke.programmes import Programme

OSLO = ZoneInfo("Europe/Oslo")
DEFAULT_LOCALE = "nb"
SCHEDULED = "scheduled"
MOVED = "moved"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class MeetingFacts:
    """When and where a meeting is (or was, as last announced)."""

    starts_at: datetime
    duration_minutes: int
    format: str
    place: str = ""
    video_url: str = ""

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)


def translations(locale: str | None) -> NullTranslations:
    """The catalogue of ``locale``; Bokmål for none, or for a language the tool has no catalogue of."""
    try:
        return catalogue(locale or DEFAULT_LOCALE)
    except FileNotFoundError:
        return catalogue(DEFAULT_LOCALE)


def _babel_locale(locale: str | None) -> str:
    return locale if locale in ("nb", "nn", "en") else DEFAULT_LOCALE


def day_text(moment: datetime, locale: str | None) -> str:
    """The Oslo day, e.g. "tirsdag 12. januar 2027"."""
    return format_date(moment.astimezone(OSLO).date(), format="full", locale=_babel_locale(locale))


def clock(moment: datetime) -> str:
    return moment.astimezone(OSLO).strftime("%H:%M")


def short_day(day: date | datetime) -> str:
    """dd.mm.yyyy, as the pages write a day."""
    if isinstance(day, datetime):
        day = day.astimezone(OSLO).date()
    return day.strftime("%d.%m.%Y")


def _where(facts: MeetingFacts, _: Callable[[str], str]) -> str:
    if facts.format == "digital":
        return _("Where: digital, video link %(url)s") % {"url": facts.video_url}
    return _("Where: %(place)s") % {"place": facts.place}


def _when(facts: MeetingFacts, locale: str | None, _: Callable[[str], str]) -> str:
    return _("When: %(day)s, %(start)s\u2013%(end)s") % {
        "day": day_text(facts.starts_at, locale),
        "start": clock(facts.starts_at),
        "end": clock(facts.ends_at),
    }


def _issuer(programme: Programme) -> str:
    return programme.certificate.issuer if programme.certificate else programme.issuer


def meeting_notice_message(
    *,
    change: str,
    name: str,
    email: str,
    programme: Programme,
    session_title: str,
    group_name: str,
    facts: MeetingFacts,
    before: MeetingFacts | None = None,
    locale: str | None = None,
) -> Message:
    """A session scheduled, moved (``before``: as announced earlier) or cancelled; an .ics goes with it."""
    t = translations(locale)
    _ = t.gettext
    values = {"session": session_title, "day": day_text(facts.starts_at, locale), "programme": programme.title}
    if change == CANCELLED:
        subject = _("Cancelled: %(session)s %(day)s") % values
        what = _("%(session)s in \u201c%(programme)s\u201d on %(day)s is cancelled.") % values
    elif change == MOVED:
        subject = _("New time or place: %(session)s %(day)s") % values
        what = _("%(session)s in \u201c%(programme)s\u201d has a new time or place.") % values
    else:
        subject = _("Scheduled: %(session)s %(day)s") % values
        what = _("%(session)s in \u201c%(programme)s\u201d is scheduled.") % values
    lines = [_("Hello %(name)s,") % {"name": name}, what]
    if change != CANCELLED:
        details = [_when(facts, locale, _), _where(facts, _)]
        if before is not None and (before.starts_at, before.duration_minutes) != (
            facts.starts_at,
            facts.duration_minutes,
        ):
            details.append(
                _("Before: %(day)s, %(start)s")
                % {"day": day_text(before.starts_at, locale), "start": clock(before.starts_at)}
            )
        lines.append("\n".join(details))
    if group_name:
        lines.append(_("Group: %(group)s") % {"group": group_name})
    lines.append(
        _("The attached calendar file removes the session from your calendar.")
        if change == CANCELLED
        else _("Open the attached calendar file to put the session in your calendar.")
    )
    lines.append(_("Regards,\n%(issuer)s") % {"issuer": _issuer(programme)})
    return Message(to=email, subject=subject, text="\n\n".join(lines))


def meeting_reminder_message(
    *,
    name: str,
    email: str,
    programme: Programme,
    session_title: str,
    group_name: str,
    facts: MeetingFacts,
    unsubscribe_url: str,
    locale: str | None = None,
) -> Message:
    """The day before a session: when, where, and how to stop these reminders."""
    t = translations(locale)
    _ = t.gettext
    subject = _("Tomorrow: %(session)s at %(time)s") % {"session": session_title, "time": clock(facts.starts_at)}
    lines = [
        _("Hello %(name)s,") % {"name": name},
        _("A reminder: %(session)s in \u201c%(programme)s\u201d is tomorrow.")
        % {"session": session_title, "programme": programme.title},
        "\n".join([_when(facts, locale, _), _where(facts, _)]),
    ]
    if group_name:
        lines.append(_("Group: %(group)s") % {"group": group_name})
    lines += [
        _("Regards,\n%(issuer)s") % {"issuer": _issuer(programme)},
        _("You get this reminder because reminders are on for you. Turn them off: %(url)s") % {"url": unsubscribe_url},
    ]
    return Message(to=email, subject=subject, text="\n\n".join(lines))


def nudge_message(
    *,
    name: str,
    email: str,
    programme: Programme,
    done: int,
    expected: int,
    mentors: list[str],
    unsubscribe_url: str,
    locale: str | None = None,
) -> Message:
    """A gentle word to a participant behind the programme's pacing (at most one a week)."""
    t = translations(locale)
    _ = t.gettext
    values = {"programme": programme.title, "done": done, "expected": expected, "total": len(programme.modules)}
    lines = [
        _("Hello %(name)s,") % {"name": name},
        _(
            "By the programme's pace, about %(expected)s of the %(total)s modules of \u201c%(programme)s\u201d would "
            "be done by now; you have done %(done)s. No worry \u2013 a little at a time gets you there."
        )
        % values,
        _("Take the next module and its quiz in the course in Canvas when you have a moment."),
    ]
    if mentors:
        lines.append(
            _("If something is in the way, talk to your mentor (%(mentors)s).") % {"mentors": ", ".join(mentors)}
        )
    lines += [
        _("Regards,\n%(issuer)s") % {"issuer": _issuer(programme)},
        _("You get at most one such reminder a week. Turn reminders off: %(url)s") % {"url": unsubscribe_url},
    ]
    return Message(to=email, subject=_("How is it going with %(programme)s?") % values, text="\n\n".join(lines))


def seat_expiry_message(
    *,
    to: str,
    organisation: str,
    programme: Programme,
    seats: list[tuple[str, datetime]],
    locale: str | None = None,
) -> Message:
    """To a licence administrator: their organisation's seats that expire within 30 days, by name and day only."""
    t = translations(locale)
    _ = t.gettext
    subject = t.ngettext(
        "%(count)d seat expires soon: %(programme)s", "%(count)d seats expire soon: %(programme)s", len(seats)
    ) % {"count": len(seats), "programme": programme.title}
    listed = "\n".join(
        "- " + _("%(name)s (expires %(day)s)") % {"name": name, "day": short_day(until)} for name, until in seats
    )
    lines = [
        _(
            "These seats of %(organisation)s in \u201c%(programme)s\u201d expire within 30 days, before their "
            "holders have finished. When a seat expires, its Canvas enrolment is concluded."
        )
        % {"organisation": organisation, "programme": programme.title},
        listed,
        _("Follow their progress on the licence pages in Kurspakke."),
        _("Regards,\n%(issuer)s") % {"issuer": _issuer(programme)},
    ]
    return Message(to=to, subject=subject, text="\n\n".join(lines))


__all__ = [
    "CANCELLED",
    "MOVED",
    "SCHEDULED",
    "MeetingFacts",
    "day_text",
    "meeting_notice_message",
    "meeting_reminder_message",
    "nudge_message",
    "seat_expiry_message",
    "translations",
]
