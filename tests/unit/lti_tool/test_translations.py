"""Every user-facing text goes through the catalogue, and Bokmål has a translation for every message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[3]
TRANSLATIONS = ROOT / "lti_tool" / "translations"


def extract(tmp_path: Path) -> set:
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
        ],
        check=True,
        capture_output=True,
    )
    with out.open("rb") as fh:
        return {m.id for m in read_po(fh) if m.id}


def catalogue(locale: str):
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def test_every_message_in_the_code_is_in_the_catalogues(tmp_path):
    used = extract(tmp_path)
    assert used, "extraction found nothing"
    for locale in ("nb", "en"):
        ids = {m.id for m in catalogue(locale) if m.id}
        missing = used - ids
        assert not missing, f"{locale}: not in the catalogue: {sorted(map(str, missing))[:5]}"


def test_bokmaal_translates_everything():
    untranslated = [
        m.id for m in catalogue("nb") if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)
    ]
    assert untranslated == []


def test_placeholders_survive_translation():
    for m in catalogue("nb"):
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        for source, target in zip(ids, strings, strict=False):
            for placeholder in ("%(num)d", "%(name)s", "%(code)s", "%(status)s", "%(number)s"):
                assert (placeholder in source) == (placeholder in target), (source, target)


def test_template_translations_are_markup_with_escaped_variables(app):
    from flask import g, render_template_string

    with app.test_request_context("/"):
        g.locale = "nb"
        html = render_template_string('{{ _("Signed in as %(name)s.", name=name) }}', name="<b>Kari</b> & co")
        assert html == "Logget inn som &lt;b&gt;Kari&lt;/b&gt; &amp; co."
        assert render_template_string('{{ _("My progress") }}') == "Min fremdrift"
        g.locale = "en"
        assert render_template_string('{{ gettext("My progress") }}') == "My progress"
