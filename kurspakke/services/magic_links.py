"""Magic-link sign-in for licence administrators (DESIGN.md §1): signed, single-use links that live 15 minutes.

A link's token is ``<person id>.<issued at>.<jti>.<HMAC-SHA256>``: the person, the second it was issued (Unix
time), a random id (128 bits) and a MAC under a key derived from SECRET_KEY — so nothing is stored when a link is
requested (an unauthenticated form cannot fill a table) and a forged or altered token is refused before any lookup.
Redeeming a link records its jti in ``expiring_value`` with ``INSERT … ON CONFLICT DO NOTHING``: the key is unique,
so of two redemptions — even racing from two processes — exactly one inserts, and the other finds the link used.
The row expires with the link, after which the token is refused as expired anyway.

Only people who hold a licence-administrator role get a link, and authority is checked again at redemption: a
role removed meanwhile opens nothing.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from kurspakke.crypto import mac
from kurspakke.models import ExpiringValue, Organisation, Person, ProgrammeRole, ProgrammeRoleKind, utcnow
from kurspakke.models.base import UTCDateTime

LINK_TTL = timedelta(minutes=15)
# A link "issued" this far in the future still counts (clocks of several web hosts differ a little); further is
# not one of ours.
CLOCK_SKEW = timedelta(seconds=60)
MAX_TOKEN_LENGTH = 200
USED_KEY_PREFIX = "magic-link:"
_TOKEN_SHAPE = re.compile(r"([1-9][0-9]{0,17})\.([0-9]{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})")

_MARK_USED = text(
    'INSERT INTO expiring_value ("key", value, expires_at) VALUES (:key, :value, :expires_at) '
    'ON CONFLICT ("key") DO NOTHING RETURNING "key"'
).bindparams(bindparam("expires_at", type_=UTCDateTime()))


class MagicLinkError(Exception):
    """A link that signs nobody in. ``code`` is the catalogue key of the message the person sees."""

    code = "magic_link_invalid"


class MagicLinkInvalid(MagicLinkError):
    """Not a token of ours (malformed, forged, altered), or its person is no longer a licence administrator."""


class MagicLinkExpired(MagicLinkError):
    """Correctly signed, but older than LINK_TTL."""

    code = "magic_link_expired"


class MagicLinkUsed(MagicLinkError):
    """Correctly signed and fresh, but already redeemed."""

    code = "magic_link_used"


@dataclass(frozen=True)
class LinkClaims:
    person_id: int
    issued_at: datetime
    jti: str

    @property
    def expires_at(self) -> datetime:
        return self.issued_at + LINK_TTL


@dataclass(frozen=True)
class AdministeredProgramme:
    organisation_id: int
    organisation_name: str
    orgnr: str
    programme_id: str


@functools.lru_cache(maxsize=4)
def _link_key(secret_key: str) -> bytes:
    # Its own key: a launch token's or login state's signature can never pass for a link's.
    return hmac.new(secret_key.encode(), b"kurspakke-magic-link", hashlib.sha256).digest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _now(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def licence_admin_by_email(session: Session, email: str) -> Person | None:
    """The one person with this address who holds a licence-administrator role; None for nobody, and for an
    address several such people share (never guessed)."""
    address = normalise_email(email)
    if not address:
        return None
    people = session.scalars(
        select(Person)
        .where(
            Person.email == address,
            Person.id.in_(select(ProgrammeRole.person_id).where(ProgrammeRole.role == ProgrammeRoleKind.LICENCE_ADMIN)),
        )
        .limit(2)
    ).all()
    return people[0] if len(people) == 1 else None


def make_token(secret_key: str, person_id: int, issued_at: datetime, jti: str) -> str:
    payload = f"{person_id}.{int(issued_at.timestamp())}.{jti}"
    return f"{payload}.{mac(_link_key(secret_key), payload.encode())}"


def read_token(secret_key: str, token: str, *, now: datetime | None = None) -> LinkClaims:
    """The claims of a correctly signed, unexpired token (nothing is looked up). Raises MagicLinkInvalid,
    MagicLinkExpired."""
    match = _TOKEN_SHAPE.fullmatch(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if match is None:
        raise MagicLinkInvalid("malformed")
    payload, signature = token.rsplit(".", 1)
    if not hmac.compare_digest(signature, mac(_link_key(secret_key), payload.encode())):
        raise MagicLinkInvalid("bad signature")
    claims = LinkClaims(
        person_id=int(match.group(1)),
        issued_at=datetime.fromtimestamp(int(match.group(2)), UTC),
        jti=match.group(3),
    )
    current = _now(now)
    if claims.issued_at > current + CLOCK_SKEW:
        raise MagicLinkInvalid("issued in the future")
    if current >= claims.expires_at:
        raise MagicLinkExpired(f"issued {claims.issued_at.isoformat()}")
    return claims


def request_link(
    session: Session, email: str, *, secret_key: str, now: datetime | None = None
) -> tuple[Person, str] | None:
    """A sign-in token for the licence administrator with this address, or None when there is none (the caller
    must answer the same either way and send nothing for None). Writes nothing."""
    person = licence_admin_by_email(session, email)
    if person is None:
        return None
    return person, make_token(secret_key, person.id, _now(now), secrets.token_urlsafe(16))


def _admin(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None or not administered(session, person_id):
        raise MagicLinkInvalid("no longer a licence administrator")
    return person


def _used(session: Session, jti: str) -> bool:
    key = USED_KEY_PREFIX + jti
    return session.scalars(select(ExpiringValue.key).where(ExpiringValue.key == key)).first() is not None


def check(session: Session, token: str, *, secret_key: str, now: datetime | None = None) -> Person:
    """The person a link would sign in, without using it up (the page that shows the sign-in button: mail
    scanners open links). Writes nothing. Raises MagicLinkInvalid, MagicLinkExpired, MagicLinkUsed."""
    claims = read_token(secret_key, token, now=now)
    person = _admin(session, claims.person_id)
    if _used(session, claims.jti):
        raise MagicLinkUsed(claims.jti)
    return person


def redeem(session: Session, token: str, *, secret_key: str, now: datetime | None = None) -> Person:
    """Use the link up and return its person. Exactly one redemption of a link succeeds, also
    when several race: the losers' insert finds the key taken (on PostgreSQL it waits for the winner's commit; a
    winner that rolls back leaves the link unused). Flushes in the caller's transaction, which commits.
    Raises MagicLinkInvalid, MagicLinkExpired, MagicLinkUsed."""
    claims = read_token(secret_key, token, now=now)
    person = _admin(session, claims.person_id)
    inserted = session.connection().execute(
        _MARK_USED,
        {"key": USED_KEY_PREFIX + claims.jti, "value": str(person.id), "expires_at": claims.expires_at + CLOCK_SKEW},
    )
    if inserted.first() is None:
        raise MagicLinkUsed(claims.jti)
    return person


def administered(session: Session, person_id: int) -> list[AdministeredProgramme]:
    """The organisations and programmes this person administers licences for, by organisation name."""
    rows = session.execute(
        select(Organisation.id, Organisation.name, Organisation.orgnr, ProgrammeRole.programme_id)
        .join(ProgrammeRole, ProgrammeRole.organisation_id == Organisation.id)
        .where(ProgrammeRole.person_id == person_id, ProgrammeRole.role == ProgrammeRoleKind.LICENCE_ADMIN)
        .order_by(Organisation.name, Organisation.orgnr, ProgrammeRole.programme_id)
    ).all()
    return [AdministeredProgramme(*row) for row in rows]
