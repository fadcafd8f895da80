from __future__ import annotations

import tomllib

import pytest

from kurspakke.programmes import CONTENT_DIR, ProgrammeError, load_programmes, parse_programme


def test_the_shipped_programmes_load():
    programmes = load_programmes()
    main = programmes["lindrende-behandling"]
    assert main.title == "Lindrende behandling og omsorg ved livets slutt"
    assert main.price_per_licence_ore == 30000 and main.vat_rate_percent == 25
    assert [m.title for m in main.modules] == [
        "Lindrende behandling og omsorg. Den profesjonelle yrkesutøveren",
        "Diagnoser, symptomer og symptomlindring",
        "Pårørende til pasienter som mottar lindrende behandling og omsorg",
        "Lindrende behandling og omsorg til døende pasienter",
    ]
    assert main.sessions[0].title == "Om opplæringspakken" and main.sessions[0].kind == "introduction"
    assert len(main.learning_goals) == 5 and main.mentor_uses_seat is False
    network = programmes["laeringsnettverk-parorende"]
    assert len(network.sessions) == 6 and network.price_per_licence_ore == 0
    assert [s.format for s in network.sessions].count("physical") == 3


def base() -> dict:
    return tomllib.loads((CONTENT_DIR / "lindrende-behandling.toml").read_text())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("title"), "missing 'title'"),
        (lambda d: d.update(id="Not An Id"), "'id' has an invalid value"),
        (lambda d: d["pricing"].update(price_per_licence_ore=-1), "price_per_licence_ore"),
        (lambda d: d["pricing"].update(price_per_licence_ore=300.0), "wrong type"),
        (lambda d: d["pricing"].update(currency="EUR"), "currency"),
        (lambda d: d["pricing"].update(vat_rate_percent=True), "boolean"),
        (lambda d: d["completion"].update(tagret_groups=[]), "unknown field"),
        (lambda d: d.update(extra="x"), "unknown field"),
        (lambda d: d["sessions"][1].update(after_module="emne-9"), "after_module"),
        (lambda d: d["sessions"][1].update(kind="party"), "'kind' has an invalid value"),
        (lambda d: d["modules"][0].update(min_score_share=1.5), "min_score_share"),
        (lambda d: d["modules"][1].update(id="emne-1"), "module ids must be unique"),
        (lambda d: d["contact"].update(email="not-an-email"), "email"),
        (lambda d: d.update(sessions=[]), "at least one session"),
    ],
)
def test_invalid_content_is_refused_with_the_field_named(mutate, message):
    data = base()
    mutate(data)
    with pytest.raises(ProgrammeError, match=message):
        parse_programme(data, "test.toml")


def test_file_name_must_match_the_id(tmp_path):
    (tmp_path / "other-name.toml").write_text((CONTENT_DIR / "lindrende-behandling.toml").read_text())
    with pytest.raises(ProgrammeError, match="file name"):
        load_programmes(tmp_path)


def test_broken_toml_is_refused(tmp_path):
    (tmp_path / "x.toml").write_text("title = ")
    with pytest.raises(ProgrammeError, match="not valid TOML"):
        load_programmes(tmp_path)
