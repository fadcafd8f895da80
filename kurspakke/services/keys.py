"""The tool's RSA signing keys: creation, rotation with a grace period, and a per-process key ring.

A PEM parsed per request costs ~30 ms for a private key, so parsed keys are cached by kid for the life of the
process (a kid's key never changes). Which kids are current is re-read from the database at most every
``refresh_seconds`` so a rotation by another process or host is seen quickly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kurspakke.crypto import Encryptor
from kurspakke.models import Certificate, ToolKey, utcnow
from kurspakke.models.lti import KEY_PURPOSE_BADGE, KEY_PURPOSE_LTI

RSA_KEY_BITS = 2048


class NoSigningKey(RuntimeError):
    """No active signing key exists; run ``kurspakke keys rotate`` (development creates one on first run)."""


def _b64u_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(public_key: rsa.RSAPublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    jwk = {"e": _b64u_uint(numbers.e), "kty": "RSA", "n": _b64u_uint(numbers.n)}
    # RFC 7638 thumbprint as kid: stable and derived from the key itself.
    thumbprint = hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()).digest()
    kid = base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


def create_key(session: Session, encryptor: Encryptor, purpose: str = KEY_PURPOSE_LTI) -> ToolKey:
    """Generate a new active signing key. Flushes; the caller commits."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    jwk = public_jwk(private.public_key())
    key = ToolKey(kid=jwk["kid"], private_key_encrypted=encryptor.encrypt(pem), public_jwk=jwk, purpose=purpose)
    session.add(key)
    session.flush()
    return key


def rotate(session: Session, encryptor: Encryptor, *, grace_seconds: int) -> ToolKey:
    """Make a new signing key; earlier keys retire now and leave the JWKS after ``grace_seconds``.

    Keys retired longer than the grace period ago are deleted. Flushes; the caller commits.
    """
    now = utcnow()
    lti = ToolKey.purpose == KEY_PURPOSE_LTI
    for old in session.scalars(select(ToolKey).where(lti, ToolKey.retired_at.is_(None))):
        old.retired_at = now
    cutoff = now - timedelta(seconds=grace_seconds)
    for expired in session.scalars(select(ToolKey).where(lti, ToolKey.retired_at < cutoff)):
        session.delete(expired)
    return create_key(session, encryptor)


def ensure_key(session: Session, encryptor: Encryptor, purpose: str = KEY_PURPOSE_LTI) -> ToolKey:
    """Return the active key of the purpose, creating one if there is none (first run, or the first certificate's
    badge). Flushes; the caller commits."""
    active = session.scalars(
        select(ToolKey).where(ToolKey.purpose == purpose, ToolKey.retired_at.is_(None)).order_by(ToolKey.id.desc())
    ).first()
    return active or create_key(session, encryptor, purpose)


def retire_badge_key(session: Session) -> None:
    """Retire the active badge key (a new one signs from the next credential on). Its public half stays published
    while a valid certificate names it. Flushes; the caller commits."""
    for key in session.scalars(
        select(ToolKey).where(ToolKey.purpose == KEY_PURPOSE_BADGE, ToolKey.retired_at.is_(None))
    ):
        key.retired_at = utcnow()
    session.flush()


def _badge_kids_in_use(session: Session) -> set[str]:
    return set(
        session.scalars(
            select(Certificate.badge_kid)
            .where(Certificate.badge_kid.is_not(None), Certificate.revoked_at.is_(None))
            .distinct()
        )
    )


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey


class KeyRing:
    """Per-process cache of the tool's keys. Thread-safe; shared by all requests of one process."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        encryptor: Encryptor,
        *,
        grace_seconds: int,
        refresh_seconds: float = 30.0,
    ) -> None:
        self._factory = session_factory
        self._encryptor = encryptor
        self._grace = grace_seconds
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._parsed: dict[str, rsa.RSAPrivateKey] = {}
        self._loaded_at = float("-inf")
        self._jwks: dict[str, Any] = {"keys": []}
        self._active: SigningKey | None = None
        self._badge: SigningKey | None = None

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")

    def _ensure_fresh(self) -> None:
        if time.monotonic() - self._loaded_at < self._refresh:
            return
        with self._lock:
            if time.monotonic() - self._loaded_at < self._refresh:
                return
            with self._factory() as session:
                rows = list(session.scalars(select(ToolKey).order_by(ToolKey.id.desc())))
                badge_rows = [r for r in rows if r.purpose == KEY_PURPOSE_BADGE]
                in_use = _badge_kids_in_use(session) if badge_rows else set()
            cutoff = utcnow() - timedelta(seconds=self._grace)
            published = [
                r
                for r in rows
                if r.retired_at is None
                or (r.purpose == KEY_PURPOSE_LTI and r.retired_at > cutoff)
                or (r.purpose == KEY_PURPOSE_BADGE and r.kid in in_use)
            ]
            self._active = self._first_active(rows, KEY_PURPOSE_LTI)
            self._badge = self._first_active(rows, KEY_PURPOSE_BADGE)
            self._jwks = {"keys": [dict(r.public_jwk) for r in published]}
            self._loaded_at = time.monotonic()

    def _parse(self, kid: str, encrypted: bytes) -> rsa.RSAPrivateKey:
        if kid not in self._parsed:
            loaded = serialization.load_pem_private_key(self._encryptor.decrypt(encrypted), password=None)
            assert isinstance(loaded, rsa.RSAPrivateKey)
            self._parsed[kid] = loaded
        return self._parsed[kid]

    def _first_active(self, rows: list[ToolKey], purpose: str) -> SigningKey | None:
        for row in rows:
            if row.purpose == purpose and row.retired_at is None:
                return SigningKey(row.kid, self._parse(row.kid, row.private_key_encrypted))
        return None

    def jwks(self) -> dict[str, Any]:
        self._ensure_fresh()
        return self._jwks

    def badge_key(self) -> SigningKey | None:
        """The active badge key, or None until one exists (kurspakke.certificates creates it with ensure_key and
        invalidates the ring)."""
        self._ensure_fresh()
        return self._badge

    def signing_key(self) -> SigningKey:
        """Raises NoSigningKey when the database holds no active key."""
        self._ensure_fresh()
        if self._active is None:
            raise NoSigningKey("no active signing key; run `kurspakke keys rotate`")
        return self._active
