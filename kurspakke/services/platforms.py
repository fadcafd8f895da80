"""Platform registrations: issuers, client ids (developer keys) and deployment ids."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from kurspakke.models import Deployment, Registration


class RegistrationError(ValueError):
    """A registration request or lookup is invalid; the message says which part."""


class UnknownPlatform(RegistrationError):
    """The issuer, or the client id for it, is not registered with this tool."""


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise RegistrationError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


# Instructure publishes hosted Canvas's one key set under two addresses (DESIGN.md §6).
HOSTED_CANVAS_KEY_SETS = frozenset(
    {"https://canvas.instructure.com/api/lti/security/jwks", "https://sso.canvaslms.com/api/lti/security/jwks"}
)


def same_key_set(a: str, b: str) -> bool:
    return a == b or {a, b} <= HOSTED_CANVAS_KEY_SETS


def _check_url(name: str, url: str, *, require_https: bool) -> str:
    url = url.strip()
    origin_of(url)
    if require_https and not url.startswith("https://"):
        raise RegistrationError(f"{name} must use https: {url!r}")
    return url


def add_platform(
    session: Session,
    *,
    issuer: str,
    client_id: str,
    deployment_ids: Sequence[str],
    auth_login_url: str,
    auth_token_url: str,
    key_set_url: str,
    frame_origins: Sequence[str] = (),
    auth_audience: str | None = None,
    require_https: bool = False,
) -> Registration:
    """Register (or extend) a client of an issuer with its deployments. Idempotent: an existing registration
    gets its URLs updated and any new deployment ids added. Raises RegistrationError on bad input.
    Flushes; the caller commits."""
    issuer = issuer.strip()
    client_id = client_id.strip()
    if not issuer or not client_id:
        raise RegistrationError("issuer and client id are required")
    if not deployment_ids or any(not d.strip() for d in deployment_ids):
        raise RegistrationError("at least one non-empty deployment id is required")
    urls = {
        "auth_login_url": _check_url("auth-login-url", auth_login_url, require_https=require_https),
        "auth_token_url": _check_url("auth-token-url", auth_token_url, require_https=require_https),
        "key_set_url": _check_url("key-set-url", key_set_url, require_https=require_https),
    }
    origins = [origin_of(o) for o in frame_origins] or [origin_of(issuer)]
    # An issuer signs with one key set: hosted Canvas signs every institution's launches with the same keys, so a
    # second key set for an issuer already registered can only be a mistake or an attempt to sign as that issuer.
    others = session.scalars(
        select(Registration.key_set_url).where(Registration.issuer == issuer, Registration.client_id != client_id)
    ).all()
    for other in others:
        if not same_key_set(other, urls["key_set_url"]):
            raise RegistrationError(
                f"issuer {issuer} is already registered with the key set {other}; every client of one issuer must "
                f"use that key set, not {urls['key_set_url']}"
            )
    reg = session.scalars(
        select(Registration).where(Registration.issuer == issuer, Registration.client_id == client_id)
    ).one_or_none()
    if reg is None:
        reg = Registration(issuer=issuer, client_id=client_id, auth_audience=auth_audience, frame_origins=[], **urls)
        session.add(reg)
        session.flush()
    else:
        for key, value in urls.items():
            setattr(reg, key, value)
        reg.auth_audience = auth_audience
    reg.frame_origins = sorted(set(reg.frame_origins or []) | set(origins))
    known = {d.deployment_id for d in reg.deployments}
    for dep in deployment_ids:
        if dep.strip() not in known:
            reg.deployments.append(Deployment(deployment_id=dep.strip()))
            known.add(dep.strip())
    session.flush()
    return reg


def platform_instance(issuer: str, guid: str | None) -> str:
    """Which Canvas a launch speaks for: the platform's ``tool_platform.guid`` scoped by the issuer that signed
    the launch, so a registered platform can only ever speak for instances under its own issuer (hosted Canvas:
    only Instructure signs for https://canvas.instructure.com). Course links and Canvas user ids are stored
    under this scope. Without a guid, the issuer alone."""
    if not guid:
        return issuer
    scoped = f"{issuer}|{guid}"
    if len(scoped) <= 255:
        return scoped
    return f"{issuer[:180]}|sha256:{hashlib.sha256(guid.encode()).hexdigest()}"


def find_registration(session: Session, issuer: str, client_id: str | None) -> Registration:
    """The registration for ``issuer`` and ``client_id``; with no client id only an issuer with exactly one client
    matches. Raises UnknownPlatform otherwise."""
    query = select(Registration).where(Registration.issuer == issuer).options(selectinload(Registration.deployments))
    if client_id:
        reg = session.scalars(query.where(Registration.client_id == client_id)).one_or_none()
        if reg is None:
            raise UnknownPlatform("unknown issuer or client id")
        return reg
    regs = list(session.scalars(query.limit(2)))
    if len(regs) != 1:
        raise UnknownPlatform("unknown issuer, or client id needed for this issuer")
    return regs[0]


def client_ids_of(session: Session, issuer: str) -> set[str]:
    return set(session.scalars(select(Registration.client_id).where(Registration.issuer == issuer)))


def platform_origins(session: Session) -> tuple[list[str], list[str]]:
    """(frame origins, form origins) of every registered platform, in one query: where users see the platforms
    (CSP frame-ancestors), and those plus the issuers' and login URLs' origins (CSP form-action)."""
    frames: set[str] = set()
    forms: set[str] = set()
    rows = session.execute(select(Registration.frame_origins, Registration.issuer, Registration.auth_login_url))
    for origins, issuer, login_url in rows:
        frames.update(origins or [])
        for url in (issuer, login_url):
            try:
                forms.add(origin_of(url))
            except RegistrationError:
                continue
    return sorted(frames), sorted(forms | frames)


@dataclass(frozen=True)
class RegistrationInfo:
    """A registration as the hot path needs it, detached from any session."""

    id: int
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    auth_audience: str | None
    key_set_url: str
    deployment_ids: frozenset[str]
    issuer_client_ids: frozenset[str]  # every client of this issuer we trust (for aud arrays)


def registration_info(session: Session, issuer: str, client_id: str | None) -> RegistrationInfo:
    """Raises UnknownPlatform."""
    reg = find_registration(session, issuer, client_id)
    return RegistrationInfo(
        id=reg.id,
        issuer=reg.issuer,
        client_id=reg.client_id,
        auth_login_url=reg.auth_login_url,
        auth_token_url=reg.auth_token_url,
        auth_audience=reg.auth_audience,
        key_set_url=reg.key_set_url,
        deployment_ids=frozenset(d.deployment_id for d in reg.deployments),
        issuer_client_ids=frozenset(client_ids_of(session, issuer)),
    )


class RegistrationCache:
    """Per-process cache of registrations for logins and launches, refreshed after ``ttl_seconds``: a platform
    added with ``kurspakke platform add`` is seen by every web process within that time. Unknown platforms are
    not cached, so a new registration is seen at once."""

    def __init__(self, session_factory: sessionmaker[Session], ttl_seconds: float) -> None:
        self._factory = session_factory
        self._ttl = ttl_seconds
        self._entries: dict[tuple[str, str | None], tuple[float, RegistrationInfo]] = {}
        self._by_id: dict[int, RegistrationInfo] = {}

    def invalidate(self) -> None:
        self._entries.clear()
        self._by_id.clear()

    def get(self, issuer: str, client_id: str | None) -> RegistrationInfo:
        """Raises UnknownPlatform."""
        key = (issuer, client_id)
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        with self._factory() as session:
            info = registration_info(session, issuer, client_id)
        self._entries[key] = (time.monotonic(), info)
        self._by_id[info.id] = info
        return info

    def by_id(self, registration_id: int) -> RegistrationInfo | None:
        """The registration a login was made for; None when it has since been deleted."""
        info = self._by_id.get(registration_id)
        if info is not None:
            return self.get(info.issuer, info.client_id)
        with self._factory() as session:
            reg = session.get(Registration, registration_id)
            if reg is None:
                return None
            issuer, client_id = reg.issuer, reg.client_id
        return self.get(issuer, client_id)
