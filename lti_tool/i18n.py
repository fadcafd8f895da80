"""Translation catalogue: gettext .po files under lti_tool/translations, Norwegian Bokmål by default, Norwegian
Nynorsk and English.

Message ids are English. The .po files are compiled in memory at start-up (no build step, no binary .mo in git).
"""

from __future__ import annotations

from datetime import datetime
from gettext import NullTranslations
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as babel_format_datetime
from flask import Flask, current_app, g, has_request_context, request
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from kurspakke.notices import compile_catalogue

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
LOCALES = ("nb", "nn", "en")
DEFAULT_LOCALE = "nb"
# A language chosen on a page outside Canvas (lti_tool/views/locale_switch.py).
LANGUAGE_COOKIE = "kp_lang"
# Each language named in itself on the switcher (WCAG 3.1.2: marked with its own lang).
LANGUAGE_NAMES = (("nb", "Bokmål"), ("nn", "Nynorsk"), ("en", "English"))
OSLO = ZoneInfo("Europe/Oslo")


def load_catalogues(directory: Path = TRANSLATIONS_DIR) -> dict[str, NullTranslations]:
    return {locale: compile_catalogue(directory, locale) for locale in LOCALES}


NYNORSK_TAGS = frozenset({"nn", "nno", "no-nyn"})


def pick_locale(value: str | None) -> str:
    """A platform or browser locale (nb, nb-NO, no, nn, nn-NO, en-GB, ...) to one of ours: English for en*,
    Nynorsk for nn, nno and nn-*, Bokmål for everything else (nb, no, nb-NO and anything unknown)."""
    tag = (value or "").strip().lower().replace("_", "-")
    if tag[:2] == "en":
        return "en"
    if tag in NYNORSK_TAGS or tag.split("-")[0] in NYNORSK_TAGS:
        return "nn"
    return DEFAULT_LOCALE


def current_locale() -> str:
    """The launch's locale (g.locale), else the one chosen on a page outside Canvas (a cookie), else the
    browser's (parsed once per request), else Bokmål."""
    if has_request_context():
        if "locale" in g:
            return str(g.locale)
        browser = g.get("_browser_locale")
        if browser is None:
            chosen = request.cookies.get(LANGUAGE_COOKIE, "")
            browser = (
                chosen
                if chosen in LOCALES
                else pick_locale(request.accept_languages.best_match(["nb", "no", "nn", "en"]))
            )
            g._browser_locale = browser
        return str(browser)
    return DEFAULT_LOCALE


def _catalogue() -> NullTranslations:
    # A page calls gettext a dozen times; pick the catalogue once per request (and again if the locale changes).
    locale = current_locale()
    if has_request_context():
        cached = g.get("_catalogue")
        if cached is not None and cached[0] == locale:
            return cached[1]
    catalogue: NullTranslations = current_app.extensions["kurspakke_i18n"][locale]
    if has_request_context():
        g._catalogue = (locale, catalogue)
    return catalogue


def gettext(message: str, **variables: object) -> str:
    text = _catalogue().gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = _catalogue().ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def format_day(value: datetime) -> str:
    """A day as Norwegians write it (dd.mm.yyyy, Europe/Oslo), without babel: the matrices print many of them."""
    return value.astimezone(OSLO).strftime("%d.%m.%Y")


def format_datetime(value: datetime, fmt: str = "medium") -> str:
    """Europe/Oslo on screen; the database keeps UTC."""
    return babel_format_datetime(value.astimezone(OSLO), format=fmt, locale=current_locale())


@pass_context
def _template_gettext(context: Context, message: str, **variables: object) -> str:
    """``_()`` and ``gettext()`` in templates: what jinja2.ext.i18n's newstyle gettext does (a translation is
    markup, its variables are escaped, ``%`` formatting always applied), in one call instead of three nested
    context calls — a page makes a dozen of them."""
    text: str = _catalogue().gettext(message)
    if context.eval_ctx.autoescape:
        text = Markup(text)  # noqa: S704 - our own catalogue; the variables are escaped by Markup %
    return text % variables


def init_app(app: Flask) -> None:
    app.extensions["kurspakke_i18n"] = load_catalogues()
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    app.jinja_env.globals["gettext"] = app.jinja_env.globals["_"] = _template_gettext
    app.jinja_env.globals["current_locale"] = current_locale
    app.jinja_env.globals["language_names"] = LANGUAGE_NAMES
    app.jinja_env.filters["oslo"] = format_datetime
    app.jinja_env.filters["oslo_day"] = format_day
