from __future__ import annotations

import re
import shutil
import tomllib
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from kurspakke.programmes import (
    CONTENT_DIR,
    Certificate,
    Pacing,
    ProgrammeError,
    Registration,
    load_programmes,
    locate,
    parse_programme,
    path_label,
)

MAIN = "lindrende-behandling.toml"
NETWORK = "laeringsnettverk-parorende.toml"


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


def test_the_main_programme_has_its_new_fields():
    main = load_programmes()["lindrende-behandling"]
    assert [(m.number, m.completion, m.min_score_share) for m in main.modules] == [
        (n, "submitted", 0.0) for n in range(1, 5)
    ]
    groups = [s for s in main.sessions if s.kind == "group"]
    assert [s.after_module for s in groups] == ["emne-1", "emne-2", "emne-3", "emne-4"]
    # seeds/000: a group session of 1.5–2 h after each module.
    assert {(s.duration_min_minutes, s.duration_max_minutes, s.duration_minutes) for s in groups} == {(90, 120, 120)}
    assert all(s.physical_allowed and s.digital_allowed and s.date is None for s in main.sessions)
    assert main.pacing == Pacing(weeks_per_module_min=3, weeks_per_module_max=4, total_months=5)
    assert main.registration is None and main.registration_open(datetime.now(UTC))
    assert (main.completion.participant, main.completion.mentor) == (
        "all_module_quizzes_and_required_sessions",
        "led_every_session_of_group",
    )
    assert main.completion.modules == ("emne-1", "emne-2", "emne-3", "emne-4")
    assert main.partner == "USHT Nordland"
    cert = main.certificate
    assert isinstance(cert, Certificate)
    assert cert.title == "Kursbevis" and cert.issuer == "Høgskolen i Innlandet"
    assert cert.learning_goals == main.learning_goals and len(cert.learning_goals) == 5
    assert cert.module_titles == tuple(m.title for m in main.modules)
    assert cert.requirements and cert.participant_text and cert.mentor_text
    assert "ingen form for eksamen" in cert.note
    assert cert.signatories[0] == "Høgskolen i Innlandet"


def test_the_learning_network_needs_no_code_of_its_own():
    network = load_programmes()["laeringsnettverk-parorende"]
    assert network.kind == "network" and network.modules == ()
    assert network.registration == Registration(binding=True, deadline=date(2023, 8, 21), team_size=5)
    assert [s.date for s in network.sessions] == [
        date(2023, 9, 27),
        date(2023, 11, 7),
        date(2024, 1, 16),
        date(2024, 3, 5),
        date(2024, 5, 7),
        date(2024, 6, 11),
    ]
    assert [s.format for s in network.sessions] == ["physical", "digital", "digital", "physical", "digital", "physical"]
    physical = [s for s in network.sessions if s.format == "physical"]
    assert {s.place for s in physical} == {"Scandic Bergen City Hotell, Bergen"}
    assert all(s.place is None for s in network.sessions if s.format == "digital")
    assert all(s.kind == "network" and s.required for s in network.sessions)
    # Status reports between sessions: before every session but the first.
    assert [s.status_report_before for s in network.sessions] == [False] + [True] * 5
    assert network.pacing.total_months == 12
    assert network.completion.participant == "required_sessions" and network.completion.modules == ()
    assert network.certificate is not None and network.certificate.module_titles == ()


def test_the_registration_deadline_is_the_end_of_the_day_in_oslo():
    registration = Registration(binding=True, deadline=date(2023, 8, 21), team_size=5)
    closes = registration.closes_at()
    assert closes is not None and closes.astimezone(UTC) == datetime(2023, 8, 21, 22, 0, tzinfo=UTC)  # CEST
    assert registration.is_open(datetime(2023, 8, 21, 21, 59, 59, tzinfo=UTC))
    assert not registration.is_open(datetime(2023, 8, 21, 22, 0, tzinfo=UTC))
    assert Registration(deadline=None).is_open(datetime(2099, 1, 1, tzinfo=UTC))


# --- refusals with file and line --------------------------------------------------------------------------------


def base() -> dict:
    return tomllib.loads((CONTENT_DIR / MAIN).read_text())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("title"), "test.toml: title is missing"),
        (lambda d: d.update(id="Not An Id"), "id has an invalid value: 'Not An Id'"),
        (lambda d: d["pricing"].update(price_per_licence_ore=-1), "pricing.price_per_licence_ore has an invalid"),
        (lambda d: d["pricing"].update(price_per_licence_ore=300.0), "wrong type"),
        (lambda d: d["pricing"].update(currency="EUR"), "currency"),
        (lambda d: d["pricing"].update(vat_rate_percent=True), "boolean"),
        (lambda d: d["completion"].update(tagret_groups=[]), "completion.tagret_groups is an unknown field"),
        (lambda d: d.update(extra="x"), "unknown field"),
        (lambda d: d["sessions"][1].update(after_module="emne-9"), "sessions[1].after_module 'emne-9' is not a module"),
        (lambda d: d["sessions"][1].update(kind="party"), "sessions[1].kind has an invalid value: 'party'"),
        (lambda d: d["modules"][0].update(min_score_share=1.5), "min_score_share"),
        (lambda d: d["modules"][1].update(id="emne-1"), "modules[1].id 'emne-1' is used twice"),
        (lambda d: d["contact"].update(email="not-an-email"), "email"),
        (lambda d: d.update(sessions=[]), "at least one session"),
        (lambda d: d["sessions"][1].update(duration_minutes=0), "sessions[1].duration_minutes must be between 1"),
        (lambda d: d["sessions"][1].update(duration_minutes=60), "outside duration_min_minutes"),
        (lambda d: d["sessions"][1].update(duration_min_minutes=150), "less than duration_min_minutes"),
        (lambda d: d["modules"][0].update(completion="passed"), "modules[0].completion has an invalid value"),
        (lambda d: d["modules"][0].update(min_score_share=0.5), 'modules[0].completion is "submitted" but'),
        (lambda d: d["modules"][0].update(completion="score_share"), "not above 0"),
        (lambda d: d["completion"].update(participant="vibes"), "completion.participant has an invalid value"),
        (lambda d: d["completion"].update(mentor="vibes"), "completion.mentor has an invalid value"),
        (lambda d: d["pacing"].update(weeks_per_module_min=5), "less than weeks_per_module_min"),
        (lambda d: d["certificate"].pop("requirements"), "certificate.requirements is missing"),
        (lambda d: d["certificate"].update(modules=["emne-7"]), "certificate.modules[0] 'emne-7' is not a module"),
        (lambda d: d["sessions"][0].update(starts_at="10:00"), "a time of day needs a fixed date"),
        (lambda d: d["sessions"][0].update(format="digital", place="Hotell"), "place is given for a digital"),
        (lambda d: d.update(registration={"deadline": "21.08.2023"}), "registration.deadline has an invalid value"),
        (lambda d: d.update(learning_goals=["ok", ""]), "learning_goals[1] must be a non-empty string"),
    ],
)
def test_invalid_content_is_refused_with_the_field_named(mutate, message):
    data = base()
    mutate(data)
    with pytest.raises(ProgrammeError, match=re.escape(message)):
        parse_programme(data, "test.toml")


def test_a_score_share_alone_means_score_share():
    data = base()
    data["modules"][2].pop("completion")
    data["modules"][2]["min_score_share"] = 0.8
    programme = parse_programme(data, "test.toml")
    assert (programme.modules[2].completion, programme.modules[2].min_score_share) == ("score_share", 0.8)
    assert programme.modules[0].completion == "submitted"


def test_dated_sessions_with_times_get_their_duration():
    data = tomllib.loads((CONTENT_DIR / NETWORK).read_text())
    data["sessions"][0].update(starts_at="09:30", ends_at="15:30")
    session = parse_programme(data, "n.toml").sessions[0]
    assert (session.starts_at, session.ends_at, session.duration_minutes) == (time(9, 30), time(15, 30), 360)
    data["sessions"][0].update(duration_minutes=300)
    with pytest.raises(ProgrammeError, match=re.escape("sessions[0].duration_minutes 300 does not match")):
        parse_programme(data, "n.toml")


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line containing ``needle``."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[occurrence - 1]


def replace_nth(text: str, old: str, new: str, occurrence: int = 1) -> str:
    start = -1
    for _ in range(occurrence):
        start = text.index(old, start + 1)
    return text[:start] + new + text[start + len(old) :]


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """A content directory with both shipped programmes."""
    for name in (MAIN, NETWORK):
        shutil.copy(CONTENT_DIR / name, tmp_path / name)
    return tmp_path


def refused(directory: Path) -> str:
    with pytest.raises(ProgrammeError) as info:
        load_programmes(directory)  # raises: nothing is loaded, not even the valid file
    return str(info.value)


def edit(directory: Path, name: str, change) -> str:
    path = directory / name
    path.write_text(change(path.read_text()))
    return path.read_text()


def test_a_session_after_a_module_that_does_not_exist_names_file_and_line(content):
    text = edit(content, MAIN, lambda t: t.replace('after_module = "emne-3"', 'after_module = "emne-9"'))
    line = line_of(text, 'after_module = "emne-9"')
    assert refused(content) == (f"{MAIN}:{line}: sessions[3].after_module 'emne-9' is not a module of this programme")


def test_a_missing_module_names_file_and_line(content):
    # Module 3 is taken out: module 4 is then the third, and its number says one is missing.
    def drop_module_3(t: str) -> str:
        start = t.index('[[modules]]\nid = "emne-3"')
        end = t.index("[[modules]]", start + 1)
        return t[:start] + t[end:]

    text = edit(content, MAIN, drop_module_3)
    line = line_of(text, "number = 4")
    assert refused(content) == (
        f"{MAIN}:{line}: modules[2].number is 4; modules are numbered 1, 2, … in order (module 3 is missing)"
    )


def test_a_module_listed_in_completion_that_is_missing_names_file_and_line(content):
    text = edit(
        content,
        MAIN,
        lambda t: t.replace(
            'mentor = "led_every_session_of_group"\n',
            'mentor = "led_every_session_of_group"\nmodules = [\n  "emne-1",\n  "emne-5",\n]\n',
            1,
        ),
    )
    line = line_of(text, '"emne-5"')
    assert refused(content) == f"{MAIN}:{line}: completion.modules[1] 'emne-5' is not a module of this programme"


def test_a_duplicate_key_names_file_and_line(content):
    text = edit(content, MAIN, lambda t: replace_nth(t, 'title = "Samling 2"\n', 'title = "Samling 2"\ntitle = "X"\n'))
    line = line_of(text, 'title = "X"')
    message = refused(content)
    assert message.startswith(f"{MAIN}:{line}: not valid TOML: "), message
    assert f"(at line {line}," in message


def test_a_duplicate_table_names_file_and_line(content):
    text = edit(content, NETWORK, lambda t: t + '\n[pricing]\ncurrency = "NOK"\n')
    assert refused(content).startswith(f"{NETWORK}:{len(text.splitlines()) - 1}: not valid TOML: ")


def test_a_duplicate_at_the_end_of_the_file_names_its_last_line(tmp_path):
    (tmp_path / "x.toml").write_text("a = 1\na = 2")
    assert refused(tmp_path).startswith("x.toml:2: not valid TOML: ")


def test_broken_toml_is_refused(tmp_path):
    (tmp_path / "x.toml").write_text("id = 'x'\ntitle = \n")
    assert refused(tmp_path).startswith("x.toml:2: not valid TOML: ")


def test_a_duplicate_module_id_names_the_second_one(content):
    text = edit(content, MAIN, lambda t: t.replace('id = "emne-2"', 'id = "emne-1"'))
    line = line_of(text, 'id = "emne-1"', occurrence=2)
    assert refused(content) == (
        f"{MAIN}:{line}: modules[1].id 'emne-1' is used twice: module ids must be unique (first at index 0)"
    )


def test_a_duplicate_session_id_names_the_second_one(content):
    text = edit(content, NETWORK, lambda t: t.replace('id = "samling-5"', 'id = "samling-2"'))
    line = line_of(text, 'id = "samling-2"', occurrence=2)
    assert refused(content) == (
        f"{NETWORK}:{line}: sessions[4].id 'samling-2' is used twice: session ids must be unique (first at index 1)"
    )


@pytest.mark.parametrize("minutes", [-30, 0])
def test_a_negative_or_zero_duration_names_file_and_line(content, minutes):
    text = edit(content, MAIN, lambda t: replace_nth(t, "duration_minutes = 120", f"duration_minutes = {minutes}", 3))
    line = line_of(text, f"duration_minutes = {minutes}")
    assert refused(content) == (
        f"{MAIN}:{line}: sessions[3].duration_minutes must be between 1 and 600 minutes, not {minutes}"
    )


def test_a_group_session_without_its_module_names_its_header(content):
    text = edit(content, MAIN, lambda t: t.replace('after_module = "emne-2"\n', ""))
    header = line_of(text, 'id = "samling-2"') - 1
    assert text.splitlines()[header - 1] == "[[sessions]]"
    assert refused(content) == f"{MAIN}:{header}: sessions[2].after_module is missing: a group session follows a module"


def test_a_missing_field_falls_back_to_the_table_header(content):
    text = edit(content, NETWORK, lambda t: t.replace('title = "Samling 4"\n', ""))
    header = line_of(text, 'id = "samling-4"') - 1
    assert refused(content) == f"{NETWORK}:{header}: sessions[3].title is missing"


def test_a_missing_top_level_field_has_no_line(content):
    edit(content, NETWORK, lambda t: t.replace('version = "2023.1"\n', ""))
    assert refused(content) == f"{NETWORK}: version is missing"


def test_an_unknown_field_names_its_line(content):
    text = edit(content, NETWORK, lambda t: t.replace('place = "Scandic', 'plaec = "Scandic', 1))
    line = line_of(text, "plaec =")
    assert refused(content) == f"{NETWORK}:{line}: sessions[0].plaec is an unknown field (unknown field(s): plaec)"


def test_a_wrong_deadline_names_its_line(content):
    text = edit(content, NETWORK, lambda t: t.replace('deadline = "2023-08-21"', 'deadline = "21. august 2023"'))
    line = line_of(text, "deadline =")
    assert refused(content) == (
        f"{NETWORK}:{line}: registration.deadline has an invalid value: '21. august 2023'; expected a date like "
        "2023-08-21"
    )


def test_the_error_carries_source_line_and_path(content):
    text = edit(content, MAIN, lambda t: t.replace('after_module = "emne-3"', 'after_module = "emne-9"'))
    with pytest.raises(ProgrammeError) as info:
        load_programmes(content)
    assert (info.value.source, info.value.line, info.value.path) == (
        MAIN,
        line_of(text, "emne-9"),
        ("sessions", 3, "after_module"),
    )


def test_file_name_must_match_the_id(tmp_path):
    (tmp_path / "other-name.toml").write_text((CONTENT_DIR / MAIN).read_text())
    with pytest.raises(ProgrammeError, match=r"^other-name\.toml:3: file name must be the programme id"):
        load_programmes(tmp_path)


# --- the locator -------------------------------------------------------------------------------------------------

SAMPLE = '''\
# a comment [not] = a table
title = "x"            # line 2
"quoted key" = 1
site.owner.name = "a"  # dotted key, line 4
notes = """
[not a table]
fake = 1
"""
goals = [
  "one",   # line 10
  'two, with a comma', "three",
]
point = { x = 1, y = [2, 3] }  # line 13

[pricing]
currency = "NOK"       # line 16

[[sessions]]           # line 18
id = "a"

[[sessions]]           # line 21
id = "b"
[sessions.extra]       # line 23
note = 'c'             # line 24

[[sessions.parts]]     # line 26
x = 1
[[sessions.parts]]     # line 28
x = 2
'''


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("title",), 2),
        (("quoted key",), 3),
        (("site", "owner", "name"), 4),
        (("notes",), 5),
        (("goals",), 9),
        (("goals", 0), 10),
        (("goals", 1), 11),
        (("goals", 2), 11),
        (("point", "y"), 13),
        (("point", "y", 1), 13),
        (("pricing",), 15),
        (("pricing", "currency"), 16),
        (("pricing", "vat_rate_percent"), 15),  # missing: the table's header
        (("sessions",), 18),
        (("sessions", 0), 18),
        (("sessions", 0, "id"), 19),
        (("sessions", 1), 21),
        (("sessions", 1, "id"), 22),
        (("sessions", 1, "title"), 21),  # missing: the [[sessions]] header
        (("sessions", 1, "extra", "note"), 24),
        (("sessions", 1, "parts", 0, "x"), 27),
        (("sessions", 1, "parts", 1, "x"), 29),
        (("sessions", 1, "parts", 1), 28),
        (("fake",), None),  # inside a multi-line string: not a key
        (("not a table",), None),
        (("missing",), None),  # a missing top-level key has no line
    ],
)
def test_locate(path, line):
    tomllib.loads(SAMPLE)  # the sample is valid TOML
    assert locate(SAMPLE, path) == line


def test_locate_never_fails_on_text_it_cannot_follow():
    assert locate("a = [1,\n", ("a",)) == 1
    assert locate("", ("a",)) is None


def test_path_label():
    assert path_label(("sessions", 2, "after_module")) == "sessions[2].after_module"
    assert path_label(("pricing", "currency")) == "pricing.currency"
    assert path_label(()) == ""
