"""Every user-facing text goes through the catalogue, and every UI language has every message: Bokmål (the default)
and Nynorsk translate them all, English has every id (an empty msgstr falls back to the English msgid)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from lti_tool.i18n import LOCALES, pick_locale

ROOT = Path(__file__).resolve().parents[3]
TRANSLATIONS = ROOT / "lti_tool" / "translations"
TRANSLATED = ("nb", "nn")  # must have a msgstr for every message; "en" may leave it empty
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[a-z]|%%")


def extract(tmp_path: Path) -> set:
    """The message ids of the web app (code and templates) and of the domain's e-mails (kurspakke/notices.py and
    the order form), which read the same catalogue."""
    out = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "pybabel"),
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "_",
            "-k",
            "gettext",
            "-k",
            "ngettext:1,2",
            "-k",
            "N_",
            "--no-location",
            "--omit-header",
            "-o",
            str(out),
            str(ROOT / "lti_tool"),
            str(ROOT / "kurspakke"),
        ],
        check=True,
        capture_output=True,
    )
    with out.open("rb") as fh:
        return {m.id for m in read_po(fh) if m.id}


def catalogue(locale: str) -> Catalog:
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def messages(locale: str) -> list[Message]:
    return [m for m in catalogue(locale) if m.id]


def forms(value: str | tuple | list | None) -> tuple[str, ...]:
    """A message's id or msgstr as its forms: one, or one per plural form (None, a missing msgstr: none)."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def test_the_ui_languages_are_bokmaal_nynorsk_and_english():
    assert LOCALES == ("nb", "nn", "en")
    for locale in LOCALES:
        assert (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").is_file(), locale


def test_every_message_in_the_code_is_in_every_catalogue(tmp_path):
    used = extract(tmp_path)
    assert used, "extraction found nothing"
    for locale in LOCALES:
        ids = {m.id for m in messages(locale)}
        missing = used - ids
        assert not missing, f"{locale}: not in the catalogue: {sorted(map(str, missing))[:5]}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_bokmaal_and_nynorsk_translate_everything(locale):
    untranslated = [
        m.id for m in messages(locale) if not forms(m.string) or not all(s.strip() for s in forms(m.string))
    ]
    assert untranslated == [], f"{locale}: untranslated: {untranslated[:5]}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_plural_messages_have_every_plural_form(locale):
    cat = catalogue(locale)
    assert cat.num_plurals == 2 and cat.plural_expr == "(n != 1)", locale
    for m in cat:
        if m.id and isinstance(m.id, tuple | list):
            assert isinstance(m.string, tuple | list) and len(m.string) == cat.num_plurals, (locale, m.id)
        elif m.id:
            assert isinstance(m.string, str), (locale, m.id)


@pytest.mark.parametrize("locale", TRANSLATED)
def test_placeholders_survive_translation(locale):
    for m in messages(locale):
        ids = forms(m.id)
        strings = forms(m.string)
        for index, target in enumerate(strings):
            source = ids[min(index, len(ids) - 1)]
            assert sorted(PLACEHOLDER.findall(source)) == sorted(PLACEHOLDER.findall(target)), (locale, source, target)


def test_the_catalogues_hold_the_same_messages():
    """No language keeps a message the others lack (an id dropped from the code leaves all three together)."""
    ids = {locale: {m.id for m in messages(locale)} for locale in LOCALES}
    for locale in LOCALES:
        assert ids[locale] == ids["nb"], f"{locale}: differs from nb: {sorted(map(str, ids[locale] ^ ids['nb']))[:5]}"


def test_nynorsk_is_not_a_copy_of_bokmaal():
    """Short words and names are the same in both (Kursbevis, PDF, Status); sentences are not."""
    nb = {m.id: forms(m.string) for m in messages("nb")}
    nn = {m.id: forms(m.string) for m in messages("nn")}
    same = [i for i, s in nn.items() if s == nb.get(i)]
    assert len(same) < len(nn) / 2, f"{len(same)} of {len(nn)} Nynorsk texts are the Bokmål ones"
    long_same = [nn[i][0] for i in same if len(nn[i][0].split()) > 12]
    assert long_same == [], long_same[:3]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("nb", "nb"),
        ("nb-NO", "nb"),
        ("no", "nb"),
        ("nob", "nb"),
        (None, "nb"),
        ("", "nb"),
        ("sv-SE", "nb"),
        ("se", "nb"),
        ("nn", "nn"),
        ("nn-NO", "nn"),
        ("nn_NO", "nn"),
        (" NN-no ", "nn"),
        ("nno", "nn"),
        ("no-nyn", "nn"),
        ("en", "en"),
        ("en-GB", "en"),
        ("en-US", "en"),
    ],
)
def test_pick_locale(value, expected):
    assert pick_locale(value) == expected


def test_template_translations_are_markup_with_escaped_variables(app):
    from flask import g, render_template_string

    with app.test_request_context("/"):
        g.locale = "nb"
        html = render_template_string('{{ _("Signed in as %(name)s.", name=name) }}', name="<b>Kari</b> & co")
        assert html == "Logget inn som &lt;b&gt;Kari&lt;/b&gt; &amp; co."
        assert render_template_string('{{ _("My progress") }}') == "Min fremdrift"
        g.locale = "nn"
        html = render_template_string('{{ _("Signed in as %(name)s.", name=name) }}', name="<b>Kari</b> & co")
        assert html == "Logga inn som &lt;b&gt;Kari&lt;/b&gt; &amp; co."
        assert render_template_string('{{ _("My progress") }}') == "Min framdrift"
        g.locale = "en"
        assert render_template_string('{{ gettext("My progress") }}') == "My progress"


def test_nynorsk_plurals_dates_and_numbers(app):
    from datetime import UTC, datetime

    from babel.numbers import format_decimal
    from flask import g

    from lti_tool.i18n import current_locale, format_datetime, gettext, ngettext

    with app.test_request_context("/"):
        g.locale = "nn"
        assert current_locale() == "nn"
        assert gettext("Participants") == "Deltakarar"
        assert ngettext("%(num)d person", "%(num)d people", 1) == "1 person"
        assert ngettext("%(num)d person", "%(num)d people", 3) == "3 personar"
        assert format_datetime(datetime(2026, 3, 5, 13, 3, tzinfo=UTC)) == "5. mars 2026, 14:03:00"
        money = format_decimal(375, format="#,##0.00", locale=current_locale()) + " kr"
        assert money == "375,00 kr"


def test_e_mails_come_in_nynorsk_too():
    from kurspakke.notices import catalogue as mail_catalogue

    assert mail_catalogue("nn").gettext("Regards,\n%(issuer)s") == "Helsing\n%(issuer)s"
    assert mail_catalogue("nb").gettext("Regards,\n%(issuer)s") == "Hilsen\n%(issuer)s"
