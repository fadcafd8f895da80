"""E-mail texts, in the person's language through the translation catalogue (Norwegian Bokmål by default).

The catalogue is the web app's (lti_tool/translations): one catalogue for every text a user reads. It is read here
as files, so the domain does not import the web app.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache, lru_cache
from gettext import NullTranslations
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from kurspakke.programmes import Programme

CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "lti_tool" / "translations"


def compile_catalogue(directory: Path, locale: str) -> NullTranslations:
    """One locale's .po file compiled in memory (no build step, no binary .mo in git); the web app loads its
    catalogues through this too (lti_tool/i18n.py). Compiled once per process and file version: a test run
    creates an app per test, and compiling costs ~20 ms a locale."""
    po = directory / locale / "LC_MESSAGES" / "messages.po"
    stat = po.stat()
    return _compiled(po, locale, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _compiled(po: Path, locale: str, mtime_ns: int, size: int) -> NullTranslations:
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


@cache
def catalogue(locale: str = "nb") -> NullTranslations:
    return compile_catalogue(CATALOGUE_DIR, locale)


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str


def welcome_message(
    *,
    name: str,
    email: str,
    login: str,
    organisation: str,
    programme: Programme,
    course_url: str,
    provider_login: bool,
    locale: str = "nb",
) -> Message:
    """The welcome e-mail of a participant enrolled in Canvas, saying exactly how to sign in on this Canvas."""
    _ = catalogue(locale).gettext
    if provider_login:
        how = _("Sign in to Canvas with your usual work login (for example Feide); your user name is %(login)s.") % {
            "login": login
        }
    else:
        how = _(
            "Canvas sends you its own e-mail to finish your registration and choose a password. Your login is "
            "%(login)s; if the e-mail does not come, use \u201cForgot password\u201d on Canvas's login page."
        ) % {"login": login}
    subject = _("You have a place on %(programme)s") % {"programme": programme.title}
    text = "\n\n".join(
        [
            _("Hello %(name)s,") % {"name": name},
            _("%(organisation)s has given you a place on the training programme \u201c%(programme)s\u201d in Canvas.")
            % {"organisation": organisation, "programme": programme.title},
            how,
            _("The course: %(url)s") % {"url": course_url},
            _("Regards,\n%(issuer)s") % {"issuer": programme.issuer},
        ]
    )
    return Message(to=email, subject=subject, text=text)


def invitation_message(
    *, name: str, email: str, organisation: str, programme: Programme, signin_url: str, locale: str = "nb"
) -> Message:
    """The invitation of a new licence administrator (an order's contact): what they can do and where to sign in."""
    _ = catalogue(locale).gettext
    subject = _("You are licence administrator for %(programme)s") % {"programme": programme.title}
    text = "\n\n".join(
        [
            _("Hello %(name)s,") % {"name": name},
            _(
                "You are licence administrator of %(organisation)s for the training programme "
                "\u201c%(programme)s\u201d: you give your colleagues their seats and follow their progress."
            )
            % {"organisation": organisation, "programme": programme.title},
            _("Sign in with your e-mail address here; you get a sign-in link by e-mail: %(url)s") % {"url": signin_url},
            _("Regards,\n%(issuer)s") % {"issuer": programme.issuer},
        ]
    )
    return Message(to=email, subject=subject, text=text)


def expired_seats_message(
    *, to: str, organisation: str, programme: Programme, names: list[str], locale: str = "nb"
) -> Message:
    """To a licence administrator: seats that ran past their validity unfinished; their enrolments are concluded."""
    _ = catalogue(locale).gettext
    ngettext = catalogue(locale).ngettext
    subject = ngettext(
        "%(count)d seat expired: %(programme)s", "%(count)d seats expired: %(programme)s", len(names)
    ) % {"count": len(names), "programme": programme.title}
    lines = [
        _(
            "These seats of %(organisation)s ran past their validity before the training was finished. Their "
            "Canvas enrolments are concluded; the seats stay used."
        )
        % {"organisation": organisation},
        "\n".join(f"- {name}" for name in names),
    ]
    return Message(to=to, subject=subject, text="\n\n".join(lines))


def parked_digest_message(
    *, programme: Programme, steps: list[tuple[int, str, str, str]], locale: str = "nb"
) -> Message:
    """The course owners' daily list of parked Canvas steps: (step id, kind, subject, error) each."""
    _ = catalogue(locale).gettext
    ngettext = catalogue(locale).ngettext
    subject = ngettext(
        "%(count)d Canvas step needs attention: %(programme)s",
        "%(count)d Canvas steps need attention: %(programme)s",
        len(steps),
    ) % {"count": len(steps), "programme": programme.title}
    lines = [
        _("These changes could not be carried to Canvas. Resolve the cause and press Retry on the parked steps page.")
    ]
    lines += [f"#{step_id} {kind} {subject_}: {error}" for step_id, kind, subject_, error in steps]
    return Message(to=programme.contact_email, subject=subject, text="\n\n".join(lines))


def certificate_message(
    *,
    name: str,
    email: str,
    programme: Programme,
    code: str,
    verify_url: str,
    mentor: bool = False,
    locale: str = "nb",
) -> Message:
    """To a new certificate holder: it is ready, where to download it (PDF and Open Badge), how anyone checks it."""
    _ = catalogue(locale).gettext
    subject = _("Your certificate for %(programme)s is ready") % {"programme": programme.title}
    done = (
        _("You have led the group sessions of \u201c%(programme)s\u201d and have earned its certificate.")
        if mentor
        else _("You have completed \u201c%(programme)s\u201d and have earned its certificate.")
    )
    text = "\n\n".join(
        [
            _("Hello %(name)s,") % {"name": name},
            done % {"programme": programme.title},
            _(
                "Download it as a PDF, and as an Open Badge for your digital wallet, under \u201cMy progress\u201d "
                "in the course in Canvas."
            ),
            _("Verification code: %(code)s. Anyone can check the certificate here: %(url)s")
            % {"code": code, "url": verify_url},
            _("Regards,\n%(issuer)s")
            % {"issuer": programme.certificate.issuer if programme.certificate else programme.issuer},
        ]
    )
    return Message(to=email, subject=subject, text=text)


__all__ = [
    "Message",
    "catalogue",
    "certificate_message",
    "compile_catalogue",
    "expired_seats_message",
    "invitation_message",
    "parked_digest_message",
    "welcome_message",
]
