"""Canvas Live Events, the fast path of the progress sync (DESIGN.md §3 "Progress"): ``POST /api/canvas/live-events``.

Canvas Data Services delivers Live Events over HTTPS; with "Sign Payload" on, each event is POSTed as one JWT
(compact serialisation) whose claims are the event: ``metadata`` (``event_name``, ``root_account_lti_guid``,
``context_type``/``context_id``, the acting ``user_id``, …) and ``body`` (for submissions and grades:
``submission_id``, ``assignment_id``, the student's ``user_id``, …). Canvas signs with RS256 and names the key by
``kid``; Instructure publishes the key set (previous, current and next key; rotated monthly) at one URL, which
the operator configures (KURSPAKKE_LIVE_EVENTS_JWKS_URL), or the key set itself (KURSPAKKE_LIVE_EVENTS_JWKS).

An event is only a hint: for a submission or grade event (``submission_created``, ``submission_updated``,
``grade_change``) of a person the tool knows, in a course linked to a programme on a registered Canvas instance,
it asks for a progress sync of that programme now (kurspakke.progress.requests.request_sync; bursts collapse into
one waiting sync). The periodic sync stays the source of truth, and nothing from the event itself is stored. So a
replayed event costs at most one more sync, and a lost event only waits for the next periodic sync.

Checks, all before anything is written: a body of at most MAX_EVENT_BYTES; the JWT's shape; ``alg`` RS256 or
ES256 only (never ``none`` or HS*: the key set holds public keys, which must never serve as an HMAC secret); a
``kid`` the key set has, for a key of that algorithm; the signature; ``exp``/``nbf``/``iat`` when present; the
claims' shape and the types of the ids read. The Canvas instance is the one whose root account ``lti_guid`` the
event names (the same guid launches carry as ``tool_platform.guid``): an event from another customer's Canvas,
signed by the same Instructure key, matches none of our course links. Ids may be global
(shard × 10^13 + local id, see Canvas's "Event Data Identifiers"); the tool stores local ids, so both are tried.

The key set is fetched with the platform key sets' fetcher (course_sync.platform_keys.http_fetch: one total
deadline, a byte cap, no redirects) and cached: parsed once, refreshed after ``ttl_seconds`` without making a known
key wait for or fail with the refresh, refetched for an unknown kid at most every ``min_refetch_seconds``, one
fetch in flight.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from config.settings import Settings, SettingsError
from course_sync.platform_keys import Fetcher, PlatformKeyError, UnknownKid, http_fetch
from kurspakke.models import CanvasInstance, CourseLink
from kurspakke.programmes import Programme, programmes_once
from kurspakke.progress.models import QuizMapping
from kurspakke.progress.requests import request_sync
from kurspakke.progress.services import canvas_people

MAX_EVENT_BYTES = 64 * 1024
ACCEPTED_EVENTS = frozenset({"submission_created", "submission_updated", "grade_change"})
ALGORITHMS = ("RS256", "ES256")
MIN_RSA_BITS = 2048
GLOBAL_ID_BASE = 10**13  # Canvas's global id: shard id × 10^13 + local id
ACTOR = "canvas live events"

_COMPACT_JWT = re.compile(rb"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")  # alg none: no signature
_CANVAS_ID = re.compile(r"[0-9]{1,20}")


class LiveEventRefused(Exception):
    """The event is refused: ``status`` (400, 401, 413, 503), a stable ``code`` and an English ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# --- the key set ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventKey:
    kid: str
    alg: str  # "RS256" or "ES256": the only algorithm this key verifies
    key: Any


def usable_keys(data: Any) -> dict[str, EventKey]:
    """The keys of a JWK set that may verify events: RSA of at least 2048 bits (RS256) or EC P-256 (ES256), each
    with a ``kid``, for signing (``use`` absent or ``sig``), and no other ``alg`` named. Others are skipped."""
    keys: dict[str, EventKey] = {}
    entries = data.get("keys") if isinstance(data, dict) else None
    for jwk in entries if isinstance(entries, list) else []:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        try:
            if jwk.get("kty") == "RSA" and jwk.get("alg", "RS256") == "RS256":
                rsa_key = RSAAlgorithm.from_jwk(json.dumps(jwk))
                if rsa_key.key_size < MIN_RSA_BITS or hasattr(rsa_key, "private_numbers"):
                    continue
                keys[jwk["kid"]] = EventKey(jwk["kid"], "RS256", rsa_key)
            elif jwk.get("kty") == "EC" and jwk.get("crv") == "P-256" and jwk.get("alg", "ES256") == "ES256":
                ec_key = ECAlgorithm.from_jwk(json.dumps(jwk))
                if hasattr(ec_key, "private_numbers"):
                    continue
                keys[jwk["kid"]] = EventKey(jwk["kid"], "ES256", ec_key)
        except (ValueError, KeyError, TypeError, jwt.PyJWTError):
            continue
    return keys


class LiveEventKeys:
    """The key set events are verified with: configured inline (fixed), or fetched from ``url`` and cached."""

    def __init__(
        self,
        *,
        url: str | None = None,
        key_set: Mapping[str, Any] | None = None,
        fetcher: Fetcher = http_fetch,
        timeout: float = 10.0,
        ttl_seconds: float = 3600.0,
        min_refetch_seconds: float = 10.0,
    ) -> None:
        if (url is None) == (key_set is None):
            raise ValueError("give the key set's URL or the key set, one of them")
        self.url = url
        self.fetcher = fetcher
        self.timeout = timeout
        self.ttl = ttl_seconds
        self.min_refetch = min_refetch_seconds
        self.fetches = 0  # observable for tests
        self._keys: dict[str, EventKey] = {}
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._failure: str | None = None
        self._lock = threading.Lock()  # held while the key set is fetched: one fetch in flight
        if key_set is not None:
            self._keys = usable_keys(dict(key_set))
            if not self._keys:
                raise SettingsError(
                    "KURSPAKKE_LIVE_EVENTS_JWKS has no usable key: each needs a kid and must be RSA (at least "
                    f"{MIN_RSA_BITS} bits, RS256) or EC P-256 (ES256), public, for signing"
                )
            self._fetched_at = math.inf

    @classmethod
    def from_settings(cls, settings: Settings, *, fetcher: Fetcher = http_fetch) -> LiveEventKeys | None:
        """The app's key set from KURSPAKKE_LIVE_EVENTS_JWKS_URL or KURSPAKKE_LIVE_EVENTS_JWKS; None when neither is
        set (the feature is off). Raises SettingsError for an inline key set without a usable key."""
        if settings.live_events_jwks_url:
            return cls(
                url=settings.live_events_jwks_url,
                fetcher=fetcher,
                timeout=settings.http_timeout_seconds,
                ttl_seconds=settings.platform_jwks_ttl_seconds,
                min_refetch_seconds=settings.platform_jwks_min_refetch_seconds,
            )
        if settings.live_events_jwks:
            return cls(key_set=json.loads(settings.live_events_jwks))  # its shape was checked by Settings
        return None

    def get(self, kid: str) -> EventKey:
        """The key with ``kid``. Raises UnknownKid when the key set has none, PlatformKeyError when the key set
        cannot be fetched."""
        key = self._keys.get(kid)
        if self.url is None:
            if key is None:
                raise UnknownKid("no key with this kid in the configured key set")
            return key
        if key is not None:
            if time.monotonic() - self._fetched_at < self.ttl:
                return key
            # Due for its refresh: whoever gets the lock refreshes; a failing refresh keeps the key, and no one
            # waits for it.
            if self._lock.acquire(blocking=False):
                try:
                    if time.monotonic() - self._attempted_at >= self.min_refetch:
                        with contextlib.suppress(PlatformKeyError):
                            self._refresh()
                finally:
                    self._lock.release()
            key = self._keys.get(kid)
            if key is None:
                raise UnknownKid("the key set no longer has a key with this kid")
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:  # fetched while this thread waited
                return key
            if time.monotonic() - self._attempted_at < self.min_refetch:
                if self._failure is not None:
                    raise PlatformKeyError(self._failure)
                raise UnknownKid("no key with this kid in the key set")
            self._refresh()
            key = self._keys.get(kid)
            if key is None:
                raise UnknownKid("no key with this kid in the key set")
            return key

    def _refresh(self) -> None:
        """Fetch and parse the key set; the caller holds the lock. Raises PlatformKeyError (the keys held stay)."""
        assert self.url is not None
        self._attempted_at = time.monotonic()
        self.fetches += 1
        try:
            keys = usable_keys(self.fetcher(self.url, self.timeout))
        except PlatformKeyError as exc:
            self._failure = str(exc)
            raise
        except Exception as exc:
            self._failure = f"cannot fetch the Live Events key set {self.url}"
            raise PlatformKeyError(self._failure) from exc
        if not keys:
            self._failure = f"the Live Events key set {self.url} has no usable key"
            raise PlatformKeyError(self._failure)
        self._keys, self._fetched_at, self._failure = keys, time.monotonic(), None


# --- verifying and reading an event ----------------------------------------------------------------------------


def verify_event(raw: bytes, keys: LiveEventKeys, *, leeway: float) -> dict[str, Any]:
    """The claims of the signed event ``raw`` (the POST body: one JWT). Raises LiveEventRefused."""
    token = raw.strip()
    if len(token) > MAX_EVENT_BYTES:
        raise LiveEventRefused(413, "too_large", f"The event is larger than {MAX_EVENT_BYTES} bytes.")
    if not _COMPACT_JWT.fullmatch(token):
        raise LiveEventRefused(400, "malformed", "The body must be one signed JWT (compact serialisation).")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
        raise LiveEventRefused(400, "malformed", "The JWT's header is not a JSON object.") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise LiveEventRefused(401, "algorithm_refused", "The JWT must be signed with RS256 or ES256.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise LiveEventRefused(401, "kid_missing", "The JWT's header names no key (kid).")
    try:
        key = keys.get(kid)
    except UnknownKid:
        raise LiveEventRefused(401, "unknown_key", "The key set has no key with the JWT's kid.") from None
    except PlatformKeyError:
        raise LiveEventRefused(503, "keys_unavailable", "The key set cannot be fetched now; try again later.") from None
    if key.alg != alg:
        raise LiveEventRefused(401, "algorithm_refused", "The JWT's algorithm does not fit the key it names.")
    try:
        claims = jwt.decode(token, key.key, algorithms=[key.alg], leeway=leeway, options={"verify_aud": False})
    except jwt.InvalidSignatureError:
        raise LiveEventRefused(401, "signature_mismatch", "The signature does not match the event.") from None
    except jwt.ExpiredSignatureError:
        raise LiveEventRefused(401, "expired", "The event's JWT has expired (exp).") from None
    except jwt.ImmatureSignatureError:
        raise LiveEventRefused(401, "not_yet_valid", "The event's JWT is not valid yet (iat or nbf).") from None
    except jwt.DecodeError:
        raise LiveEventRefused(400, "malformed", "The JWT's claims are not a JSON object.") from None
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
        raise LiveEventRefused(401, "invalid_token", "The event's JWT is not valid.") from None
    if not isinstance(claims, dict):  # PyJWT refuses anything else already
        raise LiveEventRefused(400, "malformed", "The JWT's claims are not a JSON object.")
    return claims


@dataclass(frozen=True)
class LiveEvent:
    name: str
    root_account_lti_guid: str | None = None
    course_id: str | None = None  # metadata.context_id when the context is a course
    assignment_id: str | None = None
    user_ids: tuple[str, ...] = ()  # the student: body.user_id (and body.student_id, the same in grade_change)


def _canvas_id(value: Any, where: str) -> str | None:
    """A Canvas id as Canvas sends it (a string of digits, or a number); None when absent."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**20:
        return str(value)
    if isinstance(value, str) and _CANVAS_ID.fullmatch(value):
        return value
    raise LiveEventRefused(400, "malformed", f"{where} must be a Canvas id (digits).")


def parse_event(claims: Mapping[str, Any]) -> LiveEvent:
    """What the tool reads of an event's claims. Only the events in ACCEPTED_EVENTS are read beyond their name.
    Raises LiveEventRefused (400) for claims of the wrong shape."""
    metadata, body = claims.get("metadata"), claims.get("body")
    if not isinstance(metadata, dict) or not isinstance(body, dict):
        raise LiveEventRefused(400, "malformed", "The event must have a metadata and a body object.")
    name = metadata.get("event_name")
    if not isinstance(name, str) or not name:
        raise LiveEventRefused(400, "malformed", "metadata.event_name must be a string.")
    if name not in ACCEPTED_EVENTS:
        return LiveEvent(name[:64])
    guid = metadata.get("root_account_lti_guid")
    if guid is not None and (not isinstance(guid, str) or not guid or len(guid) > 255):
        raise LiveEventRefused(400, "malformed", "metadata.root_account_lti_guid must be a string.")
    context_type = metadata.get("context_type")
    course_id = _canvas_id(metadata.get("context_id"), "metadata.context_id") if context_type == "Course" else None
    users = [_canvas_id(body.get(f), f"body.{f}") for f in ("user_id", "student_id")]
    return LiveEvent(
        name,
        root_account_lti_guid=guid,
        course_id=course_id,
        assignment_id=_canvas_id(body.get("assignment_id"), "body.assignment_id"),
        user_ids=tuple(dict.fromkeys(u for u in users if u is not None)),
    )


def local_ids(ids: Iterable[str]) -> list[str]:
    """The ids as given and, for global ids, their local part: the tool stores local ids."""
    found: dict[str, None] = {}
    for value in ids:
        found[value] = None
        number = int(value)
        if number >= GLOBAL_ID_BASE:
            found[str(number % GLOBAL_ID_BASE)] = None
    return list(found)


# --- acting on an event --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    status: str  # "queued": a sync was requested; "ignored": nothing written
    reason: str | None = None  # why it was ignored
    programmes: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"status": self.status}
        if self.reason is not None:
            answer["reason"] = self.reason
        if self.steps:
            answer["steps"] = self.steps
        return answer


def _scope_filter(guid: str) -> Any:
    """Course links of the Canvas whose root account has ``guid``, under any issuer (platform_instance is
    ``<issuer>|<guid>``, or ``<issuer>|sha256:<hash of guid>`` when that would be too long)."""
    hashed = "sha256:" + hashlib.sha256(guid.encode()).hexdigest()
    return or_(
        CourseLink.platform_instance.endswith("|" + guid, autoescape=True),
        CourseLink.platform_instance.endswith("|" + hashed, autoescape=True),
    )


def dispatch_event(session: Session, event: LiveEvent, *, programmes: Mapping[str, Programme] | None = None) -> Outcome:
    """Ask for a progress sync of each programme the event may change: the programmes linked, on a registered
    Canvas instance of the event's root account, to the event's course (when the event names it) in which the
    event's assignment is mapped to a module (when it names one), and in whose Canvas instance the event's user
    is a person the tool knows. Writes nothing when there is none (``status`` "ignored")."""
    if event.name not in ACCEPTED_EVENTS:
        return Outcome("ignored", "event_not_handled")
    if not event.root_account_lti_guid:
        return Outcome("ignored", "unknown_course")
    if not event.user_ids:
        return Outcome("ignored", "unknown_user")
    query = (
        select(CourseLink.programme_id, CourseLink.platform_instance)
        .join(CanvasInstance, CanvasInstance.platform_instance == CourseLink.platform_instance)
        .where(_scope_filter(event.root_account_lti_guid), CourseLink.canvas_course_id.is_not(None))
        .order_by(CourseLink.id)
    )
    if event.course_id is not None:
        query = query.where(CourseLink.canvas_course_id.in_(local_ids([event.course_id])))
    if event.assignment_id is not None:
        mapped = exists().where(
            QuizMapping.course_link_id == CourseLink.id,
            QuizMapping.assignment_id.in_(local_ids([event.assignment_id])),
        )
        query = query.add_columns(mapped.label("mapped"))
    rows = session.execute(query).all()
    if not rows:
        return Outcome("ignored", "unknown_course")
    # A submission of an assignment no module is mapped to changes no progress.
    links = [(row[0], row[1]) for row in rows if event.assignment_id is None or row[2]]
    if not links:
        return Outcome("ignored", "unmapped_assignment")
    users = local_ids(event.user_ids)
    known = programmes if programmes is not None else programmes_once()
    # A link of a programme the content directory no longer has is no reason to refuse Canvas's event.
    wanted = [pid for pid, scope in links if pid in known and canvas_people(session, scope, users)]
    if not wanted:
        return Outcome("ignored", "unknown_user")
    outcome = Outcome("queued")
    for programme_id in dict.fromkeys(wanted):
        step_id = request_sync(
            session, programme_id, reason=f"canvas live event {event.name}", actor=ACTOR, programmes=known
        )
        outcome.programmes.append(programme_id)
        outcome.steps.append(step_id)
    return outcome


__all__ = [
    "ACCEPTED_EVENTS",
    "ALGORITHMS",
    "MAX_EVENT_BYTES",
    "EventKey",
    "LiveEvent",
    "LiveEventKeys",
    "LiveEventRefused",
    "Outcome",
    "dispatch_event",
    "local_ids",
    "parse_event",
    "usable_keys",
    "verify_event",
]
