"""Programmes are content files (content/*.toml), validated on load. Adding a programme adds a file, not code."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"
SCHEMA_VERSION = 1
PROGRAMME_KINDS = {"course", "network"}
SESSION_KINDS = {"introduction", "group", "network"}
SESSION_FORMATS = {"physical", "digital", "either"}
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ProgrammeError(ValueError):
    """A content file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Module:
    id: str
    number: int
    title: str
    min_score_share: float


@dataclass(frozen=True)
class Session:
    id: str
    title: str
    kind: str
    required: bool
    after_module: str | None = None
    format: str = "either"
    date: date | None = None
    duration_minutes: int | None = None


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


class _Reader:
    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def fail(self, msg: str) -> ProgrammeError:
        return ProgrammeError(f"{self.where}: {msg}")

    def get(self, key: str, typ: type | tuple[type, ...], *, default: Any = ..., check: Any = None) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self.fail(f"missing {key!r}")
            return default
        value = self.data[key]
        if isinstance(value, bool) and typ is not bool and not (isinstance(typ, tuple) and bool in typ):
            raise self.fail(f"{key!r} must be {typ}, not a boolean")
        if not isinstance(value, typ):
            raise self.fail(f"{key!r} has the wrong type ({type(value).__name__})")
        if isinstance(value, str) and not value.strip():
            raise self.fail(f"{key!r} is empty")
        if check is not None and not check(value):
            raise self.fail(f"{key!r} has an invalid value: {value!r}")
        return value

    def table(self, key: str, *, default: Any = ...) -> _Reader:
        value = self.get(key, dict, default={} if default is not ... else ...)
        return _Reader(value, f"{self.where} [{key}]")

    def done(self) -> None:
        unknown = set(self.data) - self.used
        if unknown:
            raise self.fail(f"unknown field(s): {', '.join(sorted(unknown))}")


def parse_programme(data: dict[str, Any], source: str) -> Programme:
    """Validate one programme's data. Raises ProgrammeError naming the first problem."""
    r = _Reader(data, source)
    if r.get("schema_version", int) != SCHEMA_VERSION:
        raise r.fail(f"schema_version must be {SCHEMA_VERSION}")
    pid = r.get("id", str, check=_ID.match)
    contact = r.table("contact")
    pricing = r.table("pricing")
    price = pricing.get("price_per_licence_ore", int, check=lambda v: v >= 0)
    vat = pricing.get("vat_rate_percent", int, check=lambda v: 0 <= v <= 100)
    if pricing.get("currency", str) != "NOK":
        raise pricing.fail("currency must be NOK")
    mentor_uses_seat = pricing.get("mentor_uses_seat", bool, default=False)
    # DESIGN.md §2: a seat is valid for a set time from its assignment (default 12 months).
    seat_valid_months = pricing.get("seat_valid_months", int, default=12, check=lambda v: 1 <= v <= 120)
    # Optional: seats bought but not assigned within this many months of the order's confirmation lapse.
    unassigned_expire = pricing.get(
        "unassigned_seats_expire_months", int, default=None, check=lambda v: v is None or 1 <= v <= 120
    )
    pricing.done()
    pacing = r.table("pacing", default={})
    for key in ("weeks_per_module_min", "weeks_per_module_max", "total_months"):
        pacing.get(key, int, default=0, check=lambda v: v >= 0)
    pacing.done()
    completion = r.table("completion")
    completion.get("participant", str)
    completion.get("mentor", str)
    completion.done()
    registration = r.table("registration", default={})
    registration.get("binding", bool, default=False)
    registration.get("deadline", (str, date), default=None)
    registration.get("team_size", int, default=0)
    registration.done()

    modules: list[Module] = []
    for i, raw in enumerate(r.get("modules", list, default=[])):
        m = _Reader(raw, f"{source} modules[{i}]")
        modules.append(
            Module(
                id=m.get("id", str, check=_ID.match),
                number=m.get("number", int, check=lambda v: v >= 1),
                title=m.get("title", str),
                min_score_share=float(m.get("min_score_share", (int, float), default=0.0, check=lambda v: 0 <= v <= 1)),
            )
        )
        m.done()
    module_ids = [m.id for m in modules]
    if len(set(module_ids)) != len(module_ids):
        raise r.fail("module ids must be unique")
    sessions: list[Session] = []
    for i, raw in enumerate(r.get("sessions", list)):
        s = _Reader(raw, f"{source} sessions[{i}]")
        raw_date = s.get("date", (str, date), default=None)
        after = s.get("after_module", str, default=None)
        if after is not None and after not in module_ids:
            raise s.fail(f"after_module {after!r} is not a module of this programme")
        sessions.append(
            Session(
                id=s.get("id", str, check=_ID.match),
                title=s.get("title", str),
                kind=s.get("kind", str, check=SESSION_KINDS.__contains__),
                required=s.get("required", bool, default=True),
                after_module=after,
                format=s.get("format", str, default="either", check=SESSION_FORMATS.__contains__),
                date=date.fromisoformat(raw_date) if isinstance(raw_date, str) else raw_date,
                duration_minutes=s.get("duration_minutes", int, default=None, check=lambda v: 0 < v <= 600),
            )
        )
        s.done()
    if not sessions:
        raise r.fail("a programme needs at least one session")
    if len({s.id for s in sessions}) != len(sessions):
        raise r.fail("session ids must be unique")
    programme = Programme(
        id=pid,
        version=r.get("version", str),
        title=r.get("title", str),
        kind=r.get("kind", str, check=PROGRAMME_KINDS.__contains__),
        issuer=r.get("issuer", str),
        description=r.get("description", str, default=""),
        contact_name=contact.get("name", str),
        contact_email=contact.get("email", str, check=_EMAIL.match),
        price_per_licence_ore=price,
        vat_rate_percent=vat,
        mentor_uses_seat=mentor_uses_seat,
        seat_valid_months=seat_valid_months,
        unassigned_seats_expire_months=unassigned_expire,
        learning_goals=tuple(r.get("learning_goals", list, default=[])),
        target_groups=tuple(r.get("target_groups", list, default=[])),
        modules=tuple(modules),
        sessions=tuple(sessions),
        source=source,
    )
    r.get("partner", str, default=None)
    contact.done()
    r.done()
    return programme


def programmes_once() -> dict[str, Programme]:
    """The content directory's programmes, read once per process (workers use them for every step)."""
    global _LOADED
    if _LOADED is None:
        _LOADED = load_programmes()
    return _LOADED


_LOADED: dict[str, Programme] | None = None


def load_programmes(directory: Path = CONTENT_DIR) -> dict[str, Programme]:
    """All programmes under ``directory``, keyed by id. Raises ProgrammeError on the first invalid file."""
    programmes: dict[str, Programme] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ProgrammeError(f"{path.name}: not valid TOML: {exc}") from exc
        programme = parse_programme(data, path.name)
        if path.stem != programme.id:
            raise ProgrammeError(f"{path.name}: file name must be the programme id {programme.id!r}")
        programmes[programme.id] = programme
    return programmes
