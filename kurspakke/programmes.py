"""Programmes are content files (content/*.toml), validated on load. Adding a programme adds a file, not code.

A file describes one programme (DESIGN.md §2): identity, contact and price; its modules with the rule that
completes each one; its sessions (which module each follows, how long it lasts, physical or digital, fixed date,
time and place where the programme has them); pacing; registration (binding, deadline, team size) for programmes
one registers for; the completion rules of participants and mentors; and the certificate's requirements and texts.

Every problem is a ``ProgrammeError`` whose message starts with the file name and, where the problem has a place
in the file, the line: ``lindrende-behandling.toml:57: sessions[2].after_module 'emne-9' is not a module of this
programme``. tomllib gives no positions, so ``locate`` maps a key path such as ``("sessions", 2, "after_module")``
to its line in the source text; a key that is not in the file (a missing field) falls back to the line of its
table's header, then to no line. Nothing is loaded when any file is invalid.

Decisions:
- A module's completion is ``"submitted"`` (the quiz handed in) or ``"score_share"`` (handed in and scored at least
  ``min_score_share`` of the quiz's points). Without the ``completion`` key a share > 0 means ``"score_share"``,
  otherwise ``"submitted"``; an explicit ``"submitted"`` with a share > 0, or ``"score_share"`` without one, is a
  contradiction and refused. ``Module.min_score_share`` stays the number progress code compares with.
- A session's ``duration_minutes`` is its planned length; ``duration_min_minutes``/``duration_max_minutes`` give the
  range a mentor may schedule (the main programme's group sessions: 90–120). When only a range is given, the
  planned length is its maximum; a session with start and end times gets their difference.
- A registration deadline is a date: registration closes at the end of that day in Europe/Oslo
  (``Registration.closes_at``).
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import date as Date
from datetime import time as Time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"
SCHEMA_VERSION = 1
PROGRAMME_KINDS = {"course", "network"}
SESSION_KINDS = {"introduction", "group", "network"}
SESSION_FORMATS = {"physical", "digital", "either"}
MODULE_COMPLETIONS = {"submitted", "score_share"}
# Participant rules: every (listed) module's quiz completed and every required session attended; only the
# required sessions (a learning network has no modules); only the quizzes.
PARTICIPANT_RULES = {"all_module_quizzes_and_required_sessions", "required_sessions", "all_module_quizzes"}
PARTICIPANT_RULES_WITH_QUIZZES = {"all_module_quizzes_and_required_sessions", "all_module_quizzes"}
PARTICIPANT_RULES_WITH_SESSIONS = {"all_module_quizzes_and_required_sessions", "required_sessions"}
# Mentor rules: led every session of their group (DESIGN.md §2); attended every required session (a network's
# team leader); no certificate for mentors.
MENTOR_RULES = {"led_every_session_of_group", "attended_required_sessions", "none"}
MAX_SESSION_MINUTES = 600
OSLO = ZoneInfo("Europe/Oslo")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")

KeyPath = tuple[str | int, ...]


class ProgrammeError(ValueError):
    """A content file is invalid. The message names the file, the line where known, and the field:
    ``<file>:<line>: <path> <problem>``. ``source``, ``line`` and ``path`` carry the same for code and tests."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None, path: KeyPath = ()) -> None:
        super().__init__(message)
        self.source = source
        self.line = line
        self.path = path


@dataclass(frozen=True)
class Module:
    id: str
    number: int
    title: str
    min_score_share: float
    completion: str = "submitted"  # "submitted" | "score_share" (then min_score_share > 0)


@dataclass(frozen=True)
class Session:
    id: str
    title: str
    kind: str
    required: bool
    after_module: str | None = None
    format: str = "either"  # the formats allowed: "physical", "digital" or "either"
    date: Date | None = None  # a fixed date (a learning network's sessions); None: the group schedules it
    duration_minutes: int | None = None  # the planned length
    duration_min_minutes: int | None = None  # the range a mentor may schedule
    duration_max_minutes: int | None = None
    starts_at: Time | None = None  # local time (Europe/Oslo) on ``date``
    ends_at: Time | None = None
    place: str | None = None  # where a physical session is held (e.g. the hotel), when the programme fixes it
    status_report_before: bool = False  # teams hand in a status report before this session

    @property
    def physical_allowed(self) -> bool:
        return self.format in {"physical", "either"}

    @property
    def digital_allowed(self) -> bool:
        return self.format in {"digital", "either"}


@dataclass(frozen=True)
class Pacing:
    """DESIGN.md §2: used for reminders and "behind schedule" flags. 0 means not set."""

    weeks_per_module_min: int = 0
    weeks_per_module_max: int = 0
    total_months: int = 0


@dataclass(frozen=True)
class Registration:
    """A programme one registers for (a learning network): binding or not, until a deadline, teams of about
    ``team_size`` people per organisation (a guide, not a limit)."""

    binding: bool = False
    deadline: Date | None = None
    team_size: int | None = None

    def closes_at(self) -> datetime | None:
        """The end of the deadline day in Europe/Oslo (as an aware datetime), or None without a deadline."""
        if self.deadline is None:
            return None
        return datetime.combine(self.deadline + timedelta(days=1), Time(0), tzinfo=OSLO)

    def is_open(self, now: datetime) -> bool:
        closes = self.closes_at()
        if closes is None:
            return True
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return now < closes


@dataclass(frozen=True)
class CompletionRules:
    participant: str
    mentor: str
    modules: tuple[str, ...] = ()  # the modules whose quiz the participant rule requires (default: all)


@dataclass(frozen=True)
class Certificate:
    """The certificate (kursbevis): what it takes, and its texts. ``learning_goals`` and ``module_titles`` are the
    lines printed (by default the programme's goals and all its modules' titles, in order)."""

    title: str
    requirements: str
    participant_text: str
    mentor_text: str
    learning_goals_heading: str
    learning_goals: tuple[str, ...]
    modules_heading: str
    module_titles: tuple[str, ...]
    issuer: str
    signatories: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Programme:
    id: str
    version: str
    title: str
    kind: str
    issuer: str
    description: str
    contact_name: str
    contact_email: str
    price_per_licence_ore: int
    vat_rate_percent: int
    mentor_uses_seat: bool
    seat_valid_months: int
    unassigned_seats_expire_months: int | None
    learning_goals: tuple[str, ...]
    target_groups: tuple[str, ...]
    modules: tuple[Module, ...]
    sessions: tuple[Session, ...]
    source: str
    pacing: Pacing = field(default_factory=Pacing)
    registration: Registration | None = None
    completion: CompletionRules = field(
        default_factory=lambda: CompletionRules(
            "all_module_quizzes_and_required_sessions", "led_every_session_of_group"
        )
    )
    certificate: Certificate | None = None
    partner: str | None = None

    def module(self, module_id: str) -> Module | None:
        return next((m for m in self.modules if m.id == module_id), None)

    def registration_open(self, now: datetime) -> bool:
        return self.registration is None or self.registration.is_open(now)


# --- locating a key in the source text ------------------------------------------------------------------------------


class _Scanner:
    """A forgiving position scanner over TOML text that tomllib has accepted: records the line of every key,
    array element and table header by its key path."""

    _BARE = re.compile(r"[A-Za-z0-9_-]+")

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}
        self.headers: dict[KeyPath, int] = {}
        self.counts: dict[KeyPath, int] = {}

    def run(self) -> None:
        current: KeyPath = ()
        text = self.text
        while True:
            self._skip(newlines=True)
            if self.i >= len(text):
                return
            if text.startswith("[[", self.i):
                self.i += 2
                keys = self._keys()
                self._expect("]]")
                full = self._resolve(keys)
                self.lines.setdefault(full, self.line)
                index = self.counts.get(full, -1) + 1
                self.counts[full] = index
                current = (*full, index)
                self.headers[current] = self.lines.setdefault(current, self._header_line)
            elif text[self.i] == "[":
                self.i += 1
                keys = self._keys()
                self._expect("]")
                current = self._resolve(keys)
                self.headers[current] = self.lines.setdefault(current, self._header_line)
            else:
                line = self.line
                keys = self._keys()
                path = (*current, *keys)
                self.lines.setdefault(path, line)
                self._expect("=")
                self._value(path)
            self._skip_to_eol()

    @property
    def _header_line(self) -> int:
        return self.line

    def _resolve(self, keys: tuple[str, ...]) -> KeyPath:
        path: KeyPath = ()
        for key in keys[:-1]:  # an array of tables on the way means its last element
            path = (*path, key)
            if path in self.counts:
                path = (*path, self.counts[path])
        return (*path, keys[-1])

    def _skip(self, *, newlines: bool) -> None:
        text = self.text
        while self.i < len(text):
            c = text[self.i]
            if c in " \t\r":
                self.i += 1
            elif c == "\n" and newlines:
                self.i += 1
                self.line += 1
            elif c == "#" and newlines:
                while self.i < len(text) and text[self.i] != "\n":
                    self.i += 1
            else:
                return

    def _skip_to_eol(self) -> None:
        while self.i < len(self.text) and self.text[self.i] != "\n":
            self.i += 1

    def _expect(self, token: str) -> None:
        self._skip(newlines=False)
        if not self.text.startswith(token, self.i):
            raise ValueError(f"expected {token!r} at line {self.line}")
        self.i += len(token)

    def _keys(self) -> tuple[str, ...]:
        keys: list[str] = []
        while True:
            self._skip(newlines=False)
            c = self.text[self.i]
            if c in "\"'":
                start = self.i
                self._string()
                keys.append(tomllib.loads(f"k = {self.text[start : self.i]}")["k"])
            else:
                match = self._BARE.match(self.text, self.i)
                if match is None:
                    raise ValueError(f"no key at line {self.line}")
                keys.append(match.group())
                self.i = match.end()
            self._skip(newlines=False)
            if self.i < len(self.text) and self.text[self.i] == ".":
                self.i += 1
                continue
            return tuple(keys)

    def _string(self) -> None:
        text = self.text
        quote = text[self.i]
        triple = text.startswith(quote * 3, self.i)
        end = quote * 3 if triple else quote
        self.i += len(end)
        while self.i < len(text):
            c = text[self.i]
            if c == "\\" and quote == '"':
                if text[self.i + 1 : self.i + 2] == "\n":
                    self.line += 1
                self.i += 2
                continue
            if text.startswith(end, self.i):
                self.i += len(end)
                while triple and self.i < len(text) and text[self.i] == quote:  # """a"""" ends with a quote
                    self.i += 1
                return
            if c == "\n":
                self.line += 1
            self.i += 1

    def _value(self, path: KeyPath) -> None:
        self._skip(newlines=False)
        text = self.text
        c = text[self.i]
        if c in "\"'":
            self._string()
        elif c == "[":
            self.i += 1
            index = 0
            while True:
                self._skip(newlines=True)
                if text[self.i] == "]":
                    self.i += 1
                    return
                self.lines.setdefault((*path, index), self.line)
                self._value((*path, index))
                self._skip(newlines=True)
                if text[self.i] == ",":
                    self.i += 1
                    index += 1
                elif text[self.i] != "]":
                    raise ValueError(f"unexpected {text[self.i]!r} in an array at line {self.line}")
        elif c == "{":
            self.i += 1
            while True:
                self._skip(newlines=False)
                if text[self.i] == "}":
                    self.i += 1
                    return
                line = self.line
                keys = self._keys()
                self.lines.setdefault((*path, *keys), line)
                self._expect("=")
                self._value((*path, *keys))
                self._skip(newlines=False)
                if text[self.i] == ",":
                    self.i += 1
                elif text[self.i] != "}":
                    raise ValueError(f"unexpected {text[self.i]!r} in an inline table at line {self.line}")
        else:
            while self.i < len(text) and text[self.i] not in ",]}\n#":
                self.i += 1


class Locator:
    """Lines of key paths in one TOML text (see ``locate``)."""

    def __init__(self, text: str) -> None:
        scanner = _Scanner(text)
        # Keep what was found: a line is a help, never a reason to fail.
        with contextlib.suppress(ValueError, IndexError, tomllib.TOMLDecodeError):
            scanner.run()
        self.lines = scanner.lines
        self.headers = scanner.headers

    def exact(self, path: Iterable[str | int]) -> int | None:
        return self.lines.get(tuple(path))

    def line_of(self, path: Iterable[str | int]) -> int | None:
        """The line of ``path``; else of its nearest enclosing key or table header that is in the text."""
        key = tuple(path)
        if key in self.lines:
            return self.lines[key]
        for n in range(len(key) - 1, 0, -1):
            prefix = key[:n]
            if prefix in self.headers:
                return self.headers[prefix]
            if prefix in self.lines:
                return self.lines[prefix]
        return None


def locate(text: str, path: Iterable[str | int]) -> int | None:
    """The 1-based line of the key path (``("sessions", 2, "after_module")``, ``("pricing", "currency")``,
    ``("learning_goals", 3)``) in TOML ``text``, falling back to the enclosing table's header; None when neither is
    in the text."""
    return Locator(text).line_of(path)


def path_label(path: Iterable[str | int]) -> str:
    """``("sessions", 2, "after_module")`` → ``sessions[2].after_module``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# --- validation ------------------------------------------------------------------------------------------------------


class _Context:
    def __init__(self, source: str, text: str | None) -> None:
        self.source = source
        self.locator = Locator(text) if text is not None else None

    def error(self, path: KeyPath, problem: str, *, exact: bool = False) -> ProgrammeError:
        line = None
        if self.locator is not None and path:
            line = self.locator.exact(path) if exact else self.locator.line_of(path)
        where = f"{self.source}:{line}" if line is not None else self.source
        label = path_label(path)
        return ProgrammeError(
            f"{where}: {label} {problem}" if label else f"{where}: {problem}", source=self.source, line=line, path=path
        )


def _type_name(typ: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list"}
    names.update({dict: "a table", Date: "a date", Time: "a time"})
    types = typ if isinstance(typ, tuple) else (typ,)
    return " or ".join(names.get(t, t.__name__) for t in types)


class _Reader:
    def __init__(self, data: Mapping[str, Any], ctx: _Context, path: KeyPath = ()) -> None:
        self.data = data
        self.ctx = ctx
        self.path = path
        self.used: set[str] = set()

    def fail(self, problem: str, key: str | int | None = None) -> ProgrammeError:
        return self.ctx.error(self.path if key is None else (*self.path, key), problem)

    def has(self, key: str) -> bool:
        return key in self.data

    def get(
        self,
        key: str,
        typ: type | tuple[type, ...],
        *,
        default: Any = ...,
        check: Callable[[Any], Any] | None = None,
        expected: str = "",
    ) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self.fail("is missing", key)
            return default
        value = self.data[key]
        wants_bool = typ is bool or (isinstance(typ, tuple) and bool in typ)
        if isinstance(value, bool) and not wants_bool:
            raise self.fail(f"must be {_type_name(typ)}, not a boolean", key)
        if isinstance(value, datetime) and Date in (typ if isinstance(typ, tuple) else (typ,)):
            raise self.fail("must be a date without a time of day", key)
        if not isinstance(value, typ):
            raise self.fail(f"has the wrong type ({type(value).__name__}); expected {_type_name(typ)}", key)
        if isinstance(value, str) and not value.strip():
            raise self.fail("is empty", key)
        if check is not None and not check(value):
            hint = f"; expected {expected}" if expected else ""
            raise self.fail(f"has an invalid value: {value!r}{hint}", key)
        return value

    def strings(self, key: str, *, default: Any = ...) -> tuple[str, ...]:
        values = self.get(key, list, default=default)
        if values is None:
            return ()
        for i, value in enumerate(values):
            if not isinstance(value, str) or not value.strip():
                raise self.ctx.error((*self.path, key, i), "must be a non-empty string")
        return tuple(values)

    def table(self, key: str, *, optional: bool = False) -> _Reader | None:
        value = self.get(key, dict, default=None if optional else ...)
        return None if value is None else _Reader(value, self.ctx, (*self.path, key))

    def must_table(self, key: str) -> _Reader:
        reader = self.table(key)
        assert reader is not None
        return reader

    def tables(self, key: str, *, default: Any = ...) -> list[_Reader]:
        values = self.get(key, list, default=default)
        readers: list[_Reader] = []
        for i, value in enumerate(values or []):
            if not isinstance(value, dict):
                raise self.ctx.error((*self.path, key, i), "must be a table")
            readers.append(_Reader(value, self.ctx, (*self.path, key, i)))
        return readers

    def done(self) -> None:
        unknown = [k for k in self.data if k not in self.used]
        if unknown:
            locator = self.ctx.locator
            first = min(unknown, key=lambda k: (locator.exact((*self.path, k)) or 0) if locator else 0)
            names = ", ".join(sorted(unknown))
            raise self.ctx.error((*self.path, first), f"is an unknown field (unknown field(s): {names})")


def _date(r: _Reader, key: str) -> Date | None:
    raw = r.get(key, (str, Date), default=None)
    if isinstance(raw, str):
        try:
            return Date.fromisoformat(raw)
        except ValueError:
            raise r.fail(f"has an invalid value: {raw!r}; expected a date like 2023-08-21", key) from None
    return raw


def _time(r: _Reader, key: str) -> Time | None:
    raw = r.get(key, (str, Time), default=None)
    if isinstance(raw, str):
        try:
            raw = Time.fromisoformat(raw)
        except ValueError:
            raise r.fail(f"has an invalid value: {raw!r}; expected a time like 10:00", key) from None
    if raw is not None and raw.tzinfo is not None:
        raise r.fail("must be a local time (Europe/Oslo) without an offset", key)
    return raw


def _minutes(r: _Reader, key: str) -> int | None:
    value = r.get(key, int, default=None)
    if value is not None and not 0 < value <= MAX_SESSION_MINUTES:
        raise r.fail(f"must be between 1 and {MAX_SESSION_MINUTES} minutes, not {value}", key)
    return value


def _module(m: _Reader) -> Module:
    module_id = m.get("id", str, check=_ID.match, expected="lower-case letters, digits and hyphens")
    number = m.get("number", int, check=lambda v: v >= 1, expected="1 or more")
    title = m.get("title", str)
    share = float(
        m.get("min_score_share", (int, float), default=0.0, check=lambda v: 0 <= v <= 1, expected="between 0 and 1")
    )
    completion = m.get(
        "completion", str, default=None, check=MODULE_COMPLETIONS.__contains__, expected='"submitted" or "score_share"'
    )
    if completion is None:
        completion = "score_share" if share > 0 else "submitted"
    elif completion == "submitted" and share > 0:
        raise m.fail(
            f'is "submitted" but min_score_share is {share:g}: use "score_share", or remove the share', "completion"
        )
    elif completion == "score_share" and share <= 0:
        raise m.fail('is "score_share" but min_score_share is not above 0', "completion")
    m.done()
    return Module(id=module_id, number=number, title=title, min_score_share=share, completion=completion)


def _session(s: _Reader, module_ids: list[str]) -> Session:
    session_id = s.get("id", str, check=_ID.match, expected="lower-case letters, digits and hyphens")
    title = s.get("title", str)
    kind = s.get("kind", str, check=SESSION_KINDS.__contains__, expected=" or ".join(sorted(SESSION_KINDS)))
    required = s.get("required", bool, default=True)
    after = s.get("after_module", str, default=None)
    if after is not None and after not in module_ids:
        raise s.fail(f"{after!r} is not a module of this programme", "after_module")
    if kind == "group" and module_ids and after is None:
        raise s.fail("is missing: a group session follows a module", "after_module")
    fmt = s.get(
        "format", str, default="either", check=SESSION_FORMATS.__contains__, expected="physical, digital or either"
    )
    day = _date(s, "date")
    starts, ends = _time(s, "starts_at"), _time(s, "ends_at")
    if (starts is not None or ends is not None) and day is None:
        raise s.fail("a time of day needs a fixed date", "starts_at" if starts is not None else "ends_at")
    if starts is not None and ends is not None and ends <= starts:
        raise s.fail(f"{ends.isoformat('minutes')} is not after starts_at {starts.isoformat('minutes')}", "ends_at")
    place = s.get("place", str, default=None)
    if place is not None and fmt == "digital":
        raise s.fail("is given for a digital session", "place")
    duration = _minutes(s, "duration_minutes")
    low, high = _minutes(s, "duration_min_minutes"), _minutes(s, "duration_max_minutes")
    if low is not None and high is not None and low > high:
        raise s.fail(f"{high} is less than duration_min_minutes {low}", "duration_max_minutes")
    if starts is not None and ends is not None:
        span = (datetime.combine(Date.min, ends) - datetime.combine(Date.min, starts)).seconds // 60
        if duration is not None and duration != span:
            raise s.fail(f"{duration} does not match starts_at–ends_at ({span} minutes)", "duration_minutes")
        duration = duration or span
    if duration is None and (high is not None or low is not None):
        duration = high if high is not None else low
    if duration is not None and ((low is not None and duration < low) or (high is not None and duration > high)):
        raise s.fail(f"{duration} is outside duration_min_minutes–duration_max_minutes", "duration_minutes")
    report = s.get("status_report_before", bool, default=False)
    s.done()
    return Session(
        id=session_id,
        title=title,
        kind=kind,
        required=required,
        after_module=after,
        format=fmt,
        date=day,
        duration_minutes=duration,
        duration_min_minutes=low,
        duration_max_minutes=high,
        starts_at=starts,
        ends_at=ends,
        place=place,
        status_report_before=report,
    )


def _unique(readers: list[_Reader], ids: list[str], what: str) -> None:
    seen: dict[str, int] = {}
    for i, value in enumerate(ids):
        if value in seen:
            raise readers[i].fail(
                f"{value!r} is used twice: {what} ids must be unique (first at index {seen[value]})", "id"
            )
        seen[value] = i


def parse_programme(data: dict[str, Any], source: str, text: str | None = None) -> Programme:
    """Validate one programme's data. Raises ProgrammeError naming the first problem; with the file's ``text``
    the message names the line too."""
    ctx = _Context(source, text)
    r = _Reader(data, ctx)
    if r.get("schema_version", int) != SCHEMA_VERSION:
        raise r.fail(f"must be {SCHEMA_VERSION}", "schema_version")
    pid = r.get("id", str, check=_ID.match, expected="lower-case letters, digits and hyphens")
    version = r.get("version", str)
    title = r.get("title", str)
    kind = r.get("kind", str, check=PROGRAMME_KINDS.__contains__, expected="course or network")
    issuer = r.get("issuer", str)
    description = r.get("description", str, default="")
    partner = r.get("partner", str, default=None)
    learning_goals = r.strings("learning_goals", default=[])
    target_groups = r.strings("target_groups", default=[])

    contact = r.must_table("contact")
    contact_name = contact.get("name", str)
    contact_email = contact.get("email", str, check=_EMAIL.match, expected="an e-mail address")
    contact.done()

    pricing = r.must_table("pricing")
    price = pricing.get("price_per_licence_ore", int, check=lambda v: v >= 0, expected="0 or more øre")
    vat = pricing.get("vat_rate_percent", int, check=lambda v: 0 <= v <= 100, expected="0–100")
    pricing.get("currency", str, check=lambda v: v == "NOK", expected="NOK (the currency must be NOK)")
    mentor_uses_seat = pricing.get("mentor_uses_seat", bool, default=False)
    # DESIGN.md §2: a seat is valid for a set time from its assignment (default 12 months).
    seat_valid_months = pricing.get(
        "seat_valid_months", int, default=12, check=lambda v: 1 <= v <= 120, expected="1–120"
    )
    # Optional: seats bought but not assigned within this many months of the order's confirmation lapse.
    unassigned_expire = pricing.get(
        "unassigned_seats_expire_months", int, default=None, check=lambda v: 1 <= v <= 120, expected="1–120"
    )
    pricing.done()

    pacing = _pacing(r.table("pacing", optional=True))
    registration = _registration(r.table("registration", optional=True))

    module_readers = r.tables("modules", default=[])
    modules = [_module(m) for m in module_readers]
    _unique(module_readers, [m.id for m in modules], "module")
    for i, module in enumerate(modules):
        if module.number != i + 1:
            missing = "" if module.number < i + 1 else f" (module {i + 1} is missing)"
            raise module_readers[i].fail(
                f"is {module.number}; modules are numbered 1, 2, … in order{missing}", "number"
            )
    module_ids = [m.id for m in modules]

    session_readers = r.tables("sessions")
    sessions = [_session(s, module_ids) for s in session_readers]
    if not sessions:
        raise r.fail("a programme needs at least one session", "sessions")
    _unique(session_readers, [s.id for s in sessions], "session")

    completion = _completion(r.must_table("completion"), module_ids)
    certificate = _certificate(
        r.table("certificate", optional=True), modules, learning_goals=learning_goals, issuer=issuer
    )
    r.done()
    return Programme(
        id=pid,
        version=version,
        title=title,
        kind=kind,
        issuer=issuer,
        description=description,
        contact_name=contact_name,
        contact_email=contact_email,
        price_per_licence_ore=price,
        vat_rate_percent=vat,
        mentor_uses_seat=mentor_uses_seat,
        seat_valid_months=seat_valid_months,
        unassigned_seats_expire_months=unassigned_expire,
        learning_goals=learning_goals,
        target_groups=target_groups,
        modules=tuple(modules),
        sessions=tuple(sessions),
        source=source,
        pacing=pacing,
        registration=registration,
        completion=completion,
        certificate=certificate,
        partner=partner,
    )


def _pacing(p: _Reader | None) -> Pacing:
    if p is None:
        return Pacing()
    values = {
        key: p.get(key, int, default=0, check=lambda v: 0 <= v <= 120, expected="0–120")
        for key in ("weeks_per_module_min", "weeks_per_module_max", "total_months")
    }
    low, high = values["weeks_per_module_min"], values["weeks_per_module_max"]
    if low and high and low > high:
        raise p.fail(f"{high} is less than weeks_per_module_min {low}", "weeks_per_module_max")
    p.done()
    return Pacing(**values)


def _registration(g: _Reader | None) -> Registration | None:
    if g is None:
        return None
    binding = g.get("binding", bool, default=False)
    deadline = _date(g, "deadline")
    team_size = g.get("team_size", int, default=None, check=lambda v: 1 <= v <= 1000, expected="1 or more")
    g.done()
    return Registration(binding=binding, deadline=deadline, team_size=team_size)


def _completion(c: _Reader, module_ids: list[str]) -> CompletionRules:
    participant = c.get(
        "participant", str, check=PARTICIPANT_RULES.__contains__, expected=", ".join(sorted(PARTICIPANT_RULES))
    )
    mentor = c.get("mentor", str, check=MENTOR_RULES.__contains__, expected=", ".join(sorted(MENTOR_RULES)))
    if participant in PARTICIPANT_RULES_WITH_QUIZZES and not module_ids:
        raise c.fail(f"{participant!r} needs modules, and this programme has none", "participant")
    listed = c.strings("modules", default=None)
    for i, module_id in enumerate(listed):
        if module_id not in module_ids:
            raise c.ctx.error((*c.path, "modules", i), f"{module_id!r} is not a module of this programme")
    if len(set(listed)) != len(listed):
        raise c.fail("lists a module twice", "modules")
    c.done()
    return CompletionRules(participant=participant, mentor=mentor, modules=listed or tuple(module_ids))


def _certificate(
    t: _Reader | None, modules: list[Module], *, learning_goals: tuple[str, ...], issuer: str
) -> Certificate | None:
    if t is None:
        return None
    by_id = {m.id: m for m in modules}
    listed = t.strings("modules", default=None)
    for i, module_id in enumerate(listed):
        if module_id not in by_id:
            raise t.ctx.error((*t.path, "modules", i), f"{module_id!r} is not a module of this programme")
    goals = t.strings("learning_goals", default=None) or learning_goals
    certificate = Certificate(
        title=t.get("title", str, default="Kursbevis"),
        requirements=t.get("requirements", str),
        participant_text=t.get("participant_text", str),
        mentor_text=t.get("mentor_text", str, default=""),
        learning_goals_heading=t.get("learning_goals_heading", str, default=""),
        learning_goals=goals,
        modules_heading=t.get("modules_heading", str, default=""),
        module_titles=tuple(by_id[i].title for i in listed) if listed else tuple(m.title for m in modules),
        issuer=t.get("issuer", str, default=issuer),
        signatories=t.strings("signatories", default=[]),
        note=t.get("note", str, default=""),
    )
    t.done()
    return certificate


def programmes_once() -> dict[str, Programme]:
    """The content directory's programmes, read once per process (workers use them for every step)."""
    global _LOADED
    if _LOADED is None:
        _LOADED = load_programmes()
    return _LOADED


_LOADED: dict[str, Programme] | None = None


def _syntax_error(name: str, text: str, exc: tomllib.TOMLDecodeError) -> ProgrammeError:
    message = str(exc)
    match = _TOML_POSITION.search(message)
    if match is not None:
        line: int | None = int(match.group(1))
    else:  # "(at end of document)": the last line with text
        lines = text.splitlines()
        line = max((i + 1 for i, content in enumerate(lines) if content.strip()), default=None)
    where = f"{name}:{line}" if line is not None else name
    return ProgrammeError(f"{where}: not valid TOML: {message}", source=name, line=line)


def load_programmes(directory: Path = CONTENT_DIR) -> dict[str, Programme]:
    """All programmes under ``directory``, keyed by id. Raises ProgrammeError on the first invalid file (its
    message starts with ``<file>:<line>:``); nothing is loaded then."""
    programmes: dict[str, Programme] = {}
    for path in sorted(directory.glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _syntax_error(path.name, text, exc) from exc
        programme = parse_programme(data, path.name, text)
        if path.stem != programme.id:
            line = Locator(text).exact(("id",))
            where = f"{path.name}:{line}" if line else path.name
            raise ProgrammeError(
                f"{where}: file name must be the programme id {programme.id!r}", source=path.name, line=line
            )
        programmes[programme.id] = programme
    return programmes


__all__ = [
    "CONTENT_DIR",
    "Certificate",
    "CompletionRules",
    "Locator",
    "Module",
    "Pacing",
    "Programme",
    "ProgrammeError",
    "Registration",
    "Session",
    "load_programmes",
    "locate",
    "parse_programme",
    "path_label",
    "programmes_once",
]
